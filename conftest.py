"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member, make_user


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters live in the shared cache; each test starts with none."""
    cache.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(api: APIClient) -> Callable[[User], APIClient]:
    """An API client logged in as `user` with a real access token."""
    from rest_framework_simplejwt.tokens import RefreshToken

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return make


@pytest.fixture
def member(db: None) -> User:
    return make_member()


@pytest.fixture
def non_member(db: None) -> User:
    return make_user()


@pytest.fixture
def staff(db: None) -> User:
    return make_user(is_staff=True, username="staffer")
