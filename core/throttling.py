"""Throttles. Every rate is a fixed-window counter in the shared cache: one round trip per request
(INCR in a pipeline on Redis) instead of DRF's read-modify-write of a timestamp list (a read and a
write, and a race that lets concurrent requests through). A window opens with its first request
and lasts the rate's period; a client gets at most the rate's count per window, so up to twice the
count across a window boundary.

When the cache cannot be reached the request is let through (and logged): a throttle protects the
service, it must not take it down with the cache. Ordering stays bounded by the per-member cap on
unfinished tasks, which lives in the database."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

logger = logging.getLogger(__name__)


# Django's Redis cache builds a client object (with its table of reply parsers) for every
# operation; the throttles hold one per connection pool instead (clients are thread-safe).
_clients: dict[int, tuple[Any, Any]] = {}


def _redis_client(cache: RedisCache) -> Any:
    pool = cache._cache._get_connection_pool(write=True)  # type: ignore[attr-defined]
    held = _clients.get(id(pool))
    if held is None or held[0] is not pool:
        held = _clients[id(pool)] = (pool, cache._cache._client(connection_pool=pool))  # type: ignore[attr-defined]
    return held[1]


def _hit(key: str, window: int) -> tuple[int, int]:
    """Count one request in `key`'s window; (requests so far in the window, seconds it has left)."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        redis_key = cache.make_key(key)
        client = _redis_client(cache)
        pipe = client.pipeline(transaction=False)
        pipe.set(redis_key, 0, ex=window, nx=True)
        pipe.incr(redis_key)
        pipe.ttl(redis_key)
        _, count, ttl = pipe.execute()
        return int(count), int(ttl) if ttl > 0 else window
    cache.add(key, 0, window)
    return cache.incr(key), window


class CountingThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's rates and keys, counted in a fixed window (see the module)."""

    # Set by SimpleRateThrottle from the rate ("30/min": 30 requests, 60 seconds).
    num_requests: int
    duration: int
    window_left: int = 0

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            count, self.window_left = _hit(self.key, self.duration)
        except Exception:
            logger.warning("throttle %s not counted: the cache is unreachable", self.scope, exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return float(max(self.window_left, 1))


class ScopedThrottle(ScopedRateThrottle, CountingThrottle):
    """A view's `throttle_scope` rate, per member (per address when anonymous)."""


class LoginIPThrottle(CountingThrottle):
    """Per client address, as seen through TRUSTED_PROXIES (REST_FRAMEWORK["NUM_PROXIES"])."""

    scope = "login_ip"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(CountingThrottle):
    """Guessing one account's password from many addresses is throttled too."""

    scope = "login_user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        data: Any = request.data if isinstance(request.data, dict) else {}
        username = str(data.get("username", "")).strip().lower()[:150]
        if not username:
            return None
        return self.cache_format % {"scope": self.scope, "ident": username}
