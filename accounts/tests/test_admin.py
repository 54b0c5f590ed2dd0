import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import logged_in, make_member, make_superuser, make_support, make_user, support_group
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from quota.services import quota_deduct

pytestmark = pytest.mark.django_db


def quota_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/quota/"


def grant(**fields: Any) -> dict[str, Any]:
    return {"operation": "grant", "amount": 5, "days": 30, "reason": "补偿:服务中断", **fields}


def test_support_group_has_only_what_support_needs() -> None:
    codenames = set(support_group().permissions.values_list("content_type__app_label", "codename").order_by())
    assert codenames == {
        ("accounts", "view_user"),
        ("accounts", "adjust_quota"),
        ("quota", "view_quotaledger"),
        ("tasks", "view_task"),
        ("tasks", "view_taskevent"),
        ("tasks", "run_task_actions"),
        ("aimodel", "view_prompttemplate"),
    }
    # The migration's rows are the ones post_migrate knows: no duplicate permission appears.
    assert Permission.objects.filter(codename="adjust_quota").count() == 1


def test_support_views_users_but_cannot_edit_add_or_delete_them() -> None:
    support, member = make_support(), make_member()
    username = member.username
    client = logged_in(support)
    page = client.get(f"/admin/accounts/user/{member.pk}/change/")
    assert page.status_code == 200
    assert 'id="adjust-quota"' in page.content.decode()
    edit = {"username": "x", "is_superuser": "on"}
    assert client.post(f"/admin/accounts/user/{member.pk}/change/", edit).status_code == 403
    assert client.get("/admin/accounts/user/add/").status_code == 403
    assert client.post(f"/admin/accounts/user/{member.pk}/delete/", {"post": "yes"}).status_code == 403
    # Neither field changed (a `!=` on the pair would pass with one of them changed).
    assert User.objects.filter(pk=member.pk).values_list("username", "is_superuser").get() == (username, False)
    assert User.objects.filter(pk=member.pk).exists()


def test_quota_is_not_editable_in_the_admin_even_for_a_superuser() -> None:
    member = make_member()
    client = logged_in(make_superuser())
    page = client.get(f"/admin/accounts/user/{member.pk}/change/").content.decode()
    assert 'name="quota_remaining"' not in page and 'name="quota_expire_at"' not in page
    assert "剩余配额" in page
    form = {"username": member.username, "phone": member.phone, "quota_remaining": 999, "date_joined_0": "2026-01-01"}
    client.post(f"/admin/accounts/user/{member.pk}/change/", form)
    member.refresh_from_db()
    assert member.quota_remaining == 10


@pytest.mark.parametrize("maker", [make_support, make_superuser], ids=["support", "superuser"])
def test_grant_goes_through_the_ledger_with_actor_and_reason(maker: Any) -> None:
    staff, user = maker(), make_user()
    response = logged_in(staff).post(quota_url(user), grant())
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/user/{user.pk}/change/"
    row = QuotaLedger.objects.get(user=user)
    assert (row.kind, row.delta, row.balance_after, row.actor, row.reason) == (
        LedgerKind.GRANT, 5, 5, staff, "补偿:服务中断",
    )  # fmt: skip
    user.refresh_from_db()
    assert user.is_active_member and user.quota_remaining == 5
    assert user.quota_expire_at is not None and user.quota_expire_at > timezone.now() + timedelta(days=29)
    assert LogEntry.objects.filter(user=staff, object_id=str(user.pk), change_message__contains="+5").exists()
    assert not quota_mismatches()


def test_adjust_down_records_actor_and_keeps_the_invariant() -> None:
    support, member = make_support(), make_member()
    response = logged_in(support).post(quota_url(member), {"operation": "adjust", "amount": -3, "reason": "误发"})
    assert response.status_code == 302
    row = QuotaLedger.objects.filter(user=member).latest("id")
    assert (row.kind, row.delta, row.balance_after, row.actor) == (LedgerKind.ADJUST, -3, 7, support)
    assert row.reason == "误发"
    assert not quota_mismatches()


@pytest.mark.parametrize(
    "body,error",
    [
        (grant(reason="   "), "该字段是必填项"),
        (grant(amount=0), "发放数量必须为正数"),
        (grant(days=""), "发放时必须填写天数"),
        ({"operation": "adjust", "amount": 0, "reason": "x"}, "调整数量不能为 0"),
        ({"operation": "adjust", "amount": -11, "reason": "x"}, "调整后配额不能为负"),
    ],
)
def test_invalid_quota_changes_are_refused_without_a_ledger_row(body: dict[str, Any], error: str) -> None:
    member = make_member()
    rows = QuotaLedger.objects.count()
    response = logged_in(make_support()).post(quota_url(member), body)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert QuotaLedger.objects.count() == rows


