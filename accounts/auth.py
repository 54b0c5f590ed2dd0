"""The caller of an API request, typed once for every view."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


def request_user(request: Request | HttpRequest) -> User:
    """The logged-in user of an API request that passed IsAuthenticated, or of an admin request
    (the admin lets only logged-in staff through)."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("request_user() needs a view that requires authentication")
    return user
