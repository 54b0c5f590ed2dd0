"""Log in, rotate and revoke tokens (SPEC §4, §8; README "Security model: tokens").

A login starts a *chain*: its refresh token carries the login time (`auth_time`, OpenID Connect's
name for it), every rotation copies it, and no token of the chain is valid past `auth_time` +
JWT_REFRESH_DAYS. Every token also carries simplejwt's fingerprint of the password hash
(CHECK_REVOKE_TOKEN), so a password change refuses all tokens issued before it without a query of
its own: the request's user load, which simplejwt does anyway, brings the current hash.
"""

from __future__ import annotations

import structlog
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.db import transaction
from django.http import HttpRequest
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from accounts.models import User
from core import errors

AUTH_TIME_CLAIM = "auth_time"

logger = structlog.get_logger(__name__)


def _token_pair(user: User, *, auth_time: int | None) -> tuple[str, str]:
    """A new pair for the chain whose login was at `auth_time` (None: a login now). The outstanding
    row that for_user writes keeps the nominal expiry, at or after the capped one, so
    flushexpiredtokens never forgets a revoked token that could still be presented."""
    refresh = RefreshToken.for_user(user)
    if auth_time is None:
        auth_time = int(refresh["iat"])
    refresh[AUTH_TIME_CLAIM] = auth_time
    refresh.set_exp(from_time=datetime_from_epoch(auth_time))
    access = refresh.access_token
    access["exp"] = min(access["exp"], refresh["exp"])
    return str(access), str(refresh)


def _live_refresh_token(raw: str) -> tuple[RefreshToken, User, int]:
    """The refresh token, its user and when its chain began, if it may still be used: our
    signature, a refresh token, not expired, not revoked, its user active with the password it was
    issued under, and its chain younger than the refresh lifetime (which may have been shortened
    since it was issued). A token made outside a login (RefreshToken.for_user in a shell or a
    test) has no login time: its chain began when it was issued."""
    try:
        token = RefreshToken(raw)  # type: ignore[arg-type]
    except ExpiredTokenError as exc:
        raise errors.TokenExpired() from exc
    except TokenError as exc:
        raise errors.TokenInvalid() from exc
    user = User.objects.filter(pk=str(token.get(api_settings.USER_ID_CLAIM)), is_active=True).first()
    if user is None or token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise errors.TokenInvalid()
    auth_time = token.get(AUTH_TIME_CLAIM, token.get("iat"))
    if not isinstance(auth_time, int):
        raise errors.TokenInvalid()
    if datetime_from_epoch(auth_time) + api_settings.REFRESH_TOKEN_LIFETIME <= token.current_time:
        raise errors.TokenExpired()
    return token, user, auth_time


def _revoke(token: RefreshToken, user: User) -> None:
    """Blacklist the token. Of requests racing with one token only the first gets here without
    error: the blacklist row is unique per token, and the others find it taken."""
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token[api_settings.JTI_CLAIM],
        defaults={"user": user, "token": str(token), "expires_at": datetime_from_epoch(token["exp"])},
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise errors.TokenInvalid()


def auth_login(*, request: HttpRequest | None, username: str, password: str) -> tuple[User, str, str]:
    user = authenticate(request, username=username, password=password)
    if not isinstance(user, User):
        raise errors.LoginFailed()
    if api_settings.UPDATE_LAST_LOGIN:
        update_last_login(User, user)
    return (user, *_token_pair(user, auth_time=None))


def auth_refresh(*, refresh: str) -> tuple[str, str]:
    """Rotate a refresh token: the old one is revoked and the new pair stays in its chain."""
    token, user, auth_time = _live_refresh_token(refresh)
    with transaction.atomic():
        _revoke(token, user)
        return _token_pair(user, auth_time=auth_time)


def auth_logout(*, refresh: str) -> None:
    """Revoke a refresh token. Access tokens already issued from it run out on their own (at most
    JWT_ACCESS_MINUTES): checking a revocation list on every request would cost a query each."""
    token, user, _ = _live_refresh_token(refresh)
    _revoke(token, user)
    logger.info("auth.logout", user_id=user.pk)
