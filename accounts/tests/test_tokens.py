"""The token matrix: every token that must not work gets 1001 on /api/auth/me and, where it is a
refresh token, on /api/auth/refresh; the refresh chain's limit; racing refreshes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import User
from accounts.tests.factories import PASSWORD, logged_in, make_superuser, make_user
from core.tests.helpers import error_of, race

pytestmark = pytest.mark.django_db

REFRESH_LIFETIME: timedelta = api_settings.REFRESH_TOKEN_LIFETIME


def login(user: User) -> dict[str, str]:
    response = APIClient().post("/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json()["data"])


def me(token: str) -> Any:
    return APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def refresh(token: str) -> Any:
    return APIClient().post("/api/auth/refresh", {"refresh": token}, format="json")


def logout(token: str) -> Any:
    return APIClient().post("/api/auth/logout", {"refresh": token}, format="json")


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def signed(payload: dict[str, Any], key: str = settings.SECRET_KEY) -> str:
    return jwt.encode(payload, key, algorithm="HS256")


def aged(token: str, by: timedelta) -> str:
    """The same token as if it (and the login that started its chain) had been issued `by` earlier."""
    payload = claims(token)
    for claim in ("iat", "exp", "auth_time"):
        if claim in payload:
            payload[claim] -= int(by.total_seconds())
    return signed(payload)


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{signature[::-1]}"


def unsigned(token: str) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


def expired(token: str) -> str:
    payload = claims(token)
    payload["exp"] = int(time.time()) - 1
    return signed(payload)


def rotated(pair: dict[str, str]) -> str:
    assert refresh(pair["refresh"]).status_code == 200
    return pair["refresh"]


def logged_out(pair: dict[str, str]) -> str:
    assert logout(pair["refresh"]).status_code == 200
    return pair["refresh"]


def without_claim(payload: dict[str, Any], claim: str) -> dict[str, Any]:
    return {name: value for name, value in payload.items() if name != claim}


def delete_user(user: User) -> None:
    user.delete()


def deactivate(user: User) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def change_password(user: User) -> None:
    user.set_password("a-brand-new-secret-77")
    user.save(update_fields=["password"])


# Each case: what becomes of the user, the access token to show /me and the refresh token to show
# /refresh (None where the case does not apply to that endpoint).
Case = tuple[
    Callable[[User], None] | None,
    Callable[[dict[str, str]], str | None],
    Callable[[dict[str, str]], str | None],
]
MATRIX: dict[str, Case] = {
    "tampered signature": (None, lambda p: tampered(p["token"]), lambda p: tampered(p["refresh"])),
    "alg none": (None, lambda p: unsigned(p["token"]), lambda p: unsigned(p["refresh"])),
    "another key": (
        None,
        lambda p: signed(claims(p["token"]), "another-key-that-is-long-enough-for-hs256"),
        lambda p: signed(claims(p["refresh"]), "another-key-that-is-long-enough-for-hs256"),
    ),
    "expired": (None, lambda p: expired(p["token"]), lambda p: expired(p["refresh"])),
    "refresh used as access": (None, lambda p: p["refresh"], lambda p: None),
    "access used as refresh": (None, lambda p: None, lambda p: p["token"]),
    "rotated refresh reused": (None, lambda p: None, rotated),
    "logged-out refresh": (None, lambda p: None, logged_out),
    "deactivated user": (deactivate, lambda p: p["token"], lambda p: p["refresh"]),
    "password changed": (change_password, lambda p: p["token"], lambda p: p["refresh"]),
    "user deleted": (delete_user, lambda p: p["token"], lambda p: None),
    "no user claim": (None, lambda p: signed(without_claim(claims(p["token"]), "user_id")), lambda p: None),
    "user claim not a number": (None, lambda p: signed({**claims(p["token"]), "user_id": "x"}), lambda p: None),
    "user claim out of range": (None, lambda p: signed({**claims(p["token"]), "user_id": 2**70}), lambda p: None),
}


@pytest.mark.parametrize("case", MATRIX, ids=list(MATRIX))
def test_token_matrix_is_1001(case: str) -> None:
    user = make_user()
    pair = login(user)
    change_user, access_of, refresh_of = MATRIX[case]
    if change_user is not None:
        change_user(user)
    access, refresh_token = access_of(pair), refresh_of(pair)
    assert access is not None or refresh_token is not None
    if access is not None:
        assert error_of(me(access)) == (401, 1001)
    if refresh_token is not None:
        assert error_of(refresh(refresh_token)) == (401, 1001)


def test_untouched_tokens_work() -> None:
    """The matrix's control: the same login's tokens, left alone, are accepted."""
    pair = login(make_user())
    assert me(pair["token"]).status_code == 200
    assert refresh(pair["refresh"]).status_code == 200


def test_password_change_refuses_every_earlier_token_but_not_a_new_login() -> None:
    user = make_user()
    first = login(user)
    rotated_pair = refresh(first["refresh"]).json()["data"]
    user.set_password("a-brand-new-secret-77")
    user.save()
    for access in (first["token"], rotated_pair["token"]):
        assert error_of(me(access)) == (401, 1001)
    assert error_of(refresh(rotated_pair["refresh"])) == (401, 1001)
    assert error_of(logout(rotated_pair["refresh"])) == (401, 1001)
    fresh = APIClient().post(
        "/api/auth/login", {"username": user.username, "password": "a-brand-new-secret-77"}, format="json"
    )
    assert me(fresh.json()["data"]["token"]).status_code == 200


def test_password_changed_in_the_admin_logs_the_member_out() -> None:
    member = make_user()
    pair = login(member)
    form = {"usable_password": "true", "password1": "support-chose-this-99", "password2": "support-chose-this-99"}
    response = logged_in(make_superuser()).post(f"/admin/accounts/user/{member.pk}/password/", form)
    assert response.status_code == 302, response.content
    assert error_of(me(pair["token"])) == (401, 1001)
    assert error_of(refresh(pair["refresh"])) == (401, 1001)


def test_logout_revokes_that_refresh_token() -> None:
    pair = login(make_user())
    response = logout(pair["refresh"])
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"loggedOut": True}}
    assert refresh(pair["refresh"]).json()["error"] == {"code": 1001, "message": "Token无效"}
    assert logout(pair["refresh"]).json()["error"] == {"code": 1001, "message": "Token无效"}


def test_logout_needs_only_the_refresh_token() -> None:
    """The refresh token proves possession; an expired or missing access token does not matter."""
    pair = login(make_user())
    response = APIClient().post(
        "/api/auth/logout",
        {"refresh": pair["refresh"]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {expired(pair['token'])}",
    )
    assert response.status_code == 200


def test_logout_leaves_other_sessions_alone() -> None:
    user = make_user()
    phone, laptop = login(user), login(user)
    assert logout(phone["refresh"]).status_code == 200
    assert refresh(laptop["refresh"]).status_code == 200
    assert me(laptop["token"]).status_code == 200


def test_logout_refuses_what_is_not_a_live_refresh_token() -> None:
    pair = login(make_user())
    assert error_of(logout("garbage")) == (401, 1001)
    assert error_of(logout(pair["token"])) == (401, 1001)
    assert logout(expired(pair["refresh"])).json()["error"] == {"code": 1001, "message": "登录已过期,请重新登录"}
    assert error_of(APIClient().post("/api/auth/logout", {}, format="json")) == (400, 4002)


def test_logout_is_documented() -> None:
    paths = APIClient().get("/api/schema", {"format": "json"}).json()["paths"]
    operation = paths["/api/auth/logout"]["post"]
    assert operation["operationId"] == "auth_logout"
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/LogoutOutEnvelope"}
    assert set(operation["responses"]) == {"200", "400", "401", "429", "500"}
    assert operation.get("security") == paths["/api/auth/login"]["post"].get("security")


def test_api_login_records_last_login() -> None:
    """Support sees when a member last logged in to the apps (the admin's 上次登录)."""
    user = make_user()
    wrong = APIClient().post("/api/auth/login", {"username": user.username, "password": "nope"}, format="json")
    assert wrong.status_code == 400
    user.refresh_from_db()
    assert user.last_login is None
    before = timezone.now()
    login(user)
    user.refresh_from_db()
    assert user.last_login is not None and user.last_login >= before


def test_rotation_keeps_the_login_time_and_never_extends_the_chain() -> None:
    pair = login(make_user())
    six_days_on = aged(pair["refresh"], timedelta(days=6))
    chain_end = claims(six_days_on)["auth_time"] + int(REFRESH_LIFETIME.total_seconds())
    response = refresh(six_days_on)
    assert response.status_code == 200, response.content
    new = response.json()["data"]
    assert claims(new["refresh"])["auth_time"] == claims(six_days_on)["auth_time"]
    assert claims(new["refresh"])["exp"] == chain_end
    assert claims(new["token"])["exp"] <= chain_end


def test_access_token_issued_near_the_chain_end_expires_with_it() -> None:
    pair = login(make_user())
    nearly_done = aged(pair["refresh"], REFRESH_LIFETIME - timedelta(minutes=5))
    chain_end = claims(nearly_done)["auth_time"] + int(REFRESH_LIFETIME.total_seconds())
    new = refresh(nearly_done).json()["data"]
    assert claims(new["token"])["exp"] == chain_end
    assert claims(new["refresh"])["exp"] == chain_end


def test_chain_past_its_login_lifetime_is_refused() -> None:
    pair = login(make_user())
    past = aged(pair["refresh"], REFRESH_LIFETIME + timedelta(seconds=1))
    assert refresh(past).json()["error"] == {"code": 1001, "message": "登录已过期,请重新登录"}


def test_refresh_token_signed_to_outlive_its_login_is_refused() -> None:
    """A token whose own expiry is still ahead but whose login is older than JWT_REFRESH_DAYS (for
    example one issued while the setting was longer) does not extend the chain."""
    pair = login(make_user())
    payload = claims(pair["refresh"])
    payload["auth_time"] -= int((REFRESH_LIFETIME + timedelta(hours=1)).total_seconds())
    assert error_of(refresh(signed(payload))) == (401, 1001)


def test_refresh_token_made_outside_a_login_starts_its_chain_when_issued() -> None:
    """A refresh token without a login time (RefreshToken.for_user in a shell) is its own login."""
    payload = claims(login(make_user())["refresh"])
    del payload["auth_time"]
    six_days_old = aged(signed(payload), timedelta(days=6))
    chain_end = claims(six_days_old)["iat"] + int(REFRESH_LIFETIME.total_seconds())
    new = refresh(six_days_old).json()["data"]
    assert claims(new["refresh"])["auth_time"] == claims(six_days_old)["iat"]
    assert claims(new["refresh"])["exp"] == chain_end


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("other", [refresh, logout], ids=["refresh", "logout"])
def test_concurrent_uses_of_one_refresh_token_give_exactly_one_new_pair(other: Callable[[str], Any]) -> None:
    user = make_user()
    for _ in range(3):
        token = login(user)["refresh"]
        before = OutstandingToken.objects.filter(user=user).count()
        first, second = race(lambda: refresh(token), lambda: other(token))
        statuses = sorted([first.status_code, second.status_code])  # type: ignore[attr-defined]
        assert statuses == [200, 401], (first, second)
        loser = first if first.status_code == 401 else second  # type: ignore[attr-defined]
        assert loser.json()["error"]["code"] == 1001  # type: ignore[attr-defined]
        issued = OutstandingToken.objects.filter(user=user).count() - before
        refresh_won = first.status_code == 200 or other is refresh  # type: ignore[attr-defined]
        assert issued == (1 if refresh_won else 0)
        assert error_of(refresh(token)) == (401, 1001)
