"""Ordering a job: the SPEC §4 creation order, the charge and the insert in one transaction, and
the Idempotency-Key that makes a repeated request answer with the first task."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core import errors
from core.sql import row_insert
from media.fetch import FetchError, check_user_url
from media.services import media_require_upload, upload_key_for_url, upload_key_for_user
from quota.services import quota_deduct
from tasks.counters import task_active_count, task_counted
from tasks.events import task_created_event
from tasks.models import IdempotencyKey, Task, TaskStatus, TaskType
from tasks.queue import enqueue_advance
from tasks.selectors import task_with_refund, with_refund

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Created:
    task: Task
    replayed: bool


def _check_input_url(*, url: str, user: User) -> None:
    """Own uploads are accepted when they still exist; any other URL must pass the user-URL policy
    (https, allowed host, public addresses only)."""
    own_key = upload_key_for_user(url, user_id=user.pk)
    if own_key is not None:
        media_require_upload(key=own_key, user_id=user.pk)
        return
    if upload_key_for_url(url) is not None:
        raise errors.InvalidParams(
            "只能使用自己上传的图片", "Only your own uploads can be used", fields={"inputImageUrl": ["不是你的上传"]}
        )
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


@dataclass(frozen=True)
class TaskOrder:
    """One job as ordered: type and params checked at parsing, the URL still to be accepted."""

    task_type: TaskType
    input_image_url: str
    params: dict[str, str]


@dataclass(frozen=True)
class BatchCreated:
    batch_id: uuid.UUID
    tasks: list[Task]
    replayed: bool


def task_create(
    *,
    user: User,
    task_type: TaskType,
    input_image_url: str,
    params: dict[str, str],
    idempotency_key: str | None = None,
    retry_of: Task | None = None,
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
    order = TaskOrder(task_type=task_type, input_image_url=input_image_url, params=params)
    try:
        [task] = _charge_and_insert(
            user=user, orders=[order], idempotency=(idempotency_key, request_hash), retry_of=retry_of
        )
    except IntegrityError:
        # A concurrent request with the same key won (it is replayed), or the task was retried meanwhile.
        replay = _replay(user=user, key=idempotency_key or "", request_hash=request_hash) if idempotency_key else None
        if replay is not None:
            return replay
        if retry_of is not None:
            raise errors.InvalidTransition("该任务已重试过", "The task was already retried") from None
        raise
    return Created(task=task, replayed=False)


def task_batch_create(*, user: User, orders: list[TaskOrder], idempotency_key: str | None = None) -> BatchCreated:
    """SPEC §8 batch: every item checked first (an error names its item), then all charged and
    created in one transaction, or none (1003 when the quota does not cover the whole batch)."""
    request_hash = _request_hash(
        "batch", "", {str(i): _request_hash(*o.__dict__.values()) for i, o in enumerate(orders)}
    )
    if idempotency_key:
        replay = _replay_batch(user=user, key=idempotency_key, request_hash=request_hash)
        if replay is not None:
            return replay
    if not user.is_active_member:
        raise errors.MembershipRequired()
    for index, order in enumerate(orders):
        try:
            _check_input_url(url=order.input_image_url, user=user)
        except errors.InvalidParams as exc:
            raise errors.InvalidParams(
                exc.text_zh,
                exc.text_en,
                fields={f"items[{index}].{name}": messages for name, messages in (exc.fields or {}).items()},
            ) from exc
    batch_id = uuid.uuid4()
    try:
        tasks = _charge_and_insert(
            user=user, orders=orders, idempotency=(idempotency_key, request_hash), batch_id=batch_id
        )
    except IntegrityError:
        replay = _replay_batch(user=user, key=idempotency_key or "", request_hash=request_hash)
        if replay is None:
            raise
        return replay
    return BatchCreated(batch_id=batch_id, tasks=tasks, replayed=False)


def _replay_batch(*, user: User, key: str, request_hash: str) -> BatchCreated | None:
    first = _replay(user=user, key=key, request_hash=request_hash)
    if first is None or first.task.batch_id is None:
        return None
    tasks = list(with_refund(Task.objects.filter(user=user, batch_id=first.task.batch_id).order_by("batch_index")))
    return BatchCreated(batch_id=first.task.batch_id, tasks=tasks, replayed=True)


def _charge_and_insert(
    *,
    user: User,
    orders: list[TaskOrder],
    idempotency: tuple[str | None, str],
    batch_id: uuid.UUID | None = None,
    retry_of: Task | None = None,
) -> list[Task]:
    now = timezone.now()
    tasks = [
        Task(
            id=uuid.uuid4(),
            user=user,
            type=order.task_type,
            input_image_url=order.input_image_url,
            params=order.params,
            cost=settings.TASK_COSTS[order.task_type],
            next_attempt_at=now,
            batch_id=batch_id,
            batch_index=index if batch_id else None,
            retry_of=retry_of,
        )
        for index, order in enumerate(orders)
    ]
    key, request_hash = idempotency
    with transaction.atomic():
        if key:
            # The key is claimed first (the task rows follow in this transaction; the foreign key
            # is checked at commit): a concurrent request with the same key waits here for this
            # one to commit, then replays it, instead of being charged or refused for quota.
            IdempotencyKey.objects.create(user=user, key=key, request_hash=request_hash, task_id=tasks[0].id)
        if len(tasks) > 1:
            _require_quota_for_all(user=user, total=sum(task.cost for task in tasks))
        for task in tasks:
            quota_deduct(
                user_id=user.pk, amount=task.cost, task_id=task.id, reason=f"创建任务 {task.get_type_display()}"
            )
        # The user row is locked by now, so two requests cannot both squeeze under the cap.
        active = task_active_count(user_id=user.pk)
        if active + len(tasks) > settings.MEMBER_MAX_ACTIVE_TASKS:
            raise errors.RateLimited(
                f"未完成的任务已达上限({settings.MEMBER_MAX_ACTIVE_TASKS} 个),请等待任务完成后再提交",
                f"At most {settings.MEMBER_MAX_ACTIVE_TASKS} unfinished tasks; wait for some to finish",
                headers={"Retry-After": "60"},
            )
        for task in tasks:
            row_insert(task)
            task_created_event(task=task)
            task_counted(user_id=user.pk, task_type=task.type, from_status=None, to_status=TaskStatus.PENDING)
        transaction.on_commit(lambda: _enqueue_all(tasks, due=now))
    return tasks


def _require_quota_for_all(*, user: User, total: int) -> None:
    locked = User.objects.select_for_update(no_key=True).filter(pk=user.pk)
    remaining = locked.values_list("quota_remaining", flat=True).get()
    if remaining < total:
        raise errors.QuotaInsufficient(
            f"配额不足,请续费(本批需要 {total},还差 {total - remaining})",
            f"Not enough quota: the batch needs {total}, {total - remaining} short",
        )


def _enqueue_all(tasks: list[Task], *, due: datetime) -> None:
    for task in tasks:
        enqueue_advance(task_id=task.id, task_type=task.type, due=due)
