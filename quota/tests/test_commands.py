import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User
from accounts.tests.factories import make_member, make_user
from quota.models import LedgerKind, QuotaLedger
from quota.services import quota_compensate, quota_deduct, quota_refund

pytestmark = pytest.mark.django_db


def test_grant_membership(capsys) -> None:
    user = make_user(username="alice")
    call_command("grant_membership", "alice", "--quota", "20", "--days", "30")
    user.refresh_from_db()
    assert user.is_active_member and user.quota_remaining == 20
    assert "alice: +20 quota, balance 20" in capsys.readouterr().out
    call_command("grant_membership", "alice", "--quota", "5", "--days", "30")
    user.refresh_from_db()
    assert user.quota_remaining == 25


def test_grant_membership_rejects_unknown_user_and_bad_numbers() -> None:
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("grant_membership", "ghost", "--quota", "1", "--days", "1")
    make_user(username="bob")
    with pytest.raises(CommandError, match="positive"):
        call_command("grant_membership", "bob", "--quota", "0", "--days", "1")


def test_adjust_quota_records_reason_and_actor(capsys) -> None:
    user = make_member(username="carol", quota=5)
    make_user(username="agent", is_staff=True)
    call_command("adjust_quota", "carol", "-2", "--reason", "double grant", "--actor", "agent")
    row = QuotaLedger.objects.filter(user=user, kind=LedgerKind.ADJUST).get()
    assert row.actor is not None
    assert (row.delta, row.reason, row.actor.username) == (-2, "double grant", "agent")
    assert "carol: -2 quota, balance 3" in capsys.readouterr().out
    with pytest.raises(CommandError, match="below zero"):
        call_command("adjust_quota", "carol", "-9", "--reason", "x")


def test_reconcile_quota_ok(capsys) -> None:
    make_member(quota=3)
    call_command("reconcile_quota")
    assert "ok" in capsys.readouterr().out


def test_reconcile_quota_counts_compensations_with_the_other_moves(capsys) -> None:
    member, staff = make_member(quota=3), make_user(is_staff=True)
    task_id = uuid.uuid4()
    quota_deduct(user_id=member.pk, amount=1, task_id=task_id)
    quota_refund(user_id=member.pk, amount=1, task_id=task_id, reason="失败退还")
    quota_compensate(user_id=member.pk, amount=2, reason="致歉", actor=staff, task_id=task_id)
    call_command("reconcile_quota")
    assert "ok" in capsys.readouterr().out


def test_reconcile_quota_exits_1_naming_the_tampered_user(capsys) -> None:
    make_member(username="honest", quota=3)
    cheat = make_member(username="cheater", quota=3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET quota_remaining = 99 WHERE id = %s", [cheat.pk])
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile_quota")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "cheater: balance 99 != ledger sum 3" in err
    assert "honest" not in err
    assert User.objects.get(pk=cheat.pk).quota_remaining == 99
