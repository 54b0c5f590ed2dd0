"""Photo uploads (SPEC §4)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import request_user
from core import errors
from core.schema import AUTHENTICATED, error_responses
from core.throttling import ScopedThrottle
from media.images import REFUSALS
from media.services import media_upload
from media.storage import get_storage

TOO_LARGE = REFUSALS["bytes"]


class UploadIn(serializers.Serializer[Any]):
    file = serializers.FileField(help_text="JPEG, PNG or WebP, at most 20 MB and 40 megapixels")


class UploadOut(serializers.Serializer[Any]):
    url = serializers.URLField()
    key = serializers.CharField()
    contentType = serializers.CharField(source="content_type")
    size = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class MediaViewSet(viewsets.ViewSet):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "upload"

    @extend_schema(
        operation_id="media_upload",
        summary="Upload a product photo",
        request={"multipart/form-data": UploadIn},
        responses={
            201: UploadOut,
            **error_responses(
                *AUTHENTICATED,
                errors.InvalidParams,
                errors.PayloadTooLarge,
                errors.UnsupportedMediaType,
                errors.RateLimited,
            ),
        },
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def upload(self, request: Request) -> Response:
        # Refuse an oversized body before Django spools it to disk (multipart adds a little).
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > settings.UPLOAD_MAX_BYTES + 64 * 1024:
            raise errors.PayloadTooLarge(*TOO_LARGE)
        upload = request.FILES.get("file")
        if upload is None:
            raise errors.InvalidParams(
                "请上传文件 file", "Upload a file in the `file` field", fields={"file": ["必填"]}
            )
        if upload.size is None or upload.size > settings.UPLOAD_MAX_BYTES:
            raise errors.InvalidParams(*TOO_LARGE)
        key, url, info = media_upload(user_id=request_user(request).pk, data=upload.read())
        answer = {"url": get_storage().signed(url), "key": key, **dataclasses.asdict(info)}
        return Response(UploadOut(answer).data, status=status.HTTP_201_CREATED)
