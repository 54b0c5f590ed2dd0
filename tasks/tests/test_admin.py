from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import WARNING
from django.db.models import F
from django.test import Client

from accounts.models import User
from accounts.tests.factories import balance, logged_in, make_member, make_superuser, make_support, make_user
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.models import FailureCode, Task, TaskEvent, TaskStatus, TaskType
from tasks.tests.factories import make_task

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/tasks/task/"
staff_makers = pytest.mark.parametrize("maker", [make_support, make_superuser], ids=["support", "superuser"])


def run_action(client: Client, action: str, *tasks: Task, **extra: Any) -> Any:
    return client.post(CHANGELIST, {"action": action, "_selected_action": [str(t.pk) for t in tasks], **extra})


def refunds(task: Task) -> list[QuotaLedger]:
    return list(QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND))


def shown(client: Client, query: str) -> set[Any]:
    response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    return {task.pk for task in response.context["cl"].result_list}


# --- list and detail ----------------------------------------------------------------------------


def test_filters_and_search() -> None:
    alice = make_member(username="alice", phone="13700000001")
    bob = make_member(username="bob")
    pending = make_task(alice)
    processing = make_task(alice, TaskStatus.PROCESSING, vendor_task_id="1990000000000000001")
    stuck = make_task(bob, TaskStatus.PROCESSING, age=timedelta(hours=1))
    failed = make_task(bob, TaskStatus.FAILED)
    client = logged_in(make_support())

    assert shown(client, "status__exact=failed") == {failed.pk}
    assert shown(client, "type__exact=basic_clean") == {pending.pk, processing.pk, stuck.pk, failed.pk}
    assert shown(client, "stuck=yes") == {stuck.pk}
    assert shown(client, "created_at__gte=2000-01-01T00:00:00%2B08:00") == {
        pending.pk,
        processing.pk,
        stuck.pk,
        failed.pk,
    }
    assert shown(client, f"q={failed.pk}") == {failed.pk}
    assert shown(client, "q=alice") == {pending.pk, processing.pk}
    assert shown(client, "q=13700000001") == {pending.pk, processing.pk}
    assert shown(client, "q=1990000000000000001") == {processing.pk}
    assert shown(client, "q=not-a-uuid") == set()


def test_detail_shows_history_images_error_and_quota() -> None:
    member = make_member()
    task = make_task(member, TaskStatus.SUCCESS)
    failed = make_task(member, TaskStatus.FAILED, reason="RunningHub 805: 生成失败")
    client = logged_in(make_support())

    page = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert page.count('<img src="https://cdn.example.com/r/') == 3
    assert '<img src="https://images.example.com/p.png"' in page
    assert "状态历史" in page and "开始处理" in page and "处理完成" in page
    assert "排队中 → 处理中" in page and "处理中 → 成功" in page, "statuses by their labels, not their values"
    assert "Id:" not in page and "passed" not in page
    assert 'id="action-' not in page, "a finished, successful task offers no action"

    page = client.get(f"{CHANGELIST}{failed.pk}/change/").content.decode()
    assert "RunningHub 805: 生成失败" in page
    assert 'class="readonly">1</div>' in page  # charged 1, refunded 1
    assert page.count('class="readonly">1</div>') == 2


