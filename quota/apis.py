"""The logged-in user's quota (SPEC §4)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import request_user
from core.schema import AUTHENTICATED, error_responses
from core.serializers import UtcDateTimeField
from quota.selectors import quota_info


# One object although the viewset action is `list` (which drf-spectacular would show as an array).
@extend_schema_serializer(many=False)
class QuotaOut(serializers.Serializer[Any]):
    remaining = serializers.IntegerField()
    isMember = serializers.BooleanField(source="is_member")
    expireAt = UtcDateTimeField(source="expire_at", allow_null=True)


class QuotaViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="quota_get",
        summary="The logged-in user's quota",
        responses={200: QuotaOut, **error_responses(*AUTHENTICATED)},
    )
    def list(self, request: Request) -> Response:
        return Response(QuotaOut(quota_info(user=request_user(request))).data)
