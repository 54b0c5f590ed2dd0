"""Ordering a job (tasks/creation.py): the SPEC §4 order of checks, own uploads and the input URL
policy before any charge, the charge and the insert together, and the Idempotency-Key (also
under concurrent requests, with real threads on PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import balance, make_member
from core.tests.helpers import error_of, race
from media.models import Upload
from media.storage import get_storage
from media.tests.factories import upload_photo
from quota.selectors import quota_mismatches
from tasks.actions import task_member_retry
from tasks.creation import TaskOrder, task_batch_create, task_create
from tasks.models import IdempotencyKey, Task, TaskStatus, TaskType
from tasks.tests.factories import INPUT_URL, broker, make_task, post_create, public_dns

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def test_type_is_checked_before_params_and_membership(client_for: Client, non_member: User) -> None:
    assert error_of(post_create(client_for(non_member), {"type": "x", "params": {"bad": 1}})) == (400, 4001)
    assert error_of(post_create(client_for(non_member), {"type": "model_pose12", "params": {"bad": 1}})) == (
        400,
        4002,
    )


def test_non_member_is_4003(client_for: Client, non_member: User, uploaded: str) -> None:
    response = post_create(client_for(non_member), {"type": "basic_clean", "inputImageUrl": uploaded})
    assert error_of(response) == (403, 4003)
    assert response.json()["error"]["message"] == "请先开通会员"


def test_out_of_quota_is_1003_and_nothing_is_created(client_for: Client) -> None:
    poor = make_member(quota=0)
    response = post_create(client_for(poor), {"type": "basic_clean", "inputImageUrl": upload_photo(client_for(poor))})
    assert error_of(response) == (403, 1003)
    assert response.json()["error"]["message"] == "配额不足,请续费"
    assert not Task.objects.filter(user=poor).exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://images.example.com/a.png",
        "https://evil.example.org/a.png",
        "ftp://images.example.com/a.png",
        "https://user:pw@images.example.com/a.png",
        "not a url",
        "",
        None,
        "http://testserver/media/uploads/1/../../etc/passwd",
        "http://testserver/media/uploads/1/\u0000.png",
        "https://images.example.com:99999/x.png",
        "https://[::1/x.png",
    ],
)
def test_unacceptable_input_urls_are_4002_before_any_charge(client_for: Client, member: User, url: Any) -> None:
    with public_dns():
        response = post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": url})
    assert error_of(response) == (400, 4002)
    assert balance(member) == 10


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fd00::1",
        "fec0::1",
        "0.0.0.0",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)
def test_allowed_host_resolving_to_an_internal_address_is_4002(client_for: Client, member: User, address: str) -> None:
    with public_dns(address):
        response = post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": INPUT_URL})
    assert error_of(response) == (400, 4002)
    assert balance(member) == 10


def test_an_own_upload_that_is_not_in_storage_is_4002_before_any_charge(client_for: Client, member: User) -> None:
    """A URL of the exact upload shape, the member's own, that is gone (cleaned up: its record and
    its file): the upload check (media_require_upload) refuses it; the scheme rule never sees it
    (the URL is http)."""
    uploaded = upload_photo(client_for(member))
    key = get_storage().key_for_url(uploaded)
    assert key is not None and uploaded.startswith("http://")
    Upload.objects.filter(key=key).delete()
    get_storage().delete(key=key)
    response = post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": uploaded})
    assert error_of(response) == (400, 4002)
    assert response.json()["error"]["fields"] == {"inputImageUrl": ["不存在"]}
    assert balance(member) == 10 and not Task.objects.exists()


def test_an_allowed_host_that_does_not_resolve_is_4002_before_any_charge(client_for: Client, member: User) -> None:
    import socket
    from unittest import mock

    def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with mock.patch("socket.getaddrinfo", side_effect=unknown):
        response = post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": INPUT_URL})
    assert error_of(response) == (400, 4002)
    assert balance(member) == 10 and not Task.objects.exists()


def test_allowed_public_host_is_accepted(client_for: Client, member: User) -> None:
    with public_dns():
        response = post_create(client_for(member), {"type": "basic_clean", "inputImageUrl": INPUT_URL})
    assert response.status_code == 201


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_idempotent_replay_returns_the_same_task_without_a_second_charge(
    client_for: Client, member: User, uploaded: str
) -> None:
    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    first = post_create(client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    again = post_create(client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert balance(member) == 9
    conflict = post_create(client, {**body, "type": "model_pose12"}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert error_of(conflict) == (409, 4009)
    assert conflict.json()["error"]["message"] == "幂等键冲突"
    stranger = client_for(make_member())
    other = post_create(stranger, {**body, "inputImageUrl": upload_photo(stranger)}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert other.status_code == 201 and other.json()["data"]["id"] != first.json()["data"]["id"]


def test_idempotency_key_expires_after_24_hours(client_for: Client, member: User, uploaded: str) -> None:
    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    first = post_create(client, body, HTTP_IDEMPOTENCY_KEY="k")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = post_create(client, body, HTTP_IDEMPOTENCY_KEY="k")
    assert second.status_code == 201 and second.json()["data"]["id"] != first.json()["data"]["id"]
    assert balance(member) == 8


def test_replay_shows_the_task_as_it_is_now(client_for: Client, member: User, uploaded: str) -> None:
    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    task_id = post_create(client, body, HTTP_IDEMPOTENCY_KEY="r-1").json()["data"]["id"]
    client.post(f"/api/task/{task_id}/cancel")
    replay = post_create(client, body, HTTP_IDEMPOTENCY_KEY="r-1").json()["data"]
    assert (replay["id"], replay["status"], replay["quotaRefunded"]) == (task_id, "failed", 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("quota", [1, 10])
def test_concurrent_requests_with_one_idempotency_key_make_one_task(quota: int) -> None:
    """With quota for one task only, the retries must replay it rather than be refused (1003)."""

    owner = make_member(quota=quota)

    def order() -> object:
        return task_create(
            user=owner,
            task_type=TaskType.BASIC_CLEAN,
            input_image_url=INPUT_URL,
            params={},
            idempotency_key="checkout-7",
        ).task.pk

    with public_dns(), broker():
        results = race(*[order] * 10)
    assert len(set(results)) == 1 and isinstance(results[0], uuid.UUID), results
    assert balance(owner) == quota - 1
    assert Task.objects.filter(user=owner).count() == 1
    assert quota_mismatches() == []


# --- batches (SPEC §8) ---------------------------------------------------------------------------


def post_batch(client: APIClient, items: Any, **headers: Any) -> Any:
    return client.post("/api/task/batch", {"items": items}, format="json", **headers)


def test_a_batch_is_charged_and_created_in_item_order(client_for: Client) -> None:
    member = make_member(quota=5)
    client = client_for(member)
    url = upload_photo(client)
    items = [
        {"type": "basic_clean", "inputImageUrl": url},
        {"type": "model_pose12", "inputImageUrl": url, "params": {"scene": "studio"}},
        {"type": "basic_clean", "inputImageUrl": url},
    ]
    response = post_batch(client, items)
    assert response.status_code == 201, response.content
    body = response.json()["data"]
    assert [task["type"] for task in body["tasks"]] == ["basic_clean", "model_pose12", "basic_clean"]
    assert {task["batchId"] for task in body["tasks"]} == {body["batchId"]}
    assert body["tasks"][1]["params"] == {"scene": "studio", "category": "dress"}
    assert balance(member) == 2
    listed = client.get("/api/task/list", {"batchId": body["batchId"]}).json()["data"]
    assert listed["total"] == 3 and {t["id"] for t in listed["tasks"]} == {t["id"] for t in body["tasks"]}
    assert quota_mismatches() == []


def test_a_batch_the_quota_does_not_cover_charges_nothing(client_for: Client) -> None:
    member = make_member(quota=2)
    client = client_for(member)
    url = upload_photo(client)
    response = post_batch(client, [{"type": "basic_clean", "inputImageUrl": url}] * 3)
    assert error_of(response) == (403, 1003)
    assert "还差 1" in response.json()["error"]["message"]
    assert balance(member) == 2 and not Task.objects.filter(user=member).exists()
    assert quota_mismatches() == []


def test_an_item_error_names_the_item_and_nothing_is_created(client_for: Client) -> None:
    member = make_member(quota=10)
    client = client_for(member)
    url = upload_photo(client)
    good = {"type": "basic_clean", "inputImageUrl": url}
    cases = [
        ([good, {"type": "upscale", "inputImageUrl": url}], 4001, "items[1].type"),
        ([good, good, {"type": "model_pose12", "inputImageUrl": url, "params": {"scene": "moon"}}], 4002,
         "items[2].params.scene"),
        ([{"type": "basic_clean"}], 4002, "items[0].inputImageUrl"),
        ([good, {"type": "basic_clean", "inputImageUrl": "http://10.0.0.1/x.png"}], 4002, "items[1].inputImageUrl"),
        ([good, "not an object"], 4002, "items[1]"),
    ]  # fmt: skip
    for items, code, field in cases:
        response = post_batch(client, items)
        assert response.json()["error"]["code"] == code, (items, response.content)
        assert field in response.json()["error"]["fields"], (field, response.json())
    assert error_of(post_batch(client, [])) == (400, 4002)
    assert error_of(post_batch(client, [good] * 51)) == (400, 4002)
    assert balance(member) == 10 and not Task.objects.filter(user=member).exists()


def test_another_members_upload_in_a_batch_is_refused(client_for: Client) -> None:
    member, other = make_member(quota=10), make_member(quota=10)
    theirs = upload_photo(client_for(other))
    response = post_batch(client_for(member), [{"type": "basic_clean", "inputImageUrl": theirs}])
    assert error_of(response) == (400, 4002) and "items[0].inputImageUrl" in response.json()["error"]["fields"]
    assert balance(member) == 10


def test_a_replayed_batch_answers_the_same_tasks_without_a_second_charge(client_for: Client) -> None:
    member = make_member(quota=10)
    client = client_for(member)
    items = [{"type": "basic_clean", "inputImageUrl": upload_photo(client)}] * 2
    first = post_batch(client, items, HTTP_IDEMPOTENCY_KEY="bulk-1")
    again = post_batch(client, items, HTTP_IDEMPOTENCY_KEY="bulk-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert [t["id"] for t in again.json()["data"]["tasks"]] == [t["id"] for t in first.json()["data"]["tasks"]]
    assert balance(member) == 8
    assert error_of(post_batch(client, items[:1], HTTP_IDEMPOTENCY_KEY="bulk-1")) == (409, 4009)


def test_the_unfinished_task_cap_refuses_a_create_or_a_batch_beyond_it(client_for: Client, settings: Any) -> None:
    settings.MEMBER_MAX_ACTIVE_TASKS = 3
    member = make_member(quota=10)
    client = client_for(member)
    url = upload_photo(client)
    assert post_batch(client, [{"type": "basic_clean", "inputImageUrl": url}] * 2).status_code == 201
    refused = post_batch(client, [{"type": "basic_clean", "inputImageUrl": url}] * 2)
    assert error_of(refused) == (429, 4029) and "上限" in refused.json()["error"]["message"]
    assert int(refused["Retry-After"]) >= 1
    assert post_create(client, {"type": "basic_clean", "inputImageUrl": url}).status_code == 201
    assert error_of(post_create(client, {"type": "basic_clean", "inputImageUrl": url})) == (429, 4029)
    assert balance(member) == 7 and quota_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_a_batch_racing_single_creates_keeps_the_quota_exact() -> None:
    member = make_member(quota=10)

    def single() -> object:
        return task_create(user=member, task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={}).task

    def batch() -> object:
        orders = [TaskOrder(task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={})] * 6
        return task_batch_create(user=member, orders=orders)

    with public_dns(), broker():
        results = race(batch, *[single] * 6)
    created = Task.objects.filter(user=member).count()
    assert created <= 10 and balance(member) == 10 - created
    batch_result = results[0]
    if isinstance(batch_result, Exception):
        assert getattr(batch_result, "code", None) == 1003, batch_result
    else:
        assert Task.objects.filter(user=member, batch_id__isnull=False).count() == 6
    assert all(not isinstance(r, Exception) or getattr(r, "code", None) == 1003 for r in results), results
    assert quota_mismatches() == []


def test_a_non_member_batch_is_4003_before_any_item_is_checked(client_for: Client, non_member: User) -> None:
    # The item names no upload of this member; membership is refused first all the same.
    response = post_batch(client_for(non_member), [{"type": "basic_clean", "inputImageUrl": INPUT_URL}])
    assert error_of(response) == (403, 4003)
    assert not Task.objects.filter(user=non_member).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_one_idempotency_key_make_one_batch() -> None:
    owner = make_member(quota=4)
    orders = [TaskOrder(task_type=TaskType.BASIC_CLEAN, input_image_url=INPUT_URL, params={})] * 2

    def order() -> object:
        created = task_batch_create(user=owner, orders=orders, idempotency_key="bulk-race")
        return (created.batch_id, created.replayed)

    with public_dns(), broker():
        results = race(*[order] * 6)
    answers = [r for r in results if isinstance(r, tuple)]
    assert len(answers) == len(results), results
    assert len({batch for batch, _ in answers}) == 1
    assert sorted(replayed for _, replayed in answers) == [False] + [True] * 5
    assert balance(owner) == 2 and Task.objects.filter(user=owner).count() == 2
    assert quota_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_retries_of_one_failed_task_make_one_retry() -> None:
    owner = make_member(quota=5)
    failed = make_task(owner, TaskStatus.FAILED)
    before = balance(owner)

    def retry() -> object:
        return task_member_retry(task_id=failed.pk, user=owner).pk

    with public_dns(), broker():
        results = race(*[retry] * 4)
    retried = [r for r in results if isinstance(r, uuid.UUID)]
    refused = [r for r in results if not isinstance(r, uuid.UUID)]
    assert len(retried) == 1, results
    # Every other attempt is told the task was retried (4005), whether it saw the retry before
    # inserting or collided with it on the database's one-retry constraint.
    assert [getattr(r, "code", r) for r in refused] == [4005] * 3
    assert Task.objects.filter(retry_of=failed).count() == 1
    assert balance(owner) == before - 1 and quota_mismatches() == []
