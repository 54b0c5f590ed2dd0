"""Every quota move goes through here: the user row is locked, the balance changes and one ledger
row is written in the same transaction, so `quota_remaining == sum(ledger.delta)` always holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from core import errors
from core.metrics import QUOTA_REFUNDED_UNITS, QUOTA_REFUNDS
from core.sql import row_insert
from quota.models import LedgerKind, QuotaLedger

logger = structlog.get_logger(__name__)


def _locked_user(user_id: int) -> User:
    # FOR NO KEY UPDATE: the balance changes, never the key, so rows that merely reference the user
    # (a task's status counters, events) are not blocked by it, and cannot deadlock against it.
    user = User.objects.select_for_update(no_key=True).filter(pk=user_id).first()
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
    row = QuotaLedger.objects.create(
        user=user,
        delta=delta,
        balance_after=user.quota_remaining,
        kind=kind,
        task_id=task_id,
        reason=reason[:255],
        actor=actor,
    )
    transaction.on_commit(lambda: _moved_event(row))
    return row


def _moved_event(row: QuotaLedger) -> None:
    """One structured line per committed quota move (quota.deduct, quota.refund, quota.grant,
    quota.adjust, ...), with the staff member who made it."""
    if row.kind == LedgerKind.REFUND:
        QUOTA_REFUNDS.inc()
        QUOTA_REFUNDED_UNITS.inc(row.delta)
    logger.info(
        f"quota.{row.kind}",
        user_id=row.user_id,
        delta=row.delta,
        balance_after=row.balance_after,
        task_id=str(row.task_id) if row.task_id else None,
        actor_id=row.actor_id,
        reason=row.reason,
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


# The charge as one statement: the balance moves only for an active member who has enough, and
# the row stays locked (FOR NO KEY UPDATE, taken by the UPDATE) until the caller's transaction ends.
_CHARGE_SQL = """
UPDATE {users} SET quota_remaining = quota_remaining - %(amount)s
WHERE id = %(user)s AND quota_remaining >= %(amount)s
  AND is_member AND (quota_expire_at IS NULL OR quota_expire_at > %(now)s)
