from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import errors
from core.throttling import UserRateThrottle
from media.services import media_upload
from media.storage import get_storage


class UploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField()


class UploadAnswerSerializer(serializers.Serializer[Any]):
    url = serializers.CharField()
    key = serializers.CharField()
    contentType = serializers.CharField()
    size = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class UploadApi(APIView):
    parser_classes = [MultiPartParser]
    throttle_classes = [UserRateThrottle]
    throttle_scope = "upload"

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: UploadAnswerSerializer})
    def post(self, request: Request) -> Response:
        # Refuse an oversized body before Django spools it to disk (multipart adds a little).
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > settings.UPLOAD_MAX_BYTES + 64 * 1024:
            raise errors.PayloadTooLarge("图片不能超过 20 MB", "The image exceeds 20 MB")
        upload = request.FILES.get("file")
        if upload is None:
            raise errors.InvalidParams(
                "请上传文件 file", "Upload a file in the `file` field", fields={"file": ["必填"]}
            )
        if upload.size is None or upload.size > settings.UPLOAD_MAX_BYTES:
            raise errors.InvalidParams("图片不能超过 20 MB", "The image exceeds 20 MB")
        key, url, info = media_upload(user_id=int(request.user.pk or 0), data=upload.read())
        return Response(
            {
                "url": get_storage().signed(url),
                "key": key,
                "contentType": info.content_type,
                "size": info.size,
                "width": info.width,
                "height": info.height,
            },
            status=status.HTTP_201_CREATED,
        )
