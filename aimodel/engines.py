"""Chooses the configured engine for each job step; the apps call these, never an engine directly."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from aimodel.basic_clean_local import basic_clean_local
from aimodel.runninghub import RunningHubClient
from aimodel.tencent_ci import TencentCiError, audit_image_tencent_ci, basic_clean_tencent_ci
from aimodel.types import AuditResult, AuditVerdict, ImageOutput


class EngineError(Exception):
    """An engine could not produce its images; `transient` when trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def basic_clean(*, image: bytes, work_prefix: str) -> list[ImageOutput]:
    if settings.BASIC_CLEAN_ENGINE == "tencent_ci":
        try:
            return basic_clean_tencent_ci(image=image, work_prefix=work_prefix)
        except TencentCiError as exc:
            raise EngineError(str(exc), transient=exc.transient) from exc
    try:
        return basic_clean_local(image=image)
    except ValueError as exc:
        raise EngineError(str(exc), transient=False) from exc


def audit_image(*, key: str) -> AuditResult:
    """Moderation of a stored result. Raises AuditUnavailable when there is no answer."""
    if settings.AUDIT_BACKEND == "tencent_ci":
        return audit_image_tencent_ci(key=key)
    return AuditResult(verdict=AuditVerdict.SKIPPED)


def audit_blocks(result: AuditResult) -> bool:
    if result.verdict == AuditVerdict.BLOCK:
        return True
    return result.verdict == AuditVerdict.REVIEW and bool(settings.AUDIT_REVIEW_BLOCKS)


@cache
def runninghub_client() -> RunningHubClient:
    return RunningHubClient(base_url=settings.RUNNINGHUB_BASE_URL, api_key=settings.RUNNINGHUB_API_KEY)
