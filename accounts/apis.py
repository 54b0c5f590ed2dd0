"""Log in, rotate the refresh token, log out, and the logged-in user (SPEC §4, §8)."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import request_user
from accounts.serializers import LoginIn, LoginOut, LogoutOut, RefreshIn, TokenPairOut, UserOut
from accounts.services import auth_login, auth_logout, auth_refresh
from core import errors
from core.schema import AUTHENTICATED, error_responses
from core.serializers import parse
from core.throttling import LoginIPThrottle, LoginUsernameThrottle


def refresh_token_action() -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Refresh and logout: open, since the refresh token in the body is the credential; throttled
    per client address like login. A new decorator for each action: DRF keeps its options in one
    dict per decorator."""
    return action(
        detail=False,
        methods=["post"],
        permission_classes=[AllowAny],
        authentication_classes=[],
        throttle_classes=[LoginIPThrottle],
    )


REFRESH_TOKEN_ERRORS = error_responses(errors.NotAuthenticated, errors.InvalidParams, errors.RateLimited)


class AuthViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_login",
        summary="Log in with username and password",
        request=LoginIn,
        responses={200: LoginOut, **error_responses(errors.LoginFailed, errors.InvalidParams, errors.RateLimited)},
        auth=[],
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[AllowAny],
        authentication_classes=[],
        throttle_classes=[LoginIPThrottle, LoginUsernameThrottle],
    )
    def login(self, request: Request) -> Response:
        data = parse(LoginIn, request.data)
        user, token, refresh = auth_login(request=request._request, **data)
        return Response(LoginOut({"token": token, "refresh": refresh, "user": user}).data)

    @extend_schema(
        operation_id="auth_refresh",
        summary="Rotate the refresh token",
        request=RefreshIn,
        responses={200: TokenPairOut, **REFRESH_TOKEN_ERRORS},
        auth=[],
    )
    @refresh_token_action()
    def refresh(self, request: Request) -> Response:
        data = parse(RefreshIn, request.data)
        token, refresh = auth_refresh(refresh=data["refresh"])
        return Response(TokenPairOut({"token": token, "refresh": refresh}).data)

    @extend_schema(
        operation_id="auth_logout",
        summary="Log out: revoke the refresh token",
        description="The refresh token is proof enough; no access token is needed (it may have expired).",
        request=RefreshIn,
        responses={200: LogoutOut, **REFRESH_TOKEN_ERRORS},
        auth=[],
    )
    @refresh_token_action()
    def logout(self, request: Request) -> Response:
        data = parse(RefreshIn, request.data)
        auth_logout(refresh=data["refresh"])
        return Response(LogoutOut({"loggedOut": True}).data)

    @extend_schema(
        operation_id="auth_me",
        summary="The logged-in user",
        responses={200: UserOut, **error_responses(*AUTHENTICATED)},
    )
    @action(detail=False, methods=["get"])
    def me(self, request: Request) -> Response:
        return Response(UserOut(request_user(request)).data)