def test_staff_without_the_permission_cannot_change_quota() -> None:
    member = make_member()
    client = logged_in(make_user(is_staff=True))
    assert client.get(quota_url(member)).status_code == 403
    assert client.post(quota_url(member), grant()).status_code == 403
    assert not QuotaLedger.objects.filter(user=member, kind=LedgerKind.GRANT, actor__isnull=False).exists()


def test_user_filters_and_search() -> None:
    active = make_member(username="active")
    expired = make_member(username="expired")
    User.objects.filter(pk=expired.pk).update(quota_expire_at=timezone.now() - timedelta(days=1))
    empty = make_member(username="empty", quota=0)
    make_user(username="plain", phone="13900000000")
    client = logged_in(make_support())

    def names(query: str) -> set[str]:
        response = client.get(f"/admin/accounts/user/?{query}")
        assert response.status_code == 200
        return {user.username for user in response.context["cl"].result_list}

    assert names("membership=expired") == {"expired"}
    assert names("membership=active") == {"active", "empty"}
    assert names("membership=none") >= {"plain"}
    assert names("quota=zero") >= {"empty", "plain"} and active.username not in names("quota=zero")
    assert names("q=13900000000") == {"plain"}
    assert names("q=expi") == {"expired"}
    assert empty.quota_remaining == 0


def test_user_page_shows_the_latest_ledger_rows_read_only() -> None:
    member = make_member()
    support = make_support()
    logged_in(support).post(quota_url(member), {"operation": "adjust", "amount": 2, "reason": "测试"})
    page = logged_in(support).get(f"/admin/accounts/user/{member.pk}/change/").content.decode()
    assert "配额流水" in page and "测试" in page and support.username in page
    assert 'name="ledger-0-delta"' not in page


def test_user_list_query_count_is_bounded(assert_max_statements: Any) -> None:
    for _ in range(200):
        make_member()
    client = logged_in(make_support())
    with assert_max_statements(8):
        response = client.get("/admin/accounts/user/?membership=active")
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 100


def test_compensation_is_its_own_choice_linked_to_the_task_without_changing_expiry() -> None:
    support, member = make_support(), make_member()
    expiry = member.quota_expire_at
    charged = quota_deduct(user_id=make_member().pk, amount=1, task_id=uuid.uuid4())
    own_task = uuid.uuid4()
    quota_deduct(user_id=member.pk, amount=1, task_id=own_task)
    client = logged_in(support)

    form = client.get(f"{quota_url(member)}?operation=compensate&task={own_task}").content.decode()
    assert re.search(r'value="compensate"[^>]*checked', form), "the task's link picks compensation"
    assert f'value="{own_task}"' in form

    someone_elses = {"operation": "compensate", "amount": 2, "reason": "补偿", "task": str(charged.task_id)}
    assert client.post(quota_url(member), someone_elses).status_code == 200
    missing_reason = {"operation": "compensate", "amount": 2, "reason": "", "task": str(own_task)}
    assert client.post(quota_url(member), missing_reason).status_code == 200
    not_positive = {"operation": "compensate", "amount": -2, "reason": "x", "task": str(own_task)}
    assert client.post(quota_url(member), not_positive).status_code == 200
    assert not QuotaLedger.objects.filter(kind=LedgerKind.COMPENSATE).exists()

    # The days field is ignored outside a grant, whatever it holds.
    done = {"operation": "compensate", "amount": 2, "days": 365, "reason": "处理超时补偿", "task": str(own_task)}
    response = client.post(quota_url(member), done)
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/user/{member.pk}/change/"
    row = QuotaLedger.objects.get(kind=LedgerKind.COMPENSATE)
    assert (row.user, row.delta, row.task_id, row.actor, row.reason) == (member, 2, own_task, support, "处理超时补偿")
    member.refresh_from_db()
    assert member.quota_expire_at == expiry and member.quota_remaining == 11
    assert LogEntry.objects.filter(user=support, object_id=str(member.pk), change_message__contains="补偿").exists()
    assert not quota_mismatches()


def test_adjust_ignores_the_days_and_the_task() -> None:
    member = make_member()
    expiry = member.quota_expire_at
    form = {"operation": "adjust", "amount": -1, "days": 365, "task": str(uuid.uuid4()), "reason": "更正"}
    assert logged_in(make_support()).post(quota_url(member), form).status_code == 302
    row = QuotaLedger.objects.get(user=member, kind=LedgerKind.ADJUST)
    assert row.task_id is None
    member.refresh_from_db()
    assert member.quota_expire_at == expiry and member.quota_remaining == 9
