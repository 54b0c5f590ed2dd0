"""The guarded download: caps against local servers, and the address policy with patched DNS.

Every test runs behind `connects`, which refuses any connect outside loopback, so no test traffic
leaves this machine even when the code under test is wrong; and behind `dns`, which answers only
the names a test gives it."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest

from media.fetch import FetchError, check_user_url, fetch
from media.tests.images import product_photo

PHOTO = product_photo()
PUBLIC = "93.184.216.34"
USER_HOST = "images.example.com"
PROVIDER_HOST = "results.example.net"


def _is_loopback(host: Any) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connect attempted during the test; any outside loopback is refused."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple):
            attempts.append(address[:2])
            if not _is_loopback(address[0]):
                raise ConnectionRefusedError(f"test: {address[0]} is not loopback; nothing leaves this machine")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


class FakeDns:
    """getaddrinfo for the test: the names given to it, and address literals (the shorthand IPv4
    forms too, as the C library accepts them); any other name does not exist."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}

    def answer(self, host: str, *addresses: str) -> None:
        self.answers[host] = [list(addresses)]

    def rebind(self, host: str, first: str, later: str) -> None:
        self.answers[host] = [[first], [later]]

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        host = host.decode() if isinstance(host, bytes) else str(host)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = [socket.inet_ntoa(socket.inet_aton(host))]
            except OSError:
                if host not in self.answers:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
                queue = self.answers[host]
                addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        port = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def provider_on_loopback(settings: Any) -> None:
    """The escape of the test settings and the embedded default, where RunningHub's simulator
    serves its results on loopback."""
    settings.PROVIDER_URL_ALLOW_LOOPBACK = True


@pytest.fixture
def provider_policy(settings: Any) -> None:
    """The provider policy as deployed: no loopback either."""
    settings.PROVIDER_URL_ALLOW_LOOPBACK = False


