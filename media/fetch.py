"""Downloads with the product's guards: size and time caps, a redirect limit, and (for URLs that
users give) a host policy checked again at every hop, on every address the name resolves to, with
the connection pinned to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings


class FetchError(Exception):
    """The file could not be fetched; `transient` tells whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _address_is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None or ip.is_site_local:
            return False
        # IPv6 forms that carry an IPv4 address are judged by that address.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def check_user_url(url: str) -> str:
    """Raise FetchError(transient=False) unless `url` is https on an allowed host whose every
    resolved address is public (no loopback, private, link-local or metadata address). Returns
    the address to connect to, so that the connection goes where the check looked."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("图片地址格式错误", transient=False) from exc
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise FetchError("只接受 https 图片地址", transient=False)
    host = parts.hostname.lower().rstrip(".")
    if host not in settings.INPUT_URL_ALLOWED_HOSTS:
        raise FetchError("图片地址的域名不在允许列表中", transient=False)
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("图片地址的域名无法解析", transient=False) from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(_address_is_public(address) for address in addresses):
        raise FetchError("图片地址指向内部网络", transient=False)
    return addresses[0]


def _open(url: str, *, address: str | None, timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
    """One GET without following redirects. With `address` the connection goes to that checked
    address (TLS still verifies the URL's host name), so a second DNS answer cannot redirect it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"
    options: dict[str, Any] = {"timeout": timeout, "retries": False, "maxsize": 1}
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address or host,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address or host, port, **options)
    return pool.urlopen(
        "GET", target, headers={"Host": parts.netloc.rsplit("@", 1)[-1]}, redirect=False, preload_content=False
    )


def fetch(url: str, *, user_url: bool) -> bytes:
    """GET `url` within the size, time and redirect caps; for user URLs every hop passes
    `check_user_url` and connects to the address it checked. Provider result URLs
    (user_url=False) skip only the host policy."""
    deadline = time.monotonic() + settings.FETCH_TIMEOUT_SECONDS
    limit = settings.UPLOAD_MAX_BYTES
    for _hop in range(settings.FETCH_MAX_REDIRECTS + 1):
        address = check_user_url(url) if user_url else None
        if not user_url and urlsplit(url).scheme not in ("http", "https"):
            raise FetchError("结果地址无效", transient=False)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("下载超时", transient=True)
        try:
            # Each read may wait at most 5 s (or what is left), and the deadline is checked after
            # each one, so a trickling server is cut off within a few seconds of the cap.
            wait = min(5.0, remaining)
            answer = _open(url, address=address, timeout=urllib3.Timeout(connect=wait, read=wait))
            try:
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
                    if time.monotonic() > deadline:
                        raise FetchError("下载超时", transient=True)
                return bytes(body)
            finally:
                answer.release_conn()
                answer.close()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchError("下载失败(网络错误)", transient=True) from exc
    raise FetchError("重定向次数过多", transient=False)
