"""Password rules: Django's four validators for everyone, at least 12 characters for staff, checked
by the admin's password forms and again when staff log in to the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import User
from accounts.tests.factories import logged_in, make_superuser, make_support, make_user

pytestmark = pytest.mark.django_db

ELEVEN = "kite-rowan7"  # 11 characters: long enough for a member, too short for staff
STRONG = "quiet-harbour-lantern-58"


def form_errors(response: Any) -> str:
    return " ".join(str(message) for messages in response.context["form"].errors.values() for message in messages)


def set_in_admin(target: User, password: str) -> Any:
    form = {"usable_password": "true", "password1": password, "password2": password}
    return logged_in(make_superuser()).post(f"/admin/accounts/user/{target.pk}/password/", form)


def test_admin_refuses_a_short_staff_password_but_a_member_may_have_it() -> None:
    staff, member = make_support(), make_user()
    refused = set_in_admin(staff, ELEVEN)
    assert refused.status_code == 200 and "员工账号的密码至少需要 12 个字符" in form_errors(refused)
    staff.refresh_from_db()
    assert not staff.check_password(ELEVEN)
    assert set_in_admin(member, ELEVEN).status_code == 302
    assert set_in_admin(staff, STRONG).status_code == 302


@pytest.mark.parametrize(
    "password",
    ["31415926535897", "password12345", "{username}-2026"],
    ids=["numeric", "common", "like the username"],
)
def test_admin_refuses_weak_staff_passwords(password: str) -> None:
    staff = make_support(username="harbourmaster")
    assert set_in_admin(staff, password.format(username=staff.username)).status_code == 200
    staff.refresh_from_db()
    assert staff.check_password("correct-horse-42")


def test_staff_changing_their_own_password_gets_the_staff_rule() -> None:
    staff = make_support()
    form = {"old_password": "correct-horse-42", "new_password1": ELEVEN, "new_password2": ELEVEN}
    response = logged_in(staff).post("/admin/password_change/", form)
    assert response.status_code == 200 and "员工账号的密码至少需要 12 个字符" in form_errors(response)


def test_superuser_gets_the_staff_rule_too() -> None:
    with pytest.raises(ValidationError):
        validate_password(ELEVEN, User(username="root", is_superuser=True))
    validate_password(ELEVEN, User(username="someone"))


def test_staff_whose_password_misses_the_rule_cannot_log_in_to_the_admin(settings: Any) -> None:
    """A member made staff keeps the password chosen under the member rule; the admin login,
    which sees the password, refuses it until a superuser sets one that passes."""
    member = make_user()
    member.set_password(ELEVEN)
    member.is_staff = True
    member.save()
    client = Client()
    response = client.post("/admin/login/", {"username": member.username, "password": ELEVEN, "next": "/admin/"})
    assert response.status_code == 200
    assert "不符合员工密码要求" in form_errors(response)
    assert client.get("/admin/").status_code == 302