# --- a local origin -----------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path
        if path == "/photo.png":
            self._send(200, PHOTO)
        elif path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect("/photo.png" if left == 0 else f"/hop/{left - 1}")
        elif path.startswith("/to?"):
            self._redirect(path.split("?", 1)[1])
        elif path == "/declared-big":
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
        elif path == "/undeclared-big":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x" * 1024)
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x" * 10)
                self.wfile.flush()
                time.sleep(0.3)
        elif path == "/busy":
            self._send(503, b"busy")
        else:
            self._send(404, b"nope")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """The tests hang up on purpose (size and time caps); that is not an error here."""


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@contextmanager
def trickling_server(payload: bytes, *, interval: float = 1.0) -> Iterator[int]:
    """A loopback server that reads the client's first flight, then sends `payload` one byte per
    `interval`; it hangs up when the payload ends or the client goes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                for byte in payload:
                    if stop.wait(interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


# --- caps ---------------------------------------------------------------------------------------


def test_provider_file_is_downloaded(origin: str, provider_on_loopback: None) -> None:
    assert fetch(f"{origin}/photo.png", user_url=False) == PHOTO


def test_up_to_three_redirects_are_followed(origin: str, provider_on_loopback: None) -> None:
    assert fetch(f"{origin}/hop/2", user_url=False) == PHOTO  # three redirects in all
    with pytest.raises(FetchError, match="重定向次数过多") as caught:
        fetch(f"{origin}/hop/3", user_url=False)
    assert caught.value.transient is False


def test_size_cap_declared_or_not(origin: str, settings: Any, provider_on_loopback: None) -> None:
    with pytest.raises(FetchError, match="20 MB"):
        fetch(f"{origin}/declared-big", user_url=False)
    settings.UPLOAD_MAX_BYTES = 10_000
    with pytest.raises(FetchError, match="20 MB"):
        fetch(f"{origin}/undeclared-big", user_url=False)


def test_time_cap_on_a_slow_body(origin: str, settings: Any, provider_on_loopback: None) -> None:
    settings.FETCH_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(f"{origin}/slow", user_url=False)
    assert caught.value.transient is True
    assert time.monotonic() - started < 2


def test_the_deadline_covers_headers_trickled_one_byte_a_second(settings: Any, provider_on_loopback: None) -> None:
    """Every byte arrives well within any per-read timeout; only a deadline on the whole
    exchange stops it."""
    settings.FETCH_TIMEOUT_SECONDS = 2
    with trickling_server(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello") as port:
        started = time.monotonic()
        with pytest.raises(FetchError, match="超时") as caught:
            fetch(f"http://127.0.0.1:{port}/p.png", user_url=False)
        elapsed = time.monotonic() - started
    assert caught.value.transient is True
    assert 1.5 < elapsed < 2 * settings.FETCH_TIMEOUT_SECONDS


def test_the_deadline_covers_a_trickled_tls_handshake(settings: Any, provider_on_loopback: None) -> None:
    settings.FETCH_TIMEOUT_SECONDS = 2
    # A TLS record header announcing a 64-byte handshake message, then the message byte by byte.
    with trickling_server(b"\x16\x03\x03\x00\x40" + b"\x02" * 64) as port:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetch(f"https://127.0.0.1:{port}/p.png", user_url=False)
        elapsed = time.monotonic() - started
    assert caught.value.transient is True
    assert 1.5 < elapsed < 2 * settings.FETCH_TIMEOUT_SECONDS


def test_status_codes(origin: str, provider_on_loopback: None) -> None:
    with pytest.raises(FetchError) as busy:
        fetch(f"{origin}/busy", user_url=False)
    assert busy.value.transient is True
    with pytest.raises(FetchError) as missing:
        fetch(f"{origin}/missing", user_url=False)
    assert missing.value.transient is False
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x.png", "gopher://127.0.0.1:6379/_INFO"):
        with pytest.raises(FetchError) as other:
            fetch(url, user_url=False)
        assert other.value.transient is False


# --- DNS ----------------------------------------------------------------------------------------


def test_a_stuck_dns_lookup_is_cut_off_as_transient(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.setattr("media.fetch.DNS_TIMEOUT_SECONDS", 0.5)
    release = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    try:
        with mock.patch("socket.getaddrinfo", side_effect=stuck):
            for attempt in (
                lambda: check_user_url(f"https://{USER_HOST}/p.png"),
                lambda: fetch(f"https://{USER_HOST}/p.png", user_url=True),
            ):
                started = time.monotonic()
                with pytest.raises(FetchError) as caught:
                    attempt()
                assert caught.value.transient is True
                assert time.monotonic() - started < 1.5
    finally:
        release.set()


def test_an_unknown_name_is_refused_for_good() -> None:
    with pytest.raises(FetchError) as caught:
        check_user_url(f"https://{USER_HOST}/p.png")
    assert caught.value.transient is False


# --- the address policy -------------------------------------------------------------------------

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.45.6.7",
    "::1",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.10",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.10.20",
    "fe80::1",
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",  # AWS metadata over IPv6
    "0.0.0.0",
    "::",
    "fc00::5",
    "fec0::1",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
    "198.18.0.1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.5",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.5",
    "::169.254.169.254",
    "::ffff:0:127.0.0.1",  # IPv4-translated
    "::ffff:0:10.0.0.5",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "64:ff9b::7f00:1",  # NAT64 well-known prefix, 127.0.0.1
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::7f00:1",  # NAT64 local-use prefix
    "64:ff9b:1::a00:5",
]

LOOPBACK_FORMS = {
    "127.0.0.1",
    "127.45.6.7",
    "::1",
    "::ffff:127.0.0.1",
    "::127.0.0.1",
    "::ffff:0:127.0.0.1",
    "2002:7f00:1::1",
    "64:ff9b::7f00:1",
}

PUBLIC_ADDRESSES = [
    PUBLIC,
    "2606:2800:220:1:248:1893:25c8:1946",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
    "2002:5db8:d822::1",
]


def literal_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def refused(call: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        call()
    assert caught.value.transient is False, caught.value
    return caught.value


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_user_url_resolving_inside_is_refused_at_check_and_fetch(
    address: str, dns: FakeDns, connects: list[Any]
) -> None:
    dns.answer(USER_HOST, address)
    url = f"https://{USER_HOST}/p.png"
    assert "内部网络" in str(refused(lambda: check_user_url(url)))
    refused(lambda: fetch(url, user_url=True))
    assert connects == []


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_provider_url_resolving_inside_is_refused(
    address: str, dns: FakeDns, connects: list[Any], provider_policy: None
) -> None:
    dns.answer(PROVIDER_HOST, address)
    for scheme in ("http", "https"):
        refused(lambda scheme=scheme: fetch(f"{scheme}://{PROVIDER_HOST}/out/1.png", user_url=False))
    assert connects == []


@pytest.mark.parametrize("address", [a for a in REFUSED_ADDRESSES if a not in LOOPBACK_FORMS])
def test_the_loopback_escape_lets_nothing_else_through(
    address: str, dns: FakeDns, connects: list[Any], provider_on_loopback: None
) -> None:
    dns.answer(PROVIDER_HOST, address)
    refused(lambda: fetch(f"http://{PROVIDER_HOST}/out/1.png", user_url=False))
    refused(lambda: fetch(f"http://{literal_host(address)}/out/1.png", user_url=False))
    assert connects == []


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_an_internal_address_literal_is_refused(
    address: str, settings: Any, connects: list[Any], provider_policy: None
) -> None:
    host = literal_host(address)
    settings.INPUT_URL_ALLOWED_HOSTS = [host.strip("[]").lower(), host.lower()]
    refused(lambda: check_user_url(f"https://{host}/p.png"))
    refused(lambda: fetch(f"https://{host}/p.png", user_url=True))
    refused(lambda: fetch(f"http://{host}/p.png", user_url=False))
    assert connects == []


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "127.1",
        "017700000001",
        "0x0a000005",
        "012.0.0.5",
        "0xa9.0xfe.0xa9.0xfe",
    ],
)
def test_shorthand_ipv4_forms_are_judged_by_the_address_they_name(
    host: str, settings: Any, connects: list[Any], provider_policy: None
) -> None:
    settings.INPUT_URL_ALLOWED_HOSTS = [host]
    refused(lambda: check_user_url(f"https://{host}/p.png"))
    refused(lambda: fetch(f"https://{host}/p.png", user_url=True))
    refused(lambda: fetch(f"http://{host}/p.png", user_url=False))
    assert connects == []


def test_one_internal_address_among_public_ones_is_enough_to_refuse(dns: FakeDns) -> None:
    dns.answer(USER_HOST, PUBLIC, "10.0.0.5")
    refused(lambda: check_user_url(f"https://{USER_HOST}/p.png"))


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_pass_and_are_what_the_connection_uses(address: str, dns: FakeDns) -> None:
    dns.answer(USER_HOST, address)
    assert ipaddress.ip_address(check_user_url(f"https://{USER_HOST}/p.png")) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "url",
    [
        f"http://{USER_HOST}/p.png",
        f"ftp://{USER_HOST}/p.png",
        "file:///etc/passwd",
        f"//{USER_HOST}/p.png",
        "https://evil.example.org/p.png",
        f"https://{USER_HOST}@127.0.0.1/p.png",
        f"https://{USER_HOST}:443@127.0.0.1/p.png",
        f"https://user:secret@{USER_HOST}/p.png",
        f"https://{USER_HOST}\\@127.0.0.1/p.png",
        f"https://127.0.0.1#@{USER_HOST}/p.png",
        f"https://{USER_HOST}.evil.example.org/p.png",
        f"https://{USER_HOST}:99999/p.png",
        "https:///p.png",
    ],
)
def test_user_urls_need_https_on_an_allowed_host_without_userinfo(url: str, dns: FakeDns, connects: list[Any]) -> None:
    dns.answer(USER_HOST, PUBLIC)
    dns.answer(f"{USER_HOST}.evil.example.org", PUBLIC)
    dns.answer("evil.example.org", PUBLIC)
    refused(lambda: check_user_url(url))
    refused(lambda: fetch(url, user_url=True))
    assert connects == []


def test_provider_urls_skip_only_the_host_list(dns: FakeDns, connects: list[Any]) -> None:
    """Any public host will do for RunningHub's files; the connect goes to the checked address
    (refused here by the guard, which makes it a transient network error)."""
    dns.rebind(PROVIDER_HOST, PUBLIC, "127.0.0.1")
    with pytest.raises(FetchError) as caught:
        fetch(f"https://{PROVIDER_HOST}/out/1.png", user_url=False)
    assert caught.value.transient is True
    assert connects == [(PUBLIC, 443)]


def test_an_ipv6_answer_is_pinned_too(dns: FakeDns, connects: list[Any]) -> None:
    dns.answer(PROVIDER_HOST, "2606:2800:220:1:248:1893:25c8:1946")
    with pytest.raises(FetchError):
        fetch(f"http://{PROVIDER_HOST}/out/1.png", user_url=False)
    assert connects == [("2606:2800:220:1:248:1893:25c8:1946", 80)]


def test_provider_urls_on_loopback_need_the_setting(origin: str, settings: Any, connects: list[Any]) -> None:
    settings.PROVIDER_URL_ALLOW_LOOPBACK = False
    refused(lambda: fetch(f"{origin}/photo.png", user_url=False))
    assert connects == []
    settings.PROVIDER_URL_ALLOW_LOOPBACK = True
    assert fetch(f"{origin}/photo.png", user_url=False) == PHOTO


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.5/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.5]/x.png",
        "http://[fd00:ec2::254]/x.png",
        "http://0x0a000005/x.png",
        f"http://{PROVIDER_HOST}/x.png",
    ],
)
def test_a_provider_redirect_inside_is_refused(
    target: str, origin: str, dns: FakeDns, connects: list[Any], provider_on_loopback: None
) -> None:
    """Loopback is allowed for the simulator; private, link-local and metadata addresses are
    not, also when a redirect names them."""
    dns.answer(PROVIDER_HOST, "192.168.1.10")
    refused(lambda: fetch(f"{origin}/to?{target}", user_url=False))
    assert all(_is_loopback(host) for host, _port in connects)


# --- user URLs through patched exchanges --------------------------------------------------------


class FakeAnswer:
    def __init__(self, status: int, location: str = "") -> None:
        self.status = status
        self.headers = {"Location": location} if location else {}
        self._body = [PHOTO, b""]

    def read1(self, size: int) -> bytes:
        return self._body.pop(0)


def exchanges(*answers: FakeAnswer) -> Any:
    return mock.patch("media.fetch._exchange", side_effect=[nullcontext(a) for a in answers])


def test_the_connection_goes_to_the_checked_address_even_if_dns_changes(dns: FakeDns, connects: list[Any]) -> None:
    """DNS answers a public address for the check, then loopback (rebinding): the connect must
    still target the checked address, which the guard refuses."""
    dns.rebind(USER_HOST, PUBLIC, "127.0.0.1")
    with pytest.raises(FetchError) as caught:
        fetch(f"https://{USER_HOST}/p.png", user_url=True)
    assert caught.value.transient is True
    assert connects == [(PUBLIC, 443)]


def test_every_redirect_hop_is_checked_again(settings: Any, dns: FakeDns) -> None:
    settings.INPUT_URL_ALLOWED_HOSTS = [USER_HOST, "cdn.example.com"]
    dns.answer(USER_HOST, PUBLIC)
    dns.answer("cdn.example.com", "10.0.0.5")
    with exchanges(FakeAnswer(302, "https://cdn.example.com/p.png"), FakeAnswer(200)) as opened:
        assert "内部网络" in str(refused(lambda: fetch(f"https://{USER_HOST}/p.png", user_url=True)))
    assert opened.call_count == 1, "the hop to the internal address was never opened"


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.org/p.png",
        f"http://{USER_HOST}/p.png",
        "https://127.0.0.1/p.png",
        "https://[::ffff:169.254.169.254]/p.png",
        f"https://{USER_HOST}@127.0.0.1/p.png",
        "file:///etc/passwd",
    ],
)
def test_a_user_redirect_off_the_policy_is_refused(location: str, dns: FakeDns) -> None:
    dns.answer(USER_HOST, PUBLIC)
    dns.answer("evil.example.org", PUBLIC)
    with exchanges(FakeAnswer(302, location)) as opened:
        refused(lambda: fetch(f"https://{USER_HOST}/p.png", user_url=True))
    assert opened.call_count == 1


def test_a_clean_user_url_downloads_through_the_pinned_address(dns: FakeDns) -> None:
    dns.answer(USER_HOST, PUBLIC)
    with exchanges(FakeAnswer(200)) as opened:
        assert fetch(f"https://{USER_HOST}/p.png", user_url=True) == PHOTO
    assert opened.call_args.kwargs["address"] == PUBLIC


# --- the pinned TLS connection against a real TLS server on loopback ------------------------------


def _certificate_authority() -> tuple[Any, Any]:
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "photo tests CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_certificate(ca_key: Any, ca_cert: Any, host: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `host`, signed by the CA."""
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class TlsOrigin:
    """An HTTPS server on 127.0.0.1 presenting a certificate for `cert_host`; records the SNI names
    the clients sent and the requests that got through the handshake."""

    def __init__(self, tmp_path: Any, ca: tuple[Any, Any], cert_host: str) -> None:
        import ssl

        cert_pem, key_pem = _server_certificate(*ca, cert_host)
        (tmp_path / "server.pem").write_bytes(cert_pem + key_pem)
        self.sni: list[str | None] = []
        self.requests: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "server.pem")
        context.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.requests.append(f"{self.headers['Host']} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PHOTO)))
                self.end_headers()
                self.wfile.write(PHOTO)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a refused handshake is what some tests want

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trusted_ca(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """A CA made for the test, and fetch trusting it (certifi's bundle path, at the edge)."""
    from cryptography.hazmat.primitives import serialization

    ca = _certificate_authority()
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    monkeypatch.setattr("certifi.where", lambda: str(bundle))
    return ca


@pytest.fixture
def tls_origin(tmp_path: Any, trusted_ca: tuple[Any, Any], dns: FakeDns) -> Iterator[Any]:
    """Start an origin with a certificate for the given host name; PROVIDER_HOST resolves to it."""
    started: list[TlsOrigin] = []

    def start(cert_host: str) -> TlsOrigin:
        folder = tmp_path / f"origin{len(started)}"
        folder.mkdir()
        started.append(TlsOrigin(folder, trusted_ca, cert_host))
        dns.answer(PROVIDER_HOST, "127.0.0.1")
        return started[-1]

    yield start
    for origin in started:
        origin.close()


def test_tls_sends_the_host_name_and_accepts_its_certificate_on_the_pinned_address(
    tls_origin: Any, provider_on_loopback: None, connects: list[Any]
) -> None:
    origin = tls_origin(PROVIDER_HOST)
    assert fetch(f"https://{PROVIDER_HOST}:{origin.port}/r/1.png", user_url=False) == PHOTO
    assert origin.sni == [PROVIDER_HOST], "SNI names the URL's host, not the address connected to"
    assert origin.requests == [f"{PROVIDER_HOST}:{origin.port} /r/1.png"]
    assert connects == [("127.0.0.1", origin.port)]


def test_a_certificate_for_another_name_is_refused(tls_origin: Any, provider_on_loopback: None) -> None:
    origin = tls_origin("other.example.org")
    with pytest.raises(FetchError) as caught:
        fetch(f"https://{PROVIDER_HOST}:{origin.port}/r/1.png", user_url=False)
    assert caught.value.transient is True
    assert origin.sni == [PROVIDER_HOST] and origin.requests == [], "nothing was asked over that connection"


def test_a_certificate_from_an_untrusted_authority_is_refused(
    tls_origin: Any, provider_on_loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi.core

    origin = tls_origin(PROVIDER_HOST)
    # certifi's own bundle again: the test's CA is in no real trust store.
    monkeypatch.setattr("certifi.where", certifi.core.where)
    with pytest.raises(FetchError):
        fetch(f"https://{PROVIDER_HOST}:{origin.port}/r/1.png", user_url=False)
    assert origin.requests == []
