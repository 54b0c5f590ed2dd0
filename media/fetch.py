"""Downloads with the product's guards: a size cap, a time cap on the whole exchange (name look-up,
connect, TLS, headers and body), a redirect limit, and an address policy checked again at every
hop, on every address the name resolves to, with the connection pinned to the address that was
checked. User URLs must also be https on an allowed host; provider result URLs (RunningHub's
files) skip only that host list."""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class FetchError(Exception):
    """The file could not be fetched; `transient` tells whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges whose last 32 bits are an IPv4 address the traffic ends up at: IPv4-compatible
# (RFC 4291), IPv4-translated (RFC 2765) and the well-known NAT64 prefix (RFC 6052).
IPV4_IN_LAST_32_BITS = tuple(ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
# The local-use NAT64 prefix (RFC 8215): where its IPv4 address sits depends on the prefix length
# the site chose (RFC 6052 section 2.2), so no single embedded address can be vouched for; the
# whole range is refused.
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
# getaddrinfo has no time limit of its own, and a resolver's retries can add up to many seconds.
DNS_TIMEOUT_SECONDS = 5.0


def _address_is_public(address: str, *, allow_loopback: bool = False) -> bool:
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_loopback:
        if ip.teredo is not None or ip.is_site_local or ip in NAT64_LOCAL_USE:
            return False
        # IPv6 forms that carry an IPv4 address are judged by that address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in network for network in IPV4_IN_LAST_32_BITS):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        ip = embedded or ip
    if allow_loopback and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast


def _address_literal(host: str) -> str | None:
    """The address `host` names when it is an address, in its canonical form. The C library also
    reads 2130706433, 0177.0.0.1 or 0x7f.1 as 127.0.0.1; reading them the same way here keeps
    the address checked and the address connected to one and the same."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _resolve(host: str, port: int, *, timeout: float) -> list[str]:
    literal = _address_literal(host)
    if literal is not None:
        return [literal]
    outcome: list[Any] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP))
        except Exception as exc:  # handed to the waiting thread below
            outcome.append(exc)
        done.set()

    # A look-up still stuck at the time limit is left to finish on its own in this daemon thread.
    threading.Thread(target=look_up, name="fetch-dns", daemon=True).start()
    if not done.wait(timeout):
        raise FetchError("图片地址的域名解析超时", transient=True)
    answer = outcome[0]
    if isinstance(answer, Exception):
        temporary = isinstance(answer, socket.gaierror) and answer.errno == socket.EAI_AGAIN
        raise FetchError("图片地址的域名无法解析", transient=temporary) from answer
    return [str(info[4][0]) for info in answer]


