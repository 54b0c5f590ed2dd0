"""The per-address login throttle keys on the client address as seen through TRUSTED_PROXIES
(REST_FRAMEWORK["NUM_PROXIES"]): 0 = the socket's address, X-Forwarded-For ignored; N = the N-th
address from the right of X-Forwarded-For."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture(autouse=True)
def _rates(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the per-address counter can refuse here.
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "login_ip": f"{LIMIT}/min", "login_user": "1000/min"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def trusted_proxies(settings: Any, count: int) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}


def attempt(n: int, **meta: Any) -> int:
    response = APIClient().post(
        "/api/auth/login", {"username": f"guess{n}", "password": "wrong"}, format="json", **meta
    )
    if response.status_code == 429:
        # Every refusal says when to come back: within the minute of a per-minute rate.
        assert 1 <= int(response["Retry-After"]) <= 60, response.headers
        assert response.json()["error"]["code"] == 4029
    return int(response.status_code)


def test_without_trusted_proxies_a_changing_forwarded_for_does_not_reset_the_count(settings: Any) -> None:
    trusted_proxies(settings, 0)
    statuses = [attempt(n, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(LIMIT + 2)]
    assert statuses == [400] * LIMIT + [429, 429]
    # Another socket address has its own counter.
    assert attempt(99, REMOTE_ADDR="203.0.113.8", HTTP_X_FORWARDED_FOR="198.51.100.1") == 400


def test_with_one_trusted_proxy_the_right_most_forwarded_address_is_the_client(settings: Any) -> None:
    trusted_proxies(settings, 1)
    # The proxy appends the address it saw; whatever the client wrote before it is ignored.
    spoofed = [
        attempt(n, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7") for n in range(LIMIT + 1)
    ]
    assert spoofed == [400] * LIMIT + [429]
    # Clients that differ in the right-most address are counted apart, all behind the same proxy.
    assert [attempt(n, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"203.0.113.{100 + n}") for n in range(5)] == [
        400
    ] * 5


def test_with_one_trusted_proxy_a_request_without_forwarded_for_uses_the_socket(settings: Any) -> None:
    trusted_proxies(settings, 1)
    assert [attempt(n, REMOTE_ADDR="10.0.0.9") for n in range(LIMIT + 1)] == [400] * LIMIT + [429]