RETURNING quota_remaining
"""


def quota_deduct(
    *, user_id: int, amount: int, task_id: uuid.UUID | None = None, reason: str = "", actor: User | None = None
) -> QuotaLedger:
    """Charge `amount`: two statements sent as written, as on every order's path (the conditional
    balance update, the ledger row by core/sql.py). Inside a caller's transaction it adds no
    savepoint, so the charge and the caller's insert commit or roll back together; the user row
    stays locked until then."""
    _positive(amount)
    now = timezone.now()
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(
            _CHARGE_SQL.format(users=connection.ops.quote_name(User._meta.db_table)),
            {"amount": amount, "user": user_id, "now": connection.ops.adapt_datetimefield_value(now)},
        )
        charged = cursor.fetchone()
        if charged is not None:
            row = QuotaLedger(
                user_id=user_id,
                delta=-amount,
                balance_after=charged[0],
                kind=LedgerKind.DEDUCT,
                task_id=task_id,
                reason=reason[:255],
                actor=actor,
            )
            row_insert(row)
            transaction.on_commit(lambda: _moved_event(row))
            return row
    # Nothing was written; say why (the refusal is raised outside the block, so that a caller's
    # transaction is not doomed by it).
    user = User.objects.filter(pk=user_id).only("is_member", "quota_expire_at", "quota_remaining").first()
    if user is None:
        raise errors.QuotaUserNotFound()
    if not user.is_active_member:
        raise errors.QuotaNotMember()
    raise errors.QuotaInsufficient()


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


# The refunds of the tasks in `{source}` (user_id, task_id, amount, ord), oldest (lowest ord) first.
# `{locked}` is the source's rows with their member's balance, read from the member's locked row
# (so it is the latest) and locked in member id order, the order every multi-member writer takes
# them in. Each ledger row's balance_after is that balance plus the running sum of the member's
# refunds in the batch up to the row. Tasks already refunded are left out, and the one-refund-per-
# task constraint catches the rest. OFFSET 0 keeps that test a look-up per task in the unique
# index: as an anti-join it would read every refund ever written whenever the planner thinks there
# are few. No two of these items are joined to each other: the planner cannot count the rows of a
# WITH item, and a join of two that it takes for one row each compares every pair.
_REFUND_TASKS_SQL = """
{locked} AS (
    SELECT s.*, u.quota_remaining AS balance
    FROM {source} s JOIN {users} u ON u.id = s.user_id
    ORDER BY u.id
    FOR NO KEY UPDATE OF u
),
{rows} AS (
    INSERT INTO {ledger} (user_id, delta, balance_after, kind, task_id, reason, actor_id, created_at)
    SELECT l.user_id, l.amount,
           l.balance + SUM(l.amount) OVER (PARTITION BY l.user_id ORDER BY l.ord, l.task_id),
           %s, l.task_id, %s, NULL, %s
    FROM {locked} l
    WHERE l.amount > 0
      AND NOT EXISTS (SELECT FROM {ledger} r WHERE r.task_id = l.task_id AND r.kind = %s OFFSET 0)
    ORDER BY l.ord, l.task_id
    ON CONFLICT (task_id) WHERE kind = 'refund' DO NOTHING
    RETURNING user_id, delta
),
{balances} AS (
    UPDATE {users} u SET quota_remaining = u.quota_remaining + d.total
    FROM (SELECT user_id, SUM(delta) AS total FROM {rows} GROUP BY user_id) d
    WHERE u.id = d.user_id
)"""


@dataclass(frozen=True)
class TaskRefunds:
    """Refunds of many tasks, written by the caller's statement (see `quota_refund_tasks`).

    `sql` (with `params`, in order) goes into the statement's WITH list. `locked` names the
    relation of the source's rows (every column, and `balance`) once their members are locked.
    `refunds` and `units` are scalar subqueries: how many refunds the statement wrote and how much
    quota they gave back."""

    sql: str
    params: list[Any]
    locked: str
    refunds: str
    units: str


def quota_refund_tasks(*, source: str, reason: str) -> TaskRefunds:
    """Set-based `quota_refund` for the sweep: the charges of the tasks in `source`, a relation the
    caller's statement defines before these items (user_id, task_id, amount, ord: refunds are
    written in (ord, task_id) order), given back by that one statement whatever their number.

    The caller's transaction must hold the tasks' rows: every refund of a task is made under its
    row lock, so none of them can commit between the statement's snapshot and its members' locks,
    and "already refunded" read from that snapshot is the truth. A task refunded before is skipped,
    as `quota_refund` skips it; a task that cost nothing gets no refund row. Items the caller
    writes after these and that come later in the lock order (task counters) read `locked` in
    full before they write anything. Once the statement has run, `quota_refunds_written` reports
    what `refunds` and `units` said."""
    names = {"locked": "refund_locked", "rows": "refund_rows", "balances": "refund_balances"}
    sql = _REFUND_TASKS_SQL.format(source=source, ledger=QuotaLedger._meta.db_table, users=User._meta.db_table, **names)
    kind = LedgerKind.REFUND.value
    return TaskRefunds(
        sql=sql,
        params=[kind, reason[:255], timezone.now(), kind],
        locked=names["locked"],
        refunds=f"(SELECT COUNT(*) FROM {names['rows']})",  # noqa: S608 - our own names
        units=f"(SELECT COALESCE(SUM(delta), 0) FROM {names['rows']})",  # noqa: S608 - our own names
    )


def quota_refunds_written(*, refunds: int, units: int) -> None:
    """Counts and logs, once the transaction commits, what a `quota_refund_tasks` statement wrote."""
    if not refunds:
        return

    def emit() -> None:
        QUOTA_REFUNDS.inc(refunds)
        QUOTA_REFUNDED_UNITS.inc(units)
        logger.info("quota.refund_batch", refunds=refunds, units=units)

    transaction.on_commit(emit)


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


def quota_compensate(
    *, user_id: int, amount: int, reason: str, actor: User, task_id: uuid.UUID | None = None
) -> QuotaLedger:
    """Support's goodwill credit, optionally for one task. Unlike a grant it never touches the
    membership or its expiry, and unlike a refund a task may be compensated besides its refund."""
    if not reason.strip():
        raise errors.InvalidParams("补偿配额必须填写原因", "A reason is required", fields={"reason": ["必填"]})
    _positive(amount)
    with transaction.atomic():
        user = _locked_user(user_id)
        _within_balance(user, amount)
        return _move(
            user=user, delta=amount, kind=LedgerKind.COMPENSATE, task_id=task_id, reason=reason.strip(), actor=actor
        )


def quota_expire_lapsed() -> int:
    """Set-based sweep: zero the quota of every lapsed membership with one `expire` row each.
    Rows locked by a concurrent sweep or deduction are skipped and picked up by the next run."""
    now = timezone.now()
    with transaction.atomic():
        users = list(
            User.objects.select_for_update(skip_locked=True, no_key=True)
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
