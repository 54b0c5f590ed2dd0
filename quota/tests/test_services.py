"""The quota services: every move a ledger row under the user's row lock; races decided by real
threads against PostgreSQL (the row lock and the unique constraint, not luck)."""

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import balance, make_member, make_user
from core import errors
from core.tests.helpers import race
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from quota.services import (
    quota_adjust,
    quota_compensate,
    quota_deduct,
    quota_expire_lapsed,
    quota_grant,
    quota_refund,
    quota_refund_tasks,
    quota_refunds_written,
)

pytestmark = pytest.mark.django_db


def test_deduct_writes_one_ledger_row_and_keeps_the_invariant() -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    row = quota_deduct(user_id=user.pk, amount=2, task_id=task_id, reason="task")
    assert (row.delta, row.balance_after, row.kind, row.task_id) == (-2, 3, LedgerKind.DEDUCT, task_id)
    assert balance(user) == 3
    assert quota_mismatches() == []


def test_deduct_refuses_non_member_short_quota_and_unknown_user() -> None:
    with pytest.raises(errors.QuotaNotMember):
        quota_deduct(user_id=make_user().pk, amount=1)
    user = make_member(quota=1)
    with pytest.raises(errors.QuotaInsufficient):
        quota_deduct(user_id=user.pk, amount=2)
    with pytest.raises(errors.QuotaUserNotFound):
        quota_deduct(user_id=999_999, amount=1)
    with pytest.raises(errors.InvalidParams):
        quota_deduct(user_id=user.pk, amount=0)
    assert balance(user) == 1


