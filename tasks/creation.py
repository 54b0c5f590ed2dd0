"""Ordering a job: the SPEC §4 creation order, the charge and the insert in one transaction, and
the Idempotency-Key that makes a repeated request answer with the first task."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core import errors
from media.fetch import FetchError, check_user_url
from media.services import media_require_upload, upload_key_for_url
from quota.services import quota_deduct
from tasks.events import task_created_event
from tasks.models import IdempotencyKey, Task, TaskType
from tasks.queue import enqueue_advance
from tasks.selectors import task_with_refund

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Created:
    task: Task
    replayed: bool


def _check_input_url(*, url: str, user: User) -> None:
    """Own uploads are accepted when they still exist; any other URL must pass the user-URL policy
    (https, allowed host, public addresses only)."""
    upload_key = upload_key_for_url(url)
    if upload_key is not None:
        if not upload_key.startswith(f"uploads/{user.pk}/"):
            raise errors.InvalidParams(
                "只能使用自己上传的图片",
                "Only your own uploads can be used",
                fields={"inputImageUrl": ["不是你的上传"]},
            )
        media_require_upload(key=upload_key)
        return
    try:
        check_user_url(url)
    except FetchError as exc:
        raise errors.InvalidParams(fields={"inputImageUrl": [str(exc)]}) from exc


def _request_hash(task_type: str, input_image_url: str, params: dict[str, str]) -> str:
    canonical = json.dumps([task_type, input_image_url, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(*, user: User, key: str, request_hash: str) -> Created | None:
    existing = IdempotencyKey.objects.filter(user=user, key=key).first()
    if existing is None:
        return None
    if existing.created_at < timezone.now() - IDEMPOTENCY_TTL:
        existing.delete()
        return None
    if existing.request_hash != request_hash:
        raise errors.IdempotencyConflict()
    return Created(task=task_with_refund(task_id=existing.task_id), replayed=True)


def task_create(
    *,
    user: User,
    task_type: TaskType,
    input_image_url: str,
    params: dict[str, str],
    idempotency_key: str | None = None,
) -> Created:
    """SPEC §4 "Create, in order". Type and params arrive checked (4001/4002 at parsing); then
    membership → input URL → charge and insert in one transaction → enqueue after commit."""
    request_hash = _request_hash(task_type, input_image_url, params)
    if idempotency_key:
        replay = _replay(user=user, key=idempotency_key, request_hash=request_hash)
        if replay is not None:
            return replay
    if not user.is_active_member:
        raise errors.MembershipRequired()
    _check_input_url(url=input_image_url, user=user)

    cost = settings.TASK_COSTS[task_type]
    now = timezone.now()
    task = Task(
        id=uuid.uuid4(),
        user=user,
        type=task_type,
        input_image_url=input_image_url,
        params=params,
        cost=cost,
        next_attempt_at=now,
    )
    try:
        with transaction.atomic():
            if idempotency_key:
                # The key is claimed first (the task row follows in this transaction; the foreign key
                # is checked at commit): a concurrent request with the same key waits here for this
                # one to commit, then replays it, instead of being charged or refused for quota.
                IdempotencyKey.objects.create(
                    user=user, key=idempotency_key, request_hash=request_hash, task_id=task.id
                )
            quota_deduct(user_id=user.pk, amount=cost, task_id=task.id, reason=f"创建任务 {TaskType(task_type).label}")
            task.save(force_insert=True)
            task_created_event(task=task)
            transaction.on_commit(lambda: enqueue_advance(task_id=task.id, task_type=task.type, due=now))
    except IntegrityError:
        # Only the idempotency key can collide: a concurrent request with the same key won.
        replay = _replay(user=user, key=idempotency_key or "", request_hash=request_hash) if idempotency_key else None
        if replay is None:
            raise
        return replay
    return Created(task=task, replayed=False)
