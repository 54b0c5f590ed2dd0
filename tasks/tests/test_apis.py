import io
import socket
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member, make_user
from media.tests.images import product_photo
from quota.models import LedgerKind, QuotaLedger
from quota.selectors import quota_mismatches
from tasks.models import Task, TaskEvent

pytestmark = pytest.mark.django_db

Client = Callable[[User], APIClient]


def error_of(response: Any) -> tuple[int, int]:
    return response.status_code, response.json()["error"]["code"]


def upload_as(client: APIClient) -> str:
    """The URL of a photo uploaded by the client's own user (only own uploads are accepted)."""
    photo = SimpleUploadedFile("p.png", product_photo(), "image/png")
    response = client.post("/api/media/upload", {"file": photo}, format="multipart")
    assert response.status_code == 201, response.content
    return str(response.json()["data"]["url"])


def create(client: APIClient, body: Any, **headers: Any) -> Any:
    return client.post("/api/task/create", body, format="json", **headers)


def balance(user: User) -> int:
    user.refresh_from_db()
    return user.quota_remaining


def public_dns(address: str = "93.184.216.34") -> Any:
    """Answers every look-up with `address`, so no test needs real DNS."""
    return mock.patch("socket.getaddrinfo", return_value=[(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443))])


# --- create -------------------------------------------------------------------------------------


def test_create_basic_clean_charges_and_answers_task_json(client_for: Client, member: User, uploaded: str) -> None:
    response = create(client_for(member), {"type": "basic_clean", "inputImageUrl": uploaded})
    assert response.status_code == 201, response.content
    task = response.json()["data"]
    assert set(task) == {
        "id", "type", "status", "inputImageUrl", "params", "resultUrls", "errorMessage", "failureCode", "createdAt",
        "updatedAt", "startedAt", "completedAt", "quotaCharged", "quotaRefunded",
    }  # fmt: skip
    assert task["status"] == "pending" and task["type"] == "basic_clean"
    assert task["quotaCharged"] == 1 and task["quotaRefunded"] == 0
    assert task["createdAt"].endswith("+00:00")
    assert balance(member) == 9
    ledger = QuotaLedger.objects.get(task_id=task["id"])
    assert (ledger.kind, ledger.delta) == (LedgerKind.DEDUCT, -1)


def test_create_model_pose12_fills_default_params(client_for: Client, member: User, uploaded: str) -> None:
    response = create(client_for(member), {"type": "model_pose12", "inputImageUrl": uploaded})
    assert response.status_code == 201
    assert response.json()["data"]["params"] == {"scene": "street", "category": "dress"}
    body = {"type": "model_pose12", "inputImageUrl": uploaded, "params": {"scene": "studio", "category": "coat"}}
    assert create(client_for(member), body).json()["data"]["params"] == {"scene": "studio", "category": "coat"}


@pytest.mark.parametrize("task_type", ["", "upscale", None, 5, ["basic_clean"]])
def test_unknown_type_is_4001(client_for: Client, member: User, uploaded: str, task_type: Any) -> None:
    response = create(client_for(member), {"type": task_type, "inputImageUrl": uploaded})
    assert error_of(response) == (400, 4001)
    assert response.json()["error"]["message"] == "无效的任务类型"
    assert balance(member) == 10


@pytest.mark.parametrize(
    "task_type,params",
    [
        ("model_pose12", {"scene": "beach"}),
        ("model_pose12", {"category": "hat"}),
        ("model_pose12", {"scene": "street", "colour": "red"}),
        ("model_pose12", "street"),
        ("basic_clean", {"scene": "street"}),
    ],
)
def test_bad_params_are_4002(client_for: Client, member: User, uploaded: str, task_type: str, params: Any) -> None:
    response = create(client_for(member), {"type": task_type, "inputImageUrl": uploaded, "params": params})
    assert error_of(response) == (400, 4002)
    assert balance(member) == 10


def test_type_is_checked_before_params_and_membership(client_for: Client, non_member: User) -> None:
    assert error_of(create(client_for(non_member), {"type": "x", "params": {"bad": 1}})) == (400, 4001)
    assert error_of(create(client_for(non_member), {"type": "model_pose12", "params": {"bad": 1}})) == (400, 4002)


def test_non_member_is_4003(client_for: Client, non_member: User, uploaded: str) -> None:
    response = create(client_for(non_member), {"type": "basic_clean", "inputImageUrl": uploaded})
    assert error_of(response) == (403, 4003)
    assert response.json()["error"]["message"] == "请先开通会员"


