"""GET /health checks the database, the broker and the cache, each with a short timeout: a
dependency that accepts connections but never answers makes the probe 503 within seconds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never says anything."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def test_a_hung_cache_fails_the_probe_quickly(settings: Any, silent_port: int) -> None:
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{silent_port}/1",
        }
    }
    started = time.monotonic()
    response = Client().get("/health")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "cache": "error"}
    assert time.monotonic() - started < 6


def test_a_hung_broker_fails_the_probe_quickly(settings: Any, silent_port: int) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_port}/0"
    started = time.monotonic()
    response = Client().get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "error"
    assert time.monotonic() - started < 6
