"""GET /api/quota: the logged-in user's balance and membership (SPEC §4)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def test_quota_for_member_and_non_member(client_for: Client, member: User, non_member: User) -> None:
    body = client_for(member).get("/api/quota").json()
    assert body["success"] is True
    assert body["data"]["remaining"] == 10 and body["data"]["isMember"] is True
    assert body["data"]["expireAt"] is not None
    other = client_for(non_member).get("/api/quota").json()["data"]
    assert other == {"remaining": 0, "isMember": False, "expireAt": None}


def test_lapsed_member_is_not_a_member(client_for: Client) -> None:
    user = make_member()
    user.quota_expire_at = timezone.now() - timedelta(seconds=1)
    user.save(update_fields=["quota_expire_at"])
    assert client_for(user).get("/api/quota").json()["data"]["isMember"] is False


def test_quota_query_count(client_for: Client, member: User, django_assert_max_num_queries: Any) -> None:
    client = client_for(member)
    with django_assert_max_num_queries(1):
        assert client.get("/api/quota").status_code == 200
