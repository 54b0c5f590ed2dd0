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


def test_the_window_is_counted_in_one_round_trip_and_names_its_remaining_seconds(settings: Any) -> None:
    from django.core.cache import caches
    from redis.client import Pipeline

    trusted_proxies(settings, 0)
    executed: list[int] = []
    original = Pipeline.execute

    def count(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        executed.append(len(self.command_stack))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "execute", count)
        assert [attempt(n, REMOTE_ADDR="203.0.113.20") for n in range(LIMIT + 1)] == [400] * LIMIT + [429]
    # One pipelined exchange per login attempt and throttle (address and username).
    assert executed == [3] * (2 * (LIMIT + 1))
    # The window's counter expires with the window.
    cache = caches["default"]
    key = cache.make_key("throttle_login_ip_203.0.113.20")
    client = cache._cache.get_client(key)  # type: ignore[attr-defined]
    assert int(client.get(key)) == LIMIT + 1
    assert 0 < client.ttl(key) <= 60


@pytest.mark.parametrize("location", ["locmemcache://"])
def test_other_cache_backends_count_too(settings: Any, location: str) -> None:
    import environ

    settings.CACHES = {"default": environ.Env.cache_url_config(location)}
    trusted_proxies(settings, 0)
    assert [attempt(n, REMOTE_ADDR="203.0.113.21") for n in range(LIMIT + 2)] == [400] * LIMIT + [429, 429]


def test_an_unreachable_cache_lets_requests_through(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Port 1 of loopback: the connection is refused at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    trusted_proxies(settings, 0)
    assert [attempt(n, REMOTE_ADDR="203.0.113.22") for n in range(LIMIT + 2)] == [400] * (LIMIT + 2)
    assert "throttle login_ip not counted" in caplog.text
