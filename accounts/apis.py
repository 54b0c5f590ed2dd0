from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import (
    LoginAnswerSerializer,
    LoginSerializer,
    RefreshSerializer,
    TokenPairSerializer,
    UserSerializer,
    user_payload,
)
from accounts.services import auth_login, auth_refresh
from core.throttling import LoginIPThrottle, LoginUsernameThrottle


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginIPThrottle, LoginUsernameThrottle]

    @extend_schema(
        request=LoginSerializer, responses=LoginAnswerSerializer, summary="Log in with username and password"
    )
    def post(self, request: Request) -> Response:
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, token, refresh = auth_login(request=request._request, **body.validated_data)
        return Response({"token": token, "refresh": refresh, "user": user_payload(user)})


class RefreshApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [LoginIPThrottle]

    @extend_schema(request=RefreshSerializer, responses=TokenPairSerializer, summary="Rotate the refresh token")
    def post(self, request: Request) -> Response:
        body = RefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, refresh = auth_refresh(refresh=body.validated_data["refresh"])
        return Response({"token": token, "refresh": refresh})


class MeApi(APIView):
    @extend_schema(responses=UserSerializer, summary="The logged-in user")
    def get(self, request: Request) -> Response:
        return Response(user_payload(request.user))  # type: ignore[arg-type]