def test_deduct_refuses_lapsed_member() -> None:
    user = make_member(quota=3)
    User.objects.filter(pk=user.pk).update(quota_expire_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(errors.QuotaNotMember):
        quota_deduct(user_id=user.pk, amount=1)


def test_a_task_is_charged_at_most_once_by_the_database() -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    quota_deduct(user_id=user.pk, amount=1, task_id=task_id)
    with pytest.raises(IntegrityError):
        quota_deduct(user_id=user.pk, amount=1, task_id=task_id)


def test_refund_once_per_task() -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    quota_deduct(user_id=user.pk, amount=2, task_id=task_id)
    first = quota_refund(user_id=user.pk, amount=2, task_id=task_id, reason="failed")
    second = quota_refund(user_id=user.pk, amount=2, task_id=task_id, reason="failed again")
    assert first is not None and first.balance_after == 5
    assert second is None
    assert balance(user) == 5
    assert QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1


def test_unique_refund_constraint_holds_even_when_the_service_is_bypassed() -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    QuotaLedger.objects.create(user=user, delta=1, balance_after=6, kind=LedgerKind.REFUND, task_id=task_id)
    with pytest.raises(IntegrityError):
        QuotaLedger.objects.create(user=user, delta=1, balance_after=7, kind=LedgerKind.REFUND, task_id=task_id)


def test_balance_cannot_go_negative_in_the_database() -> None:
    user = make_user()
    with pytest.raises(IntegrityError):
        User.objects.filter(pk=user.pk).update(quota_remaining=-1)


def test_grant_makes_member_and_extends_expiry_from_current_end() -> None:
    user = make_user()
    quota_grant(user_id=user.pk, amount=10, days=30)
    user.refresh_from_db()
    first_expiry = user.quota_expire_at
    assert user.is_active_member and user.quota_remaining == 10
    assert first_expiry is not None
    assert abs((first_expiry - timezone.now()) - timedelta(days=30)) < timedelta(seconds=5)
    quota_grant(user_id=user.pk, amount=5, days=10, actor=None, reason="renewal")
    user.refresh_from_db()
    assert user.quota_remaining == 15
    assert user.quota_expire_at == first_expiry + timedelta(days=10)


def test_grant_after_lapse_expires_old_quota_first() -> None:
    user = make_member(quota=4)
    User.objects.filter(pk=user.pk).update(quota_expire_at=timezone.now() - timedelta(days=1))
    quota_grant(user_id=user.pk, amount=10, days=30)
    kinds = list(QuotaLedger.objects.filter(user=user).order_by("id").values_list("kind", "delta"))
    assert kinds[-2:] == [("expire", -4), ("grant", 10)]
    assert balance(user) == 10
    assert quota_mismatches() == []


def test_adjust_requires_reason_records_actor_and_refuses_negative_balance() -> None:
    user = make_member(quota=3)
    staff = make_user(is_staff=True)
    with pytest.raises(errors.InvalidParams):
        quota_adjust(user_id=user.pk, delta=1, reason="  ")
    with pytest.raises(errors.InvalidParams):
        quota_adjust(user_id=user.pk, delta=-4, reason="too much")
    row = quota_adjust(user_id=user.pk, delta=-2, reason="duplicate grant", actor=staff)
    assert (row.delta, row.balance_after, row.actor, row.reason) == (-2, 1, staff, "duplicate grant")


def test_compensate_credits_without_touching_the_membership_and_is_no_refund() -> None:
    member, staff = make_member(), make_user(is_staff=True)
    User.objects.filter(pk=member.pk).update(is_member=False)
    expiry = User.objects.get(pk=member.pk).quota_expire_at
    task_id = uuid.uuid4()
    # A task of the member's, charged and refunded like any failed task, before the membership ended.
    User.objects.filter(pk=member.pk).update(is_member=True)
    quota_deduct(user_id=member.pk, amount=1, task_id=task_id)
    quota_refund(user_id=member.pk, amount=1, task_id=task_id, reason="失败退还")
    User.objects.filter(pk=member.pk).update(is_member=False)

    row = quota_compensate(user_id=member.pk, amount=3, reason=" 服务中断补偿 ", actor=staff, task_id=task_id)
    assert (row.kind, row.delta, row.balance_after, row.reason, row.actor, row.task_id) == (
        LedgerKind.COMPENSATE, 3, 13, "服务中断补偿", staff, task_id,
    )  # fmt: skip
    again = quota_compensate(user_id=member.pk, amount=1, reason="再补一次", actor=staff, task_id=task_id)
    assert again.balance_after == 14, "a compensation is not a refund: the one-refund rule does not apply"
    member.refresh_from_db()
    assert (member.is_member, member.quota_expire_at, member.quota_remaining) == (False, expiry, 14)
    assert QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1
    assert not quota_mismatches()


@pytest.mark.parametrize("amount,reason", [(0, "x"), (-2, "x"), (3, "  ")])
def test_compensate_needs_a_positive_amount_and_a_reason(amount: int, reason: str) -> None:
    member, staff = make_member(), make_user(is_staff=True)
    with pytest.raises(errors.InvalidParams):
        quota_compensate(user_id=member.pk, amount=amount, reason=reason, actor=staff)
    assert balance(member) == 10 and not QuotaLedger.objects.filter(kind=LedgerKind.COMPENSATE).exists()


def test_expire_lapsed_is_set_based_and_idempotent(django_assert_max_num_queries) -> None:
    lapsed = [make_member(quota=q) for q in (1, 2, 3)]
    active = make_member(quota=9)
    User.objects.filter(pk__in=[u.pk for u in lapsed]).update(quota_expire_at=timezone.now() - timedelta(seconds=1))
    with django_assert_max_num_queries(5):
        assert quota_expire_lapsed() == 3
    assert quota_expire_lapsed() == 0
    assert [balance(u) for u in lapsed] == [0, 0, 0]
    assert balance(active) == 9
    assert QuotaLedger.objects.filter(kind=LedgerKind.EXPIRE).count() == 3
    assert quota_mismatches() == []


def test_absurd_amounts_are_refused_before_they_reach_the_database() -> None:
    from quota.services import MAX_AMOUNT, MAX_BALANCE, MAX_DAYS

    user = make_member(quota=10)
    for call in (
        lambda: quota_grant(user_id=user.pk, amount=MAX_AMOUNT + 1, days=30),
        lambda: quota_grant(user_id=user.pk, amount=5_000_000_000, days=30),
        lambda: quota_grant(user_id=user.pk, amount=1, days=MAX_DAYS + 1),
        lambda: quota_grant(user_id=user.pk, amount=1, days=100_000_000),
        lambda: quota_adjust(user_id=user.pk, delta=2_147_483_600, reason="typo"),
    ):
        with pytest.raises(errors.InvalidParams):
            call()
    User.objects.filter(pk=user.pk).update(quota_remaining=MAX_BALANCE)
    with pytest.raises(errors.InvalidParams):
        quota_adjust(user_id=user.pk, delta=1, reason="over the cap")


# --- races --------------------------------------------------------------------------------------


def outcomes(results: list[object]) -> Counter[str]:
    """How each racer ended: "ok" (a ledger row), "none" (nothing to do), an error code, or the
    name of an unexpected exception."""

    def outcome(result: object) -> str:
        if isinstance(result, errors.ApplicationError):
            return str(result.code)
        if isinstance(result, Exception):
            return type(result).__name__
        return "ok" if result is not None else "none"

    return Counter(outcome(r) for r in results)


@pytest.mark.django_db(transaction=True)
def test_100_threads_deduct_from_40() -> None:
    user = make_member(quota=40)
    results = race(*[lambda: quota_deduct(user_id=user.pk, amount=1, task_id=uuid.uuid4())] * 100)
    assert outcomes(results) == Counter({"ok": 40, "1003": 60})
    assert balance(user) == 0
    assert QuotaLedger.objects.filter(user=user, kind=LedgerKind.DEDUCT).count() == 40
    assert quota_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_50_threads_refund_the_same_task_once() -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    quota_deduct(user_id=user.pk, amount=1, task_id=task_id)
    results = race(*[lambda: quota_refund(user_id=user.pk, amount=1, task_id=task_id, reason="race")] * 50)
    assert outcomes(results) == Counter({"ok": 1, "none": 49})
    assert QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1
    assert balance(user) == 5
    assert quota_mismatches() == []


@pytest.mark.parametrize(
    ("call", "fields", "zh", "en"),
    [
        (
            lambda u: quota_adjust(user_id=u.pk, delta=1, reason="  "),
            {"reason": ["必填"]},
            "调整配额必须填写原因",
            "A reason is required",
        ),
        (
            lambda u: quota_adjust(user_id=u.pk, delta=0, reason="r"),
            {"delta": ["不能为 0"]},
            "调整数量不能为 0",
            "The delta must not be zero",
        ),
        (
            lambda u: quota_adjust(user_id=u.pk, delta=-11, reason="r"),
            {"delta": ["调整后配额不能为负"]},
            "调整后配额不能为负",
            "The balance cannot go below zero",
        ),
        (
            lambda u: quota_compensate(user_id=u.pk, amount=1, reason="", actor=u),
            {"reason": ["必填"]},
            "补偿配额必须填写原因",
            "A reason is required",
        ),
    ],
    ids=["adjust-without-reason", "adjust-by-zero", "adjust-below-zero", "compensate-without-reason"],
)
def test_refused_support_moves_say_which_field_and_why_in_both_languages(
    call: Any, fields: Any, zh: str, en: str
) -> None:
    user = make_member(quota=10)
    with pytest.raises(errors.InvalidParams) as refused:
        call(user)
    assert (refused.value.fields, refused.value.message("zh"), refused.value.message("en")) == (fields, zh, en)
    assert balance(user) == 10 and not QuotaLedger.objects.filter(user=user).exclude(kind=LedgerKind.GRANT).exists()


def test_moves_for_a_user_that_does_not_exist_are_refused() -> None:
    for move in (
        lambda: quota_grant(user_id=987_654_321, amount=1, days=1),
        lambda: quota_refund(user_id=987_654_321, amount=1, task_id=uuid.uuid4(), reason="r"),
        lambda: quota_adjust(user_id=987_654_321, delta=1, reason="r"),
    ):
        with pytest.raises(errors.QuotaUserNotFound):
            move()
    assert not QuotaLedger.objects.exists()


def refund_in_one_statement(refunds: list[tuple[int, uuid.UUID, int]]) -> tuple[int, int]:
    """What the sweep does with `quota_refund_tasks`: one statement whose source is the given
    (user, task, amount) rows, in order; returns (refunds, units) and reports them."""
    part = quota_refund_tasks(source="source", reason="sweep")
    sql = (
        "WITH source AS (SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::integer[]) "
        f"WITH ORDINALITY AS s(user_id, task_id, amount, ord)), {part.sql} SELECT {part.refunds}, {part.units}"
    )
    columns = [list(column) for column in zip(*refunds, strict=True)] if refunds else [[], [], []]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*columns, *part.params])
        written, units = cursor.fetchone()
        quota_refunds_written(refunds=written, units=units)
    return written, units


