"""The guarded download: caps against a local HTTP server, the address policy with patched DNS and
patched connects (no test traffic ever leaves 127.0.0.1)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest

from media.fetch import FetchError, fetch
from media.tests.images import product_photo

PHOTO = product_photo()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path
        if path == "/photo.png":
            self._send(200, PHOTO)
        elif path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", "/photo.png" if left == 0 else f"/hop/{left - 1}")
            self.send_header("Content-Length", "0")
            self.end_headers()
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


def test_provider_file_is_downloaded(origin: str) -> None:
    assert fetch(f"{origin}/photo.png", user_url=False) == PHOTO


def test_up_to_three_redirects_are_followed(origin: str) -> None:
    assert fetch(f"{origin}/hop/2", user_url=False) == PHOTO  # three redirects in all
    with pytest.raises(FetchError, match="重定向次数过多") as caught:
        fetch(f"{origin}/hop/3", user_url=False)
    assert caught.value.transient is False


def test_size_cap_declared_or_not(origin: str, settings: Any) -> None:
    with pytest.raises(FetchError, match="20 MB"):
        fetch(f"{origin}/declared-big", user_url=False)
    settings.UPLOAD_MAX_BYTES = 10_000
    with pytest.raises(FetchError, match="20 MB"):
        fetch(f"{origin}/undeclared-big", user_url=False)


def test_time_cap(origin: str, settings: Any) -> None:
    settings.FETCH_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch(f"{origin}/slow", user_url=False)
    assert caught.value.transient is True
    assert time.monotonic() - started < 2.5


def test_status_codes(origin: str) -> None:
    with pytest.raises(FetchError) as busy:
        fetch(f"{origin}/busy", user_url=False)
    assert busy.value.transient is True
    with pytest.raises(FetchError) as missing:
        fetch(f"{origin}/missing", user_url=False)
    assert missing.value.transient is False
    with pytest.raises(FetchError):
        fetch("file:///etc/passwd", user_url=False)


# --- user URLs: DNS and connects are patched ----------------------------------------------------

PUBLIC = "93.184.216.34"


def answers(*addresses: str) -> Any:
    """getaddrinfo returning each address in turn (the last one from then on)."""
    queue = list(addresses)

    def lookup(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            socket.inet_pton(socket.AF_INET, host)
            address = host  # an address literal resolves to itself
        except OSError:
            address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return mock.patch("socket.getaddrinfo", side_effect=lookup)


def test_the_connection_goes_to_the_checked_address_even_if_dns_changes() -> None:
    """DNS answers a public address for the check, then loopback (rebinding): the connect must
    still target the checked address. The patched connect records it and refuses."""
    connects: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connects.append(address)
        raise ConnectionRefusedError("test: no traffic leaves this machine")

    with (
        answers(PUBLIC, "127.0.0.1"),
        mock.patch("urllib3.util.connection.create_connection", side_effect=refuse),
        pytest.raises(FetchError) as caught,
    ):
        fetch("https://images.example.com/p.png", user_url=True)
    assert caught.value.transient is True
    assert connects == [(PUBLIC, 443)]


class FakeAnswer:
    def __init__(self, status: int, location: str = "") -> None:
        self.status = status
        self.headers = {"Location": location} if location else {}
        self._body = [PHOTO, b""]

    def read1(self, size: int) -> bytes:
        return self._body.pop(0)

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_every_redirect_hop_is_checked_again(settings: Any) -> None:
    settings.INPUT_URL_ALLOWED_HOSTS = ["images.example.com", "cdn.example.com"]
    hops = [FakeAnswer(302, "https://cdn.example.com/p.png"), FakeAnswer(200)]
    with (
        answers(PUBLIC, "10.0.0.5"),
        mock.patch("media.fetch._open", side_effect=hops) as opened,
        pytest.raises(FetchError, match="内部网络"),
    ):
        fetch("https://images.example.com/p.png", user_url=True)
    assert opened.call_count == 1, "the hop to the internal address was never opened"


def test_a_redirect_off_the_allowed_hosts_or_to_http_is_refused() -> None:
    for location in ("https://evil.example.org/p.png", "http://images.example.com/p.png"):
        with (
            answers(PUBLIC),
            mock.patch("media.fetch._open", side_effect=[FakeAnswer(302, location)]),
            pytest.raises(FetchError),
        ):
            fetch("https://images.example.com/p.png", user_url=True)


def test_a_clean_user_url_downloads_through_the_pinned_address() -> None:
    with answers(PUBLIC), mock.patch("media.fetch._open", side_effect=[FakeAnswer(200)]) as opened:
        assert fetch("https://images.example.com/p.png", user_url=True) == PHOTO
    assert opened.call_args.kwargs["address"] == PUBLIC