def test_detail_is_read_only_for_a_superuser_too() -> None:
    task = make_task(make_member())
    client = logged_in(make_superuser())
    page = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert 'name="status"' not in page and 'name="_save"' not in page
    assert client.post(f"{CHANGELIST}{task.pk}/change/", {"status": "success"}).status_code == 403
    assert client.post(f"{CHANGELIST}{task.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PENDING


def test_task_list_query_count_is_bounded(assert_max_statements: Any) -> None:
    members = [make_member(quota=20) for _ in range(10)]
    for i in range(200):
        make_task(members[i % 10], TaskStatus.FAILED if i % 3 else TaskStatus.PENDING)
    client = logged_in(make_support())
    with assert_max_statements(9):
        response = client.get(CHANGELIST)
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 100
    with assert_max_statements(9):
        assert client.get(f"{CHANGELIST}?status__exact=failed&q=user").status_code == 200


# --- fail and refund ----------------------------------------------------------------------------


@staff_makers
def test_fail_and_refund_asks_for_a_reason_then_refunds_once(maker: Any) -> None:
    staff, member = maker(), make_member()
    task = make_task(member, TaskStatus.PROCESSING)
    client = logged_in(staff)

    form = run_action(client, "fail_and_refund", task)
    assert form.status_code == 200 and "确认失败并退款" in form.content.decode()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PROCESSING

    missing_reason = run_action(client, "fail_and_refund", task, apply="1", reason="")
    assert missing_reason.status_code == 200 and "该字段是必填项" in missing_reason.content.decode()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PROCESSING

    done = run_action(client, "fail_and_refund", task, apply="1", reason="用户来电要求取消")
    assert done.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.error_message) == (TaskStatus.FAILED, "用户来电要求取消")
    event = TaskEvent.objects.filter(task=task).latest("id")
    assert (event.from_status, event.to_status, event.actor, event.reason) == (
        TaskStatus.PROCESSING, TaskStatus.FAILED, staff, "用户来电要求取消",
    )  # fmt: skip
    assert [row.delta for row in refunds(task)] == [1]
    assert "用户来电要求取消" in refunds(task)[0].reason
    assert balance(member) == 10

    run_action(client, "fail_and_refund", task, apply="1", reason="再来一次")
    assert len(refunds(task)) == 1 and balance(member) == 10
    assert Task.objects.get(pk=task.pk).error_message == "用户来电要求取消"
    assert not quota_mismatches()


def test_fail_and_refund_handles_several_tasks_and_skips_finished_ones() -> None:
    member = make_member()
    tasks = [make_task(member), make_task(member, TaskStatus.PROCESSING), make_task(member, TaskStatus.SUCCESS)]
    client = logged_in(make_support())
    response = run_action(client, "fail_and_refund", *tasks, apply="1", reason="批量处理")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["已将 2 个任务标记为失败并退还配额。", "1 个任务已结束(成功或已失败),未作改动,也没有退款。"]
    assert [Task.objects.get(pk=t.pk).status for t in tasks] == ["failed", "failed", "success"]
    assert balance(member) == 9


def test_staff_without_the_permission_cannot_run_actions() -> None:
    task = make_task(make_member(), TaskStatus.PROCESSING)
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_task"))
    client = logged_in(viewer)
    page = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert 'id="action-fail_and_refund"' not in page
    for action in ("fail_and_refund", "retry", "refund_missing"):
        response = run_action(client, action, task, apply="1", reason="x")
        assert response.status_code in (200, 302)
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PROCESSING
    assert not refunds(task) and not Task.objects.filter(retry_of=task).exists()


# --- retry --------------------------------------------------------------------------------------


@staff_makers
def test_retry_of_a_failed_task_is_a_new_task_charged_once(maker: Any) -> None:
    staff, member = maker(), make_member()
    failed = make_task(member, TaskStatus.FAILED)
    assert balance(member) == 10
    client = logged_in(staff)

    assert run_action(client, "retry", failed, apply="1").status_code == 302
    retry = Task.objects.get(retry_of=failed)
    assert (retry.user, retry.status, retry.type, retry.input_image_url) == (
        member, TaskStatus.PENDING, failed.type, failed.input_image_url,
    )  # fmt: skip
    charges = QuotaLedger.objects.filter(task_id=retry.pk)
    assert [(row.kind, row.delta, row.actor) for row in charges] == [(LedgerKind.DEDUCT, -1, staff)]
    assert balance(member) == 9
    event = TaskEvent.objects.get(task=retry)
    assert (event.actor, event.reason) == (staff, f"重试自任务 {failed.pk}")

    second = run_action(client, "retry", failed, apply="1")
    assert "该任务已重试过" in " ".join(str(m) for m in second.wsgi_request._messages)
    assert Task.objects.filter(retry_of=failed).count() == 1 and balance(member) == 9
    assert not quota_mismatches()


