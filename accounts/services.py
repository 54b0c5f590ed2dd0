from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import HttpRequest
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from core import errors


def _token_pair(user: User) -> tuple[str, str]:
    refresh = RefreshToken.for_user(user)
    return str(refresh.access_token), str(refresh)


def auth_login(*, request: HttpRequest | None, username: str, password: str) -> tuple[User, str, str]:
    user = authenticate(request, username=username, password=password)
    if not isinstance(user, User):
        raise errors.LoginFailed()
    return (user, *_token_pair(user))


def auth_refresh(*, refresh: str) -> tuple[str, str]:
    """Rotate a refresh token. The old one is blacklisted; of two requests racing with the same
    token only one gets a new pair (the blacklist row is unique per token)."""
    try:
        old = RefreshToken(refresh)  # type: ignore[arg-type]
    except ExpiredTokenError as exc:
        raise errors.TokenExpired() from exc
    except TokenError as exc:
        raise errors.TokenInvalid() from exc
    user = User.objects.filter(pk=str(old.payload.get(api_settings.USER_ID_CLAIM)), is_active=True).first()
    if user is None:
        raise errors.TokenInvalid()
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=old[api_settings.JTI_CLAIM],
        defaults={"user": user, "token": refresh, "expires_at": old.current_time + old.lifetime},
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise errors.TokenInvalid()
    return _token_pair(user)
