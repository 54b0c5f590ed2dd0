from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.tests.factories import PASSWORD, make_member, make_user

pytestmark = pytest.mark.django_db


def login(client: APIClient, username: str, password: str = PASSWORD, **extra: Any):
    return client.post("/api/auth/login", {"username": username, "password": password}, format="json", **extra)


def assert_error(response, status: int, code: int, message: str | None = None) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    if message is not None:
        assert body["error"]["message"] == message


def test_login_returns_tokens_and_user(api: APIClient) -> None:
    user = make_member(quota=7)
    response = login(api, user.username)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"token", "refresh", "user"}
    assert data["user"]["username"] == user.username
    assert data["user"]["isMember"] is True
    assert data["user"]["quotaRemaining"] == 7
    assert data["user"]["quotaExpireAt"].endswith("+00:00")
    me = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {data['token']}")
    assert me.status_code == 200
    assert me.json()["data"] == data["user"]


def test_wrong_password_is_2001(api: APIClient) -> None:
    user = make_user()
    assert_error(login(api, user.username, "nope"), 400, 2001, "用户名或密码错误")
    assert_error(login(api, "nobody-here"), 400, 2001, "用户名或密码错误")


def test_inactive_user_cannot_log_in(api: APIClient) -> None:
    user = make_user(is_active=False)
    assert_error(login(api, user.username), 400, 2001)


@pytest.mark.parametrize(
    "body,content_type",
    [
        ('{"username": "a"', "application/json"),
        ('{"username": "a"}', "application/json"),
        ('{"username": ["a"], "password": 5}', "application/json"),
        ("[]", "application/json"),
    ],
)
def test_bad_login_body_is_4002(api: APIClient, body: str, content_type: str) -> None:
    assert_error(api.post("/api/auth/login", body, content_type=content_type), 400, 4002, "参数错误")


def test_login_is_throttled_with_retry_after(api: APIClient) -> None:
    user = make_user()
    statuses = [login(api, user.username, "wrong").status_code for _ in range(5)]
    assert statuses == [400] * 5
    response = login(api, user.username)
    assert_error(response, 429, 4029, "请求过于频繁")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_me_without_token_is_1001_not_logged_in(api: APIClient) -> None:
    assert_error(api.get("/api/auth/me"), 401, 1001, "未登录")


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Bearer", "Token abc", "Bearer x y"])
def test_malformed_token_is_1001_invalid(api: APIClient, header: str) -> None:
    response = api.get("/api/auth/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1001


def test_tampered_token_is_invalid(api: APIClient, member) -> None:
    token = str(AccessToken.for_user(member))
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[::-1]}"
    assert_error(api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {tampered}"), 401, 1001, "Token无效")


def test_expired_token_says_login_expired(api: APIClient, member) -> None:
    token = AccessToken.for_user(member)
    token.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(minutes=1))
    response = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(response, 401, 1001, "登录已过期,请重新登录")


def test_refresh_rotates_and_blacklists_the_old_token(api: APIClient, member) -> None:
    refresh = login(api, member.username).json()["data"]["refresh"]
    first = api.post("/api/auth/refresh", {"refresh": refresh}, format="json")
    assert first.status_code == 200
    pair = first.json()["data"]
    assert set(pair) == {"token", "refresh"} and pair["refresh"] != refresh
    assert api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {pair['token']}").status_code == 200
    assert_error(api.post("/api/auth/refresh", {"refresh": refresh}, format="json"), 401, 1001, "Token无效")
    assert api.post("/api/auth/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 200


def test_refresh_with_garbage_or_expired_token(api: APIClient, member) -> None:
    assert_error(api.post("/api/auth/refresh", {"refresh": "nope"}, format="json"), 401, 1001, "Token无效")
    assert_error(api.post("/api/auth/refresh", {}, format="json"), 400, 4002)
    old = RefreshToken.for_user(member)
    old.set_exp(from_time=timezone.now() - timedelta(days=30), lifetime=timedelta(days=1))
    assert_error(
        api.post("/api/auth/refresh", {"refresh": str(old)}, format="json"), 401, 1001, "登录已过期,请重新登录"
    )


def test_access_token_cannot_be_used_as_refresh(api: APIClient, member) -> None:
    access = str(AccessToken.for_user(member))
    assert_error(api.post("/api/auth/refresh", {"refresh": access}, format="json"), 401, 1001)


def test_english_messages_on_request(api: APIClient) -> None:
    response = api.get("/api/auth/me", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["error"]["message"] == "Not logged in"


def test_me_query_count(client_for, member, django_assert_max_num_queries) -> None:
    client = client_for(member)
    with django_assert_max_num_queries(1):
        assert client.get("/api/auth/me").status_code == 200