def test_retry_of_a_stuck_task_fails_and_refunds_it_first() -> None:
    member = make_member()
    stuck = make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1))
    support = make_support()
    run_action(logged_in(support), "retry", stuck, apply="1")
    stuck.refresh_from_db()
    assert stuck.status == TaskStatus.FAILED
    assert TaskEvent.objects.filter(task=stuck, to_status=TaskStatus.FAILED, actor=support).exists()
    assert len(refunds(stuck)) == 1
    assert Task.objects.get(retry_of=stuck).status == TaskStatus.PENDING
    assert balance(member) == 9
    assert not quota_mismatches()


def test_retry_of_an_unrefunded_failed_task_refunds_it_before_charging() -> None:
    member = make_member()
    task = make_task(member, status=TaskStatus.FAILED)
    QuotaLedger.objects.filter(task_id=task.pk, kind=LedgerKind.REFUND).delete()
    User.objects.filter(pk=member.pk).update(quota_remaining=9)  # as if the refund never happened
    run_action(logged_in(make_support()), "retry", task, apply="1")
    assert len(refunds(task)) == 1 and Task.objects.filter(retry_of=task).exists()
    assert balance(member) == 9
    assert not quota_mismatches()


@pytest.mark.parametrize(
    "status,age,message",
    [
        (TaskStatus.PENDING, None, "任务仍在正常处理中,不能重试"),
        (TaskStatus.PROCESSING, timedelta(minutes=5), "任务仍在正常处理中,不能重试"),
        (TaskStatus.SUCCESS, None, "成功的任务不能重试"),
    ],
)
def test_retry_refuses_tasks_that_do_not_need_it(status: str, age: Any, message: str) -> None:
    member = make_member()
    task = make_task(member, status, age=age)
    response = run_action(logged_in(make_support()), "retry", task, apply="1")
    assert message in " ".join(str(m) for m in response.wsgi_request._messages)
    assert not Task.objects.filter(retry_of=task).exists()
    assert balance(member) == 9


def test_refused_retry_leaves_everything_as_it_was() -> None:
    member = make_member()
    stuck = make_task(member, TaskStatus.PENDING, age=timedelta(hours=1))
    User.objects.filter(pk=member.pk).update(is_member=False)
    response = run_action(logged_in(make_support()), "retry", stuck, apply="1")
    assert "请先购买会员" in " ".join(str(m) for m in response.wsgi_request._messages)
    assert Task.objects.get(pk=stuck.pk).status == TaskStatus.PENDING
    assert not refunds(stuck) and balance(member) == 9


# --- refund -------------------------------------------------------------------------------------


@staff_makers
def test_refund_of_a_failed_task_that_kept_its_charge_happens_once(maker: Any) -> None:
    staff, member = maker(), make_member()
    task = make_task(member)
    # A failure that bypassed the services: failed, still charged.
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.FAILED, error_message="数据修复")
    client = logged_in(staff)

    response = run_action(client, "refund_missing", task)
    assert response.status_code == 302
    [row] = refunds(task)
    assert row.delta == 1 and staff.username in row.reason
    assert balance(member) == 10

    again = run_action(client, "refund_missing", task)
    assert "该任务已退还过配额" in " ".join(str(m) for m in again.wsgi_request._messages)
    assert len(refunds(task)) == 1 and balance(member) == 10
    assert not quota_mismatches()