def test_bulk_refunds_of_nothing_or_of_tasks_already_refunded_write_nothing(
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = make_member(quota=5)
    task_id = uuid.uuid4()
    quota_deduct(user_id=user.pk, amount=1, task_id=task_id, reason="task")
    quota_refund(user_id=user.pk, amount=1, task_id=task_id, reason="failed")
    with django_capture_on_commit_callbacks() as callbacks:
        assert refund_in_one_statement([]) == (0, 0)
        assert refund_in_one_statement([(user.pk, task_id, 1)]) == (0, 0)
    assert callbacks == [], "no refund event for refunds that did not happen"
    assert balance(user) == 5 and QuotaLedger.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1
    assert quota_mismatches() == []


def test_bulk_refunds_run_each_members_balance_through_its_rows_in_the_order_given() -> None:
    """Two members' refunds interleaved in one statement: each row's balance_after is its member's
    balance right after it, each balance moves once by the sum; a task that cost nothing gets no row."""
    first, second = make_member(quota=10), make_member(quota=10)
    tasks = [(first, uuid.uuid4(), 2), (second, uuid.uuid4(), 1), (first, uuid.uuid4(), 1), (second, uuid.uuid4(), 3)]
    for owner, task_id, amount in tasks:
        quota_deduct(user_id=owner.pk, amount=amount, task_id=task_id, reason="task")
    assert refund_in_one_statement([(o.pk, t, a) for o, t, a in tasks] + [(first.pk, uuid.uuid4(), 0)]) == (4, 7)
    refunds = QuotaLedger.objects.filter(kind=LedgerKind.REFUND).order_by("id")
    assert [(r.user_id, r.task_id, r.delta, r.balance_after) for r in refunds] == [
        (first.pk, tasks[0][1], 2, 9),
        (second.pk, tasks[1][1], 1, 7),
        (first.pk, tasks[2][1], 1, 10),
        (second.pk, tasks[3][1], 3, 10),
    ]
    assert balance(first) == balance(second) == 10
    assert quota_mismatches() == []