def _parse(url: str) -> tuple[SplitResult, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("图片地址格式错误", transient=False) from exc
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise FetchError("图片地址格式错误", transient=False)
    host = parts.hostname.lower().rstrip(".")
    return parts, host, port or (443 if parts.scheme == "https" else 80)


def _checked_address(host: str, port: int, *, allow_loopback: bool, timeout: float) -> str:
    addresses = _resolve(host, port, timeout=timeout)
    if not addresses or not all(_address_is_public(a, allow_loopback=allow_loopback) for a in addresses):
        raise FetchError("图片地址指向内部网络", transient=False)
    return addresses[0]


def check_user_url(url: str, *, timeout: float | None = None) -> str:
    """Raise FetchError unless `url` is https on an allowed host whose every resolved address is
    public (no loopback, private, link-local or metadata address, however written); transient
    only when the name could not be resolved in time. Returns the address to connect to, so that
    the connection goes where the check looked."""
    parts, host, port = _parse(url)
    if parts.scheme != "https":
        raise FetchError("只接受 https 图片地址", transient=False)
    if host not in settings.INPUT_URL_ALLOWED_HOSTS:
        raise FetchError("图片地址的域名不在允许列表中", transient=False)
    return _checked_address(
        host, port, allow_loopback=False, timeout=DNS_TIMEOUT_SECONDS if timeout is None else timeout
    )


def _check_provider_url(url: str, *, timeout: float) -> str:
    """As check_user_url without the host list and with plain http allowed. Loopback only with
    PROVIDER_URL_ALLOW_LOOPBACK: the local RunningHub simulator serves its results there."""
    parts, host, port = _parse(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError("结果地址无效", transient=False)
    return _checked_address(host, port, allow_loopback=settings.PROVIDER_URL_ALLOW_LOOPBACK, timeout=timeout)


# --- one exchange within the deadline -----------------------------------------------------------


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the download deadline has passed")
    return left


class _DeadlineReader(io.RawIOBase):
    """The socket as http.client reads the response from it: every read may wait only for what
    is left of the deadline, so a server trickling a byte at a time is cut off on time, where a
    timeout per read would wait for ever."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # The socket's own reader, which keeps the socket open while the response is read.
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        self._sock.settimeout(_time_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """What http.client's response is built on: only its makefile() is ever used."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(_DeadlineSocket(sock, deadline), *args, **kwargs)  # type: ignore[arg-type]


class _HTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        # http.client builds each response as response_class(sock, method=...).
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)  # type: ignore[assignment]

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        try:
            # CPython times a TLS handshake as a whole against the socket's timeout.
            sock.settimeout(_time_left(self.deadline))
        except TimeoutError:
            sock.close()
            raise
        return sock


class _HTTPSConnection(_HTTPConnection, HTTPSConnection):
    """The same over TLS."""


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


@contextmanager
def _exchange(url: str, *, address: str, deadline: float) -> Iterator[urllib3.BaseHTTPResponse]:
    """One GET without following redirects, to `address` (the one checked; TLS still verifies
    the URL's host name), so a second DNS answer cannot send it elsewhere."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"
    left = _time_left(deadline)
    options: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=left, read=left),
        "retries": False,
        "maxsize": 1,
        "deadline": deadline,
    }
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = _HTTPSPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = _HTTPPool(address, port, **options)
    with pool:
        answer = pool.urlopen("GET", target, headers={"Host": parts.netloc}, redirect=False, preload_content=False)
        try:
            yield answer
        finally:
            answer.close()


def fetch(url: str, *, user_url: bool) -> bytes:
    """GET `url` within the size, time and redirect caps; every hop passes the address policy
    (check_user_url for user URLs, the same without the host list for provider result URLs) and
    connects to the address it checked."""
    deadline = time.monotonic() + settings.FETCH_TIMEOUT_SECONDS
    limit = settings.UPLOAD_MAX_BYTES
    for _hop in range(settings.FETCH_MAX_REDIRECTS + 1):
        lookup_time = min(DNS_TIMEOUT_SECONDS, deadline - time.monotonic())
        if lookup_time <= 0:
            raise FetchError("下载超时", transient=True)
        if user_url:
            address = check_user_url(url, timeout=lookup_time)
        else:
            address = _check_provider_url(url, timeout=lookup_time)
        try:
            with _exchange(url, address=address, deadline=deadline) as answer:
                if answer.status in (301, 302, 303, 307, 308) and answer.headers.get("Location"):
                    url = urljoin(url, answer.headers["Location"])
                    continue
                if answer.status >= 500 or answer.status == 429:
                    raise FetchError(f"下载失败(HTTP {answer.status})", transient=True)
                if answer.status != 200:
                    raise FetchError(f"下载失败(HTTP {answer.status})", transient=False)
                declared = answer.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError("图片超过 20 MB", transient=False)
                body = bytearray()
                while chunk := answer.read1(64 * 1024):
                    body += chunk
                    if len(body) > limit:
                        raise FetchError("图片超过 20 MB", transient=False)
                return bytes(body)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise FetchError("下载超时", transient=True) from exc
            raise FetchError("下载失败(网络错误)", transient=True) from exc
    raise FetchError("重定向次数过多", transient=False)