def test_refund_refuses_tasks_that_are_not_failed() -> None:
    member = make_member()
    task = make_task(member, TaskStatus.SUCCESS)
    response = run_action(logged_in(make_support()), "refund_missing", task)
    assert "只有失败的任务可以补退" in " ".join(str(m) for m in response.wsgi_request._messages)
    assert not refunds(task) and balance(member) == 9


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_counts_with_few_queries(assert_max_statements: Any) -> None:
    member = make_member(quota=50)
    for n in range(3):
        make_task(member, TaskStatus.FAILED, failure_code=FailureCode.PROCESSING_TIMEOUT, reason=f"staff text {n}")
    make_task(member, TaskStatus.FAILED, failure_code=FailureCode.AUDIT_BLOCKED)
    make_task(member, TaskStatus.SUCCESS)
    make_task(member, TaskStatus.PENDING, age=timedelta(hours=1))
    make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=2))
    client = logged_in(make_support())
    with assert_max_statements(12):
        response = client.get("/admin/")
    context = response.context
    assert dict((label, n) for label, n, _ in context["by_status"]) == {"排队中": 1, "处理中": 1, "成功": 1, "失败": 4}
    failures = [(row["failure_code"], row["label"], row["n"]) for row in context["failures"]]
    assert failures == [("processing_timeout", "处理超时", 3), ("audit_blocked", "内容审核未通过", 1)], (
        "grouped by failure code, not by the free text typed with it"
    )
    assert context["stuck"] == {"pending": 1, "processing": 1}
    assert context["quota"]["granted"] == 50 and context["quota"]["consumed"] == 7 and context["quota"]["refunded"] == 4
    assert 'id="task-dashboard"' in response.content.decode()


def test_dashboard_is_hidden_from_staff_who_cannot_see_tasks() -> None:
    response = logged_in(make_user(is_staff=True)).get("/admin/")
    assert response.status_code == 200 and 'id="task-dashboard"' not in response.content.decode()


# --- actions keep their place -------------------------------------------------------------------


def levels_and_texts(response: Any) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.wsgi_request._messages]


def test_fail_and_refund_from_a_filtered_list_returns_to_that_list() -> None:
    member = make_member()
    stuck = make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1))
    client = logged_in(make_support())
    selection = {"action": "fail_and_refund", "_selected_action": [str(stuck.pk)]}

    form = client.post(f"{CHANGELIST}?stuck=yes", selection)
    assert form.status_code == 200
    assert 'action="/admin/tasks/task/?stuck=yes"' in form.content.decode(), "the form posts back to the filter"

    done = client.post(f"{CHANGELIST}?stuck=yes", {**selection, "apply": "1", "reason": "卡住"})
    assert done.status_code == 302 and done["Location"] == f"{CHANGELIST}?stuck=yes"
    assert Task.objects.get(pk=stuck.pk).status == TaskStatus.FAILED


def test_a_task_page_button_comes_back_to_the_task() -> None:
    member = make_member()
    failed = make_task(member, TaskStatus.FAILED)
    QuotaLedger.objects.filter(task_id=failed.pk, kind=LedgerKind.REFUND).delete()
    User.objects.filter(pk=member.pk).update(quota_remaining=9)
    page = f"{CHANGELIST}{failed.pk}/change/"
    response = run_action(logged_in(make_support()), "refund_missing", failed, next=page)
    assert response.status_code == 302 and response["Location"] == page
    assert len(refunds(failed)) == 1

    elsewhere = run_action(logged_in(make_support()), "refund_missing", failed, next="https://evil.example.com/")
    assert elsewhere["Location"] == CHANGELIST, "only a local page is a place to come back to"


def test_failing_nothing_is_a_warning_that_says_why() -> None:
    done = make_task(make_member(), TaskStatus.SUCCESS)
    response = run_action(logged_in(make_support()), "fail_and_refund", done, apply="1", reason="x")
    levels = levels_and_texts(response)
    assert all(level == WARNING for level, _ in levels), levels
    assert "已将 0 个任务" not in " ".join(text for _, text in levels)
    assert "已结束" in levels[0][1]


def test_task_page_offers_only_the_actions_that_apply() -> None:
    member = make_member(quota=20)
    client = logged_in(make_support())

    def buttons(task: Task) -> set[str]:
        page = client.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
        return {name for name in ("fail_and_refund", "retry", "refund_missing") if f'id="action-{name}"' in page}

    unrefunded = make_task(member, TaskStatus.FAILED)
    QuotaLedger.objects.filter(task_id=unrefunded.pk, kind=LedgerKind.REFUND).delete()
    User.objects.filter(pk=member.pk).update(quota_remaining=F("quota_remaining") - 1)
    assert buttons(make_task(member)) == {"fail_and_refund"}
    assert buttons(make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1))) == {"fail_and_refund", "retry"}
    assert buttons(make_task(member, TaskStatus.FAILED)) == {"retry"}
    assert buttons(unrefunded) == {"retry", "refund_missing"}
    assert buttons(make_task(member, TaskStatus.SUCCESS)) == set()


