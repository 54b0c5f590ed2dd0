"""Reads of quota: one user's balance and membership, and the ledger reconciliation."""

from typing import Any

import pytest
from django.db import connection

from accounts.tests.factories import make_member, make_user
from core import errors
from quota.selectors import quota_get, quota_mismatches

pytestmark = pytest.mark.django_db


def test_get(django_assert_num_queries: Any) -> None:
    user = make_member(quota=2)
    with django_assert_num_queries(1):  # the fields it reads come in the one query
        info = quota_get(user_id=user.pk)
    assert (info.remaining, info.is_member, info.expire_at) == (2, True, user.quota_expire_at)
    assert quota_get(user_id=make_user().pk).is_member is False
    with pytest.raises(errors.QuotaUserNotFound):
        quota_get(user_id=123_456_789)


def test_mismatch_is_detected_when_the_ledger_is_tampered_with() -> None:
    user = make_member(quota=2)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET quota_remaining = 7 WHERE id = %s", [user.pk])
    assert quota_mismatches() == [(user.username, 7, 2)]
