from __future__ import annotations

from django.conf import settings
from django.db import models


class Upload(models.Model):
    """A photo a member uploaded: who owns it and what it is, so that ordering a job checks it in
    the database (no storage round trip) and uploads no task ever used can be cleaned up."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name="用户", db_index=False
    )
    key = models.CharField("存储键", max_length=255, unique=True)
    content_type = models.CharField(max_length=20)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField("上传时间", auto_now_add=True)
    # Set when a task is ordered on it; uploads never used are deleted after UPLOAD_RETENTION_DAYS.
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "上传图片"
        verbose_name_plural = "上传图片"
        indexes = [
            models.Index(fields=["user", "created_at"], name="upload_user_created"),
            models.Index(fields=["created_at"], condition=models.Q(used_at__isnull=True), name="upload_unused"),
        ]

    def __str__(self) -> str:
        return self.key