def test_out_of_quota_is_1003_and_nothing_is_created(client_for: Client, uploaded: str, member: User) -> None:
    poor = make_member(quota=0)
    response = create(client_for(poor), {"type": "basic_clean", "inputImageUrl": upload_as(client_for(poor))})
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
        "http://testserver/media/uploads/999/missing.png",
        "http://testserver/media/uploads/1/\u0000.png",
        "https://images.example.com:99999/x.png",
        "https://[::1/x.png",
    ],
)
def test_unacceptable_input_urls_are_4002_before_any_charge(client_for: Client, member: User, url: Any) -> None:
    with public_dns():
        response = create(client_for(member), {"type": "basic_clean", "inputImageUrl": url})
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
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    answer = [(family, socket.SOCK_STREAM, 6, "", (address, 443))]
    with mock.patch("socket.getaddrinfo", return_value=answer):
        response = create(
            client_for(member), {"type": "basic_clean", "inputImageUrl": "https://images.example.com/p.png"}
        )
    assert error_of(response) == (400, 4002)
    assert balance(member) == 10


def test_allowed_public_host_is_accepted(client_for: Client, member: User) -> None:
    with public_dns():
        response = create(
            client_for(member), {"type": "basic_clean", "inputImageUrl": "https://images.example.com/p.png"}
        )
    assert response.status_code == 201


def test_malformed_body_is_4002(client_for: Client, member: User) -> None:
    client = client_for(member)
    assert error_of(client.post("/api/task/create", "{nope", content_type="application/json")) == (400, 4002)
    assert error_of(client.post("/api/task/create", "[1, 2]", content_type="application/json")) == (400, 4002)


def test_create_needs_login(api: APIClient) -> None:
    assert error_of(create(api, {"type": "basic_clean"})) == (401, 1001)