def test_retry_asks_first_and_says_it_charges_the_member() -> None:
    member = make_member()
    failed = make_task(member, TaskStatus.FAILED)
    page = run_action(logged_in(make_support()), "retry", failed)
    assert page.status_code == 200
    text = page.content.decode()
    assert "扣费" in text and "确认重试并扣费" in text and "会员当前余额 10" in text
    assert not Task.objects.filter(retry_of=failed).exists() and balance(member) == 10


def test_task_actions_appear_in_recent_actions() -> None:
    member = make_member()
    stuck = make_task(member, TaskStatus.PROCESSING, age=timedelta(hours=1))
    failed = make_task(member, TaskStatus.FAILED)
    support = make_support()
    client = logged_in(support)
    run_action(client, "fail_and_refund", stuck, apply="1", reason="卡住了")
    run_action(client, "retry", failed, apply="1")
    entries = LogEntry.objects.filter(user=support, content_type__model="task")
    assert {(e.object_id, e.get_change_message()) for e in entries} >= {(str(stuck.pk), "失败并退款。原因:卡住了")}
    assert entries.filter(object_id=str(failed.pk), change_message__contains="重试为新任务").exists()
    assert str(stuck.pk) in client.get("/admin/").content.decode(), "shown under the index's recent actions"


def test_failure_codes_filter_and_show_their_labels_and_long_errors_are_cut_with_a_tooltip() -> None:
    member = make_member()
    long_text = "RunningHub 返回了一段非常长的错误信息," * 10
    timeout = make_task(member, TaskStatus.FAILED, failure_code=FailureCode.PROCESSING_TIMEOUT, reason=long_text)
    make_task(member, TaskStatus.FAILED, failure_code=FailureCode.AUDIT_BLOCKED)
    client = logged_in(make_support())
    assert shown(client, "failure_code__exact=processing_timeout") == {timeout.pk}
    page = client.get(CHANGELIST).content.decode()
    assert "处理超时" in page and "内容审核未通过" in page
    assert f'title="{long_text}"' in page and page.count(long_text) == 1


# --- the member page ----------------------------------------------------------------------------


def test_member_page_is_a_hub_with_tasks_and_a_readable_ledger(assert_max_statements: Any) -> None:
    member = make_member(username="zhang.wei", phone="13800138000", quota=20)
    tasks = [make_task(member, TaskStatus.FAILED, task_type=TaskType.MODEL_POSE12) for _ in range(12)]
    client = logged_in(make_support())
    url = f"/admin/accounts/user/{member.pk}/change/"
    with assert_max_statements(10):
        response = client.get(url)
    page = response.content.decode()
    top = page.index("13800138000")
    assert top < page.index("最近 10 个任务") < page.index("最近 50 条配额流水")
    assert "有效会员" in page and "剩余配额" in page and "会员到期" in page
    assert page.count('class="compensate-task"') == 10
    assert f'href="/admin/tasks/task/{tasks[-1].pk}/change/">{str(tasks[-1].pk)[:8]}</a>' in page
    assert "模特12宫格" in page and "失败" in page
    ledger = page.split("最近 50 条配额流水")[1]
    assert "退还" in ledger and "+1" in ledger and ">refund<" not in ledger and "→" not in ledger
    # Password and permissions are the superusers' business.
    assert "权限" not in page and "password" not in page.lower().split("<form")[1]

    for n in range(20):
        make_task(member, TaskStatus.FAILED)
    with assert_max_statements(10):
        assert client.get(url).status_code == 200, "the number of queries does not grow with the rows"

    admin_page = logged_in(make_superuser()).get(url).content.decode()
    assert "权限" in admin_page and "user_permissions" in admin_page


