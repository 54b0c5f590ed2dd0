"""Every quota move goes through here: the user row is locked, the balance changes and one ledger
row is written in the same transaction, so `quota_remaining == sum(ledger.delta)` always holds."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core import errors
from quota.models import LedgerKind, QuotaLedger


def _locked_user(user_id: int) -> User:
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise errors.QuotaUserNotFound()
    return user


def _move(
    *,
    user: User,
    delta: int,
    kind: str,
    task_id: uuid.UUID | None = None,
    reason: str = "",
    actor: User | None = None,
    expire_at: datetime | None = None,
) -> QuotaLedger:
    user.quota_remaining += delta
    fields = ["quota_remaining"]
    if kind == LedgerKind.GRANT:
        user.is_member = True
        user.quota_expire_at = expire_at
        fields += ["is_member", "quota_expire_at"]
    user.save(update_fields=fields)
    return QuotaLedger.objects.create(
        user=user,
        delta=delta,
        balance_after=user.quota_remaining,
        kind=kind,
        task_id=task_id,
        reason=reason[:255],
        actor=actor,
    )


# Sanity limits: far above any real purchase, far below the integer column and date range.
MAX_AMOUNT = 1_000_000
MAX_DAYS = 3650
MAX_BALANCE = 100_000_000


def _positive(amount: int, name: str = "amount", limit: int = MAX_AMOUNT) -> None:
    if amount <= 0:
        raise errors.InvalidParams(f"{name} 必须为正整数", f"{name} must be a positive integer")
    if amount > limit:
        raise errors.InvalidParams(f"{name} 不能超过 {limit}", f"{name} must not exceed {limit}")


def _within_balance(user: User, delta: int) -> None:
    if user.quota_remaining + delta > MAX_BALANCE:
        raise errors.InvalidParams(f"配额余额不能超过 {MAX_BALANCE}", f"The balance must not exceed {MAX_BALANCE}")


def quota_deduct(
    *, user_id: int, amount: int, task_id: uuid.UUID | None = None, reason: str = "", actor: User | None = None
) -> QuotaLedger:
    """Charge `amount`. Inside a caller's transaction it adds no savepoint, so the charge and the
    caller's insert commit or roll back together; the user row stays locked until then."""
    _positive(amount)
    refusal: errors.ApplicationError | None = None
    with transaction.atomic(savepoint=False):
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            refusal = errors.QuotaUserNotFound()
        elif not user.is_active_member:
            refusal = errors.QuotaNotMember()
        elif user.quota_remaining < amount:
            refusal = errors.QuotaInsufficient()
        else:
            row = _move(user=user, delta=-amount, kind=LedgerKind.DEDUCT, task_id=task_id, reason=reason, actor=actor)
    # Raised outside the block: an exception inside a savepoint-less block would doom the caller's
    # whole transaction even though nothing was written.
    if refusal is not None:
        raise refusal
    return row


def quota_refund(
    *, user_id: int, amount: int, task_id: uuid.UUID, reason: str, actor: User | None = None
) -> QuotaLedger | None:
    """Give back a task's charge. Returns None when the task was already refunded: the unique
    constraint on (task, refund) decides, however many callers race."""
    _positive(amount)
    with transaction.atomic():
        user = _locked_user(user_id)
        if QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).exists():
            return None
        try:
            with transaction.atomic():
                return _move(
                    user=user, delta=amount, kind=LedgerKind.REFUND, task_id=task_id, reason=reason, actor=actor
                )
        except IntegrityError:
            user.refresh_from_db(fields=["quota_remaining"])
            return None


def _expire_lapsed_quota(user: User, now: datetime) -> None:
    if user.quota_remaining > 0 and user.quota_expire_at is not None and user.quota_expire_at <= now:
        _move(user=user, delta=-user.quota_remaining, kind=LedgerKind.EXPIRE, reason="会员到期,剩余配额作废")


def quota_grant(*, user_id: int, amount: int, days: int, reason: str = "", actor: User | None = None) -> QuotaLedger:
    """Membership purchase or support grant: adds quota and extends the expiry by `days` from the
    later of now and the current expiry. Quota left over from a lapsed membership expires first."""
    _positive(amount)
    _positive(days, "days", MAX_DAYS)
    with transaction.atomic():
        user = _locked_user(user_id)
        now = timezone.now()
        _expire_lapsed_quota(user, now)
        _within_balance(user, amount)
        start = max(now, user.quota_expire_at) if user.quota_expire_at and user.is_member else now
        return _move(
            user=user,
            delta=amount,
            kind=LedgerKind.GRANT,
            reason=reason or f"开通会员 {days} 天",
            actor=actor,
            expire_at=start + timedelta(days=days),
        )


def quota_adjust(*, user_id: int, delta: int, reason: str, actor: User | None = None) -> QuotaLedger:
    """Support correction; the reason is mandatory and the balance may not go below zero."""
    if not reason.strip():
        raise errors.InvalidParams("调整配额必须填写原因", "A reason is required", fields={"reason": ["必填"]})
    if delta == 0:
        raise errors.InvalidParams("调整数量不能为 0", "The delta must not be zero", fields={"delta": ["不能为 0"]})
    _positive(abs(delta), "delta")
    with transaction.atomic():
        user = _locked_user(user_id)
        _within_balance(user, delta)
        if user.quota_remaining + delta < 0:
            raise errors.InvalidParams(
                "调整后配额不能为负", "The balance cannot go below zero", fields={"delta": ["调整后配额不能为负"]}
            )
        return _move(user=user, delta=delta, kind=LedgerKind.ADJUST, reason=reason.strip(), actor=actor)


def quota_expire_lapsed() -> int:
    """Set-based sweep: zero the quota of every lapsed membership with one `expire` row each.
    Rows locked by a concurrent sweep or deduction are skipped and picked up by the next run."""
    now = timezone.now()
    with transaction.atomic():
        users = list(
            User.objects.select_for_update(skip_locked=True)
            .filter(quota_expire_at__lte=now, quota_remaining__gt=0)
            .only("id", "quota_remaining")
        )
        if not users:
            return 0
        QuotaLedger.objects.bulk_create(
            QuotaLedger(
                user_id=user.pk,
                delta=-user.quota_remaining,
                balance_after=0,
                kind=LedgerKind.EXPIRE,
                reason="会员到期,剩余配额作废",
            )
            for user in users
        )
        User.objects.filter(pk__in=[u.pk for u in users]).update(quota_remaining=0)
    return len(users)
