"""Daily housekeeping of the auth tables, run by celery-beat."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.tasks import clear_sessions, flush_expired_tokens
from accounts.tests.factories import make_user
from config.celery import app

pytestmark = pytest.mark.django_db

SCHEDULE_MIGRATION = "accounts.migrations.0004_auth_cleanup_schedule"


def cleanup_schedule() -> dict[str, PeriodicTask]:
    """The rows the data migration seeded; transactional tests flush them, so seed them again then
    (the migration's own function, which is idempotent)."""
    import_module(SCHEDULE_MIGRATION).create_schedule(apps, None)
    rows = PeriodicTask.objects.filter(task__in=[flush_expired_tokens.name, clear_sessions.name])
    return {row.task: row for row in rows.select_related("crontab")}


def test_beat_runs_both_cleanups_daily_at_a_quiet_hour() -> None:
    schedule = cleanup_schedule()
    assert set(schedule) == {"accounts.flush_expired_tokens", "accounts.clear_sessions"}
    app.loader.import_default_modules()
    for name, row in schedule.items():
        assert row.enabled and name in app.tasks
        crontab = row.crontab
        assert crontab is not None and row.interval is None
        assert (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week) == (
            "30", "3", "*", "*", "*",
        )  # fmt: skip
        assert str(crontab.timezone) == "Asia/Shanghai"
    assert PeriodicTask.objects.filter(task__in=list(schedule)).count() == 2


def test_flush_expired_tokens_forgets_expired_tokens_only() -> None:
    user, now = make_user(), timezone.now()
    expired = OutstandingToken.objects.create(user=user, jti="old", token="t1", expires_at=now - timedelta(seconds=1))
    BlacklistedToken.objects.create(token=expired)
    live = OutstandingToken.objects.create(user=user, jti="live", token="t2", expires_at=now + timedelta(days=1))
    BlacklistedToken.objects.create(token=live)
    flush_expired_tokens.apply().get()
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == ["live"]
    assert BlacklistedToken.objects.get().token == live


def test_clear_sessions_deletes_expired_admin_sessions_only() -> None:
    stale, fresh = SessionStore(), SessionStore()
    stale.set_expiry(1)
    stale.create()
    fresh.create()
    Session.objects.filter(session_key=stale.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    clear_sessions.apply().get()
    assert list(Session.objects.values_list("session_key", flat=True)) == [fresh.session_key]