def test_user_list_has_one_member_filter() -> None:
    page = logged_in(make_support()).get("/admin/accounts/user/").content.decode()
    assert "?membership=active" in page and "is_member__exact" not in page


def test_durations_read_in_seconds_minutes_or_hours() -> None:
    member = make_member()
    took = {n: make_task(member, TaskStatus.SUCCESS) for n in (42, 125, 3725)}
    for seconds, task in took.items():
        Task.objects.filter(pk=task.pk).update(completed_at=F("started_at") + timedelta(seconds=seconds))
    page = logged_in(make_support()).get(CHANGELIST).content.decode()
    assert 'class="field-duration">42秒<' in page
    assert 'class="field-duration">2分5秒<' in page
    assert 'class="field-duration">1小时2分<' in page


def test_a_stored_value_that_is_not_a_web_url_is_shown_as_text_never_as_a_link() -> None:
    task = make_task(make_member(), TaskStatus.SUCCESS)
    Task.objects.filter(pk=task.pk).update(
        input_image_url="javascript:alert(1)", result_urls=["uploads/7/p.png", "https://cdn.example.com/r/1.png"]
    )
    page = logged_in(make_support()).get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert "<code>javascript:alert(1)</code>" in page and "<code>uploads/7/p.png</code>" in page
    assert 'href="javascript:' not in page and 'src="javascript:' not in page and 'src="uploads/' not in page
    assert page.count('<img src="https://cdn.example.com/r/1.png"') == 1, "a web URL is still an image"


def test_the_page_of_a_task_that_does_not_exist_says_so() -> None:
    missing = "8d1c4a3e-0000-4000-8000-000000000000"
    response = logged_in(make_support()).get(f"{CHANGELIST}{missing}/change/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    [(_level, message)] = levels_and_texts(response)
    assert missing in message


def test_a_retried_task_and_its_retry_link_to_each_other() -> None:
    failed = make_task(make_member(), TaskStatus.FAILED)
    client = logged_in(make_support())
    run_action(client, "retry", failed, apply="1")
    retry = Task.objects.get(retry_of=failed)

    original_page = client.get(f"{CHANGELIST}{failed.pk}/change/").content.decode()
    assert f'已重试为 <a href="{CHANGELIST}{retry.pk}/change/">{retry.pk}</a>' in original_page
    assert "重试自" not in original_page
    retry_page = client.get(f"{CHANGELIST}{retry.pk}/change/").content.decode()
    assert f'重试自 <a href="{CHANGELIST}{failed.pk}/change/">{failed.pk}</a>' in retry_page
    assert "已重试为" not in retry_page


def test_failing_a_selection_that_left_the_filtered_list_changes_nothing_and_says_why() -> None:
    """Staff selected a pending task; it finished before they confirmed: the action on the
    pending list finds nothing to fail, refunds nothing, and says so."""
    member = make_member()
    task = make_task(member, TaskStatus.SUCCESS)
    response = logged_in(make_support()).post(
        f"{CHANGELIST}?status__exact=pending",
        {"action": "fail_and_refund", "_selected_action": [str(task.pk)], "apply": "1", "reason": "卡住"},
    )
    assert levels_and_texts(response) == [
        (WARNING, "没有任务被改动:所选任务已不在当前筛选结果中(可能刚被处理或已结束)。")
    ]
    assert Task.objects.get(pk=task.pk).status == TaskStatus.SUCCESS
    assert not refunds(task) and balance(member) == 9
    assert not LogEntry.objects.filter(object_id=str(task.pk)).exists()


def test_member_page_offers_compensation_only_to_staff_who_may_adjust_quota() -> None:
    member = make_member()
    failed = make_task(member, TaskStatus.FAILED)
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "view_task"]))
    url = f"/admin/accounts/user/{member.pk}/change/"

    page = logged_in(viewer).get(url).content.decode()
    assert f'href="{CHANGELIST}{failed.pk}/change/"' in page, "the task is listed"
    assert 'class="compensate-task"' not in page and "column-compensate" not in page

    page = logged_in(make_support()).get(url).content.decode()
    assert page.count('class="compensate-task"') == 1
