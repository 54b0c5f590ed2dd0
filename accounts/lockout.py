"""Admin login lockout (SPEC §8): after ADMIN_LOGIN_MAX_FAILURES wrong passwords for one account,
or ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS from one client address, /admin/login/ refuses every
attempt, the right password included, until ADMIN_LOGIN_LOCKOUT_SECONDS after the first of them.

The counters live in the shared cache (CACHE_URL, Redis in production), so every web process
sees them. An attempt takes its place in the count (an atomic increment) before the password is
checked, and gives it back when the password was right: however many attempts race, no more than
the limit are ever checked.
"""

from __future__ import annotations

import contextlib
import hashlib

import structlog
from django.conf import settings
from django.core.cache import cache

logger = structlog.get_logger(__name__)


def _counters(*, username: str, address: str) -> list[tuple[str, int]]:
    def key(kind: str, value: str) -> str:
        return f"admin-login:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"

    return [
        (key("user", username.strip().lower()), settings.ADMIN_LOGIN_MAX_FAILURES),
        (key("address", address), settings.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ]


def admin_login_attempt(*, username: str, address: str) -> bool:
    """Count an attempt; False when the account or the address is locked out."""
    allowed = True
    for key, limit in _counters(username=username, address=address):
        # add() starts a window only when none is open; incr() keeps the window's expiry.
        cache.add(key, 0, timeout=settings.ADMIN_LOGIN_LOCKOUT_SECONDS)
        try:
            count = cache.incr(key)
        except ValueError:  # the window closed between add() and incr()
            cache.set(key, 1, timeout=settings.ADMIN_LOGIN_LOCKOUT_SECONDS)
            count = 1
        allowed = allowed and count <= limit
    if not allowed:
        logger.warning("admin_login.locked_out", username=username, address=address)
    return allowed


def admin_login_succeeded(*, username: str, address: str) -> None:
    """A right password does not use up the allowance: give its place back."""
    for key, _ in _counters(username=username, address=address):
        with contextlib.suppress(ValueError):  # the window has closed meanwhile
            cache.decr(key)
