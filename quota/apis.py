from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from quota.selectors import quota_info


class QuotaSerializer(serializers.Serializer[Any]):
    remaining = serializers.IntegerField()
    isMember = serializers.BooleanField()
    expireAt = serializers.DateTimeField(allow_null=True)


class QuotaApi(APIView):
    @extend_schema(responses=QuotaSerializer, summary="The logged-in user's quota")
    def get(self, request: Request) -> Response:
        info = quota_info(user=request.user)  # type: ignore[arg-type]
        return Response(
            {
                "remaining": info.remaining,
                "isMember": info.is_member,
                "expireAt": info.expire_at.isoformat() if info.expire_at else None,
            }
        )
