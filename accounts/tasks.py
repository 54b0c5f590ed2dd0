"""Celery entry points for the daily housekeeping of the auth tables (scheduled in celery-beat by
migration 0004)."""

from __future__ import annotations

from celery import shared_task
from django.core.management import call_command

FLUSH_EXPIRED_TOKENS = "accounts.flush_expired_tokens"
CLEAR_SESSIONS = "accounts.clear_sessions"


@shared_task(name=FLUSH_EXPIRED_TOKENS, ignore_result=True)
def flush_expired_tokens() -> None:
    """Forget outstanding and blacklisted refresh tokens past their expiry (they are refused anyway)."""
    call_command("flushexpiredtokens")


@shared_task(name=CLEAR_SESSIONS, ignore_result=True)
def clear_sessions() -> None:
    """Delete expired admin sessions."""
    call_command("clearsessions")
