from typing import Any

from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from core import errors
from core.observability import bind_user


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
