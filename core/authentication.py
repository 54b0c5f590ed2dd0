from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from core import errors
from core.observability import bind_user
from core.sql import row_get


class EnvelopeJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer authentication, telling an expired token apart from a bad one."""

    def authenticate(self, request: Request) -> Any:
        try:
            authenticated = super().authenticate(request)
        except AuthenticationFailed as exc:
            raise errors.TokenInvalid() from exc
        if authenticated is not None:
            bind_user(authenticated[0].pk)
        return authenticated

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    def get_validated_token(self, raw_token: bytes) -> Token:
        for token_class in api_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except ExpiredTokenError as exc:
                raise errors.TokenExpired() from exc
            except TokenError:
                continue
        raise errors.TokenInvalid()

    def get_user(self, validated_token: Token) -> Any:
        """The token's user, with simplejwt's checks (it exists, is active, and the token predates
        no password change), read by core/sql.py's `row_get`: every authenticated request pays for
        this look-up, and the ORM's query building was most of it."""
        user_model = get_user_model()
        if user_model._meta.pk.name != api_settings.USER_ID_FIELD:
            return super().get_user(validated_token)
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("no user id in the token") from exc
        try:
            user = row_get(user_model, user_id)
        except (TypeError, ValueError, OverflowError) as exc:  # not an id the column can hold
            raise InvalidToken("no user id in the token") from exc
        if user is None:
            raise AuthenticationFailed("user not found", code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("user is inactive", code="user_inactive")
        revoked = validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password)
        if api_settings.CHECK_REVOKE_TOKEN and revoked:
            raise AuthenticationFailed("the password changed after the token was issued", code="password_changed")
        return user