def test_idempotent_replay_returns_the_same_task_without_a_second_charge(
    client_for: Client, member: User, uploaded: str
) -> None:
    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    first = create(client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    again = create(client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert balance(member) == 9
    conflict = create(client, {**body, "type": "model_pose12"}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert error_of(conflict) == (409, 4009)
    assert conflict.json()["error"]["message"] == "幂等键冲突"
    stranger = client_for(make_member())
    other = create(stranger, {**body, "inputImageUrl": upload_as(stranger)}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert other.status_code == 201 and other.json()["data"]["id"] != first.json()["data"]["id"]


def test_idempotency_key_expires_after_24_hours(client_for: Client, member: User, uploaded: str) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import IdempotencyKey

    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    first = create(client, body, HTTP_IDEMPOTENCY_KEY="k")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = create(client, body, HTTP_IDEMPOTENCY_KEY="k")
    assert second.status_code == 201 and second.json()["data"]["id"] != first.json()["data"]["id"]
    assert balance(member) == 8


def test_create_is_throttled_per_user(client_for: Client, member: User, uploaded: str, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
    from rest_framework.throttling import SimpleRateThrottle

    with mock.patch.object(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "task_create": "2/min"}
    ):
        client = client_for(member)
        statuses = [create(client, {"type": "basic_clean", "inputImageUrl": uploaded}).status_code for _ in range(3)]
        assert statuses[:2] == [201, 201]
        limited = create(client, {"type": "basic_clean", "inputImageUrl": uploaded})
    assert error_of(limited) == (429, 4029)
    assert int(limited["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
def test_create_query_count(client_for: Client, member: User, uploaded: str, assert_max_statements: Any) -> None:
    client = client_for(member)
    with assert_max_statements(8):
        response = create(client, {"type": "basic_clean", "inputImageUrl": uploaded}, HTTP_IDEMPOTENCY_KEY="q-1")
    assert response.status_code == 201


# --- get, list ----------------------------------------------------------------------------------


@pytest.fixture
def own_task(client_for: Client, member: User, uploaded: str) -> dict[str, Any]:
    return dict(create(client_for(member), {"type": "basic_clean", "inputImageUrl": uploaded}).json()["data"])


def test_get_own_task(
    client_for: Client, member: User, own_task: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = client_for(member)
    with django_assert_max_num_queries(2):
        response = client.get(f"/api/task/{own_task['id']}")
    assert response.status_code == 200
    assert response.json()["data"] == own_task


def test_other_users_task_is_4003_and_unknown_is_4004(client_for: Client, own_task: dict[str, Any]) -> None:
    stranger = client_for(make_member())
    forbidden = stranger.get(f"/api/task/{own_task['id']}")
    assert error_of(forbidden) == (403, 4003)
    assert forbidden.json()["error"]["message"] == "无权访问该任务"
    assert error_of(stranger.post(f"/api/task/{own_task['id']}/cancel")) == (403, 4003)
    missing = stranger.get(f"/api/task/{uuid.uuid4()}")
    assert error_of(missing) == (404, 4004)
    assert missing.json()["error"]["message"] == "任务不存在"
    assert error_of(stranger.get("/api/task/not-a-uuid")) == (404, 4004)
    assert error_of(stranger.post("/api/task/not-a-uuid/cancel")) == (404, 4004)


def test_list_newest_first_with_filters_and_paging(client_for: Client, member: User, uploaded: str) -> None:
    client = client_for(member)
    ids = [create(client, {"type": "basic_clean", "inputImageUrl": uploaded}).json()["data"]["id"] for _ in range(3)]
    ids.append(create(client, {"type": "model_pose12", "inputImageUrl": uploaded}).json()["data"]["id"])
    create(client_for(make_member()), {"type": "basic_clean", "inputImageUrl": uploaded})
    page = client.get("/api/task/list", {"limit": 2, "offset": 1}).json()["data"]
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert [t["id"] for t in page["tasks"]] == ids[::-1][1:3]
    default = client.get("/api/task/list").json()["data"]
    assert default["limit"] == 10 and default["offset"] == 0 and len(default["tasks"]) == 4
    only_pose = client.get("/api/task/list", {"type": "model_pose12"}).json()["data"]
    assert [t["id"] for t in only_pose["tasks"]] == [ids[3]]
    assert client.get("/api/task/list", {"status": "success"}).json()["data"]["total"] == 0
    assert client.get("/api/task/list", {"offset": 50}).json()["data"]["tasks"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"offset": -1},
        {"status": "done"},
        {"status": ""},
        {"type": "upscale"},
        {"type": ""},
    ],
)
def test_list_bad_query_is_4002(client_for: Client, member: User, query: dict[str, Any]) -> None:
    assert error_of(client_for(member).get("/api/task/list", query)) == (400, 4002)


@pytest.mark.parametrize("count", [1, 30])
def test_list_query_count_does_not_grow(
    client_for: Client, member: User, uploaded: str, count: int, django_assert_max_num_queries: Any
) -> None:
    tasks = [Task(user=member, type="basic_clean", input_image_url=uploaded, cost=1) for _ in range(count)]
    Task.objects.bulk_create(tasks)
    client = client_for(member)
    with django_assert_max_num_queries(3):
        response = client.get("/api/task/list", {"limit": 100})
    assert len(response.json()["data"]["tasks"]) == count


# --- cancel and staff status --------------------------------------------------------------------


def test_cancel_fails_and_refunds_once(client_for: Client, member: User, own_task: dict[str, Any]) -> None:
    client = client_for(member)
    response = client.post(f"/api/task/{own_task['id']}/cancel")
    assert response.status_code == 200
    task = response.json()["data"]
    assert (task["status"], task["errorMessage"], task["quotaRefunded"]) == ("failed", "已取消", 1)
    assert balance(member) == 10
    again = client.post(f"/api/task/{own_task['id']}/cancel")
    assert error_of(again) == (409, 4005)
    assert again.json()["error"]["message"] == "任务状态不允许该操作"
    assert balance(member) == 10
    assert quota_mismatches() == []
    events = list(TaskEvent.objects.filter(task_id=own_task["id"]).values_list("from_status", "to_status", "reason"))
    assert events == [("pending", "failed", "已取消")]


def test_staff_status_update(client_for: Client, staff: User, member: User, own_task: dict[str, Any]) -> None:
    client = client_for(staff)
    url = f"/api/task/{own_task['id']}/status"
    assert client.put(url, {"status": "processing"}, format="json").json()["data"]["status"] == "processing"
    stored = "http://testserver/media/results/1/r.png"
    outside = client.put(url, {"status": "success", "resultUrls": ["https://cdn.example.com/r.png"]}, format="json")
    assert error_of(outside) == (400, 4002), "result URLs only on the product's own storage"
    done = client.put(url, {"status": "success", "resultUrls": [stored]}, format="json")
    assert done.status_code == 200
    assert done.json()["data"]["resultUrls"] == [stored]
    assert error_of(client.put(url, {"status": "failed"}, format="json")) == (409, 4005)
    assert balance(member) == 9
    event = TaskEvent.objects.filter(task_id=own_task["id"]).last()
    assert event is not None and event.actor == staff


def test_staff_fail_refunds(client_for: Client, staff: User, member: User, own_task: dict[str, Any]) -> None:
    url = f"/api/task/{own_task['id']}/status"
    response = client_for(staff).put(url, {"status": "failed", "errorMessage": "bad photo"}, format="json")
    assert response.json()["data"]["errorMessage"] == "bad photo"
    assert response.json()["data"]["quotaRefunded"] == 1
    assert balance(member) == 10


@pytest.mark.parametrize(
    "body", [{"status": "done"}, {}, {"status": "success", "resultUrls": "x"}, {"status": "failed", "errorMessage": 3}]
)
def test_staff_bad_body_is_4002(client_for: Client, staff: User, own_task: dict[str, Any], body: Any) -> None:
    assert error_of(client_for(staff).put(f"/api/task/{own_task['id']}/status", body, format="json")) == (400, 4002)


def test_status_update_is_staff_only(client_for: Client, member: User, own_task: dict[str, Any]) -> None:
    response = client_for(member).put(f"/api/task/{own_task['id']}/status", {"status": "failed"}, format="json")
    assert error_of(response) == (403, 4003)
    assert response.json()["error"]["message"] == "无权限"
    staff_without_permission = client_for(make_user(is_staff=True))
    response = staff_without_permission.put(f"/api/task/{own_task['id']}/status", {"status": "failed"}, format="json")
    assert error_of(response) == (403, 4003), "is_staff alone does not carry the task-action permission"
    superuser = client_for(make_user(is_staff=True, is_superuser=True))
    assert error_of(superuser.put(f"/api/task/{uuid.uuid4()}/status", {"status": "failed"}, format="json")) == (
        404,
        4004,
    )


# --- uploads ------------------------------------------------------------------------------------


def upload(client: APIClient, data: bytes, name: str = "p.png", content_type: str = "image/png") -> Any:
    return client.post("/api/media/upload", {"file": SimpleUploadedFile(name, data, content_type)}, format="multipart")


@pytest.mark.parametrize("fmt,content_type", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_upload_accepts_jpeg_png_webp(client_for: Client, member: User, fmt: str, content_type: str) -> None:
    from media.tests.images import product_photo

    data = product_photo(fmt=fmt)
    response = upload(client_for(member), data)
    assert response.status_code == 201
    body = response.json()["data"]
    assert (body["contentType"], body["width"], body["height"]) == (content_type, 320, 240)
    assert body["url"].startswith("http://testserver/media/uploads/") and body["key"].startswith("uploads/")
    served = b"".join(client_for(member).get(body["url"].removeprefix("http://testserver")).streaming_content)  # type: ignore[attr-defined]
    assert body["size"] == len(served), "the stored file is the re-encoded photo the answer describes"
    assert Image.open(io.BytesIO(served)).format == fmt


def test_upload_refuses_non_images_and_gif_and_bombs(client_for: Client, member: User) -> None:
    import io

    from PIL import Image

    client = client_for(member)
    assert error_of(upload(client, b"%PDF-1.4 not an image")) == (400, 4002)
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    assert error_of(upload(client, gif.getvalue(), "a.gif", "image/gif")) == (400, 4002)
    bomb = io.BytesIO()
    Image.new("1", (8000, 6000)).save(bomb, "PNG")  # 48 MP in a few kilobytes
    response = upload(client, bomb.getvalue())
    assert error_of(response) == (400, 4002)
    truncated = io.BytesIO()
    Image.new("RGB", (200, 200), "red").save(truncated, "JPEG")
    assert error_of(upload(client, truncated.getvalue()[:300])) == (400, 4002)
    assert error_of(client.post("/api/media/upload", {}, format="multipart")) == (400, 4002)


def test_upload_refuses_more_than_20_mb(client_for: Client, member: User, settings: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 1000
    from media.tests.images import product_photo

    assert error_of(upload(client_for(member), product_photo(size=(400, 400)))) == (400, 4002)


def test_upload_needs_login(api: APIClient) -> None:
    assert error_of(upload(api, b"x")) == (401, 1001)


def test_refunds_record_who_caused_them(
    client_for: Client, staff: User, member: User, own_task: dict[str, Any]
) -> None:
    client_for(staff).put(f"/api/task/{own_task['id']}/status", {"status": "failed"}, format="json")
    refund = QuotaLedger.objects.get(task_id=own_task["id"], kind=LedgerKind.REFUND)
    assert refund.actor == staff


def test_upload_with_an_oversized_declared_body_is_refused_early(client_for: Client, member: User) -> None:
    response = client_for(member).post(
        "/api/media/upload", b"x", content_type="multipart/form-data; boundary=zz", CONTENT_LENGTH=str(30 * 1024 * 1024)
    )
    assert error_of(response) == (413, 4002)


def test_replay_shows_the_task_as_it_is_now(client_for: Client, member: User, uploaded: str) -> None:
    client = client_for(member)
    body = {"type": "basic_clean", "inputImageUrl": uploaded}
    task_id = create(client, body, HTTP_IDEMPOTENCY_KEY="r-1").json()["data"]["id"]
    client.post(f"/api/task/{task_id}/cancel")
    replay = create(client, body, HTTP_IDEMPOTENCY_KEY="r-1").json()["data"]
    assert (replay["id"], replay["status"], replay["quotaRefunded"]) == (task_id, "failed", 1)


def test_staff_start_records_the_staff_member(client_for: Client, staff: User, own_task: dict[str, Any]) -> None:
    client_for(staff).put(f"/api/task/{own_task['id']}/status", {"status": "processing"}, format="json")
    event = TaskEvent.objects.get(task_id=own_task["id"])
    assert (event.to_status, event.actor) == ("processing", staff)
