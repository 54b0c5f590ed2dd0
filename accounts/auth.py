"""The caller of an API request, typed once for every view."""

from __future__ import annotations

from rest_framework.request import Request

from accounts.models import User


def request_user(request: Request) -> User:
    """The logged-in user of a request that passed IsAuthenticated."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("request_user() needs a view that requires authentication")
    return user
