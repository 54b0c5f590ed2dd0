"""Passwords are hashed with Argon2id at OWASP's minimum or above (accounts/hashers.py); a
PBKDF2 hash made before the switch still logs in and is re-hashed with Argon2id on the way."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import extract_parameters
from argon2.low_level import Type
from django.contrib.auth.hashers import check_password, make_password
from rest_framework.test import APIClient

from accounts.hashers import TunedArgon2PasswordHasher
from accounts.models import User
from accounts.tests.factories import PASSWORD, make_user
from config import settings as production_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_hashers(settings: Any) -> None:
    # The suite runs on a fast MD5 hasher; these tests need the project's real list.
    settings.PASSWORD_HASHERS = production_settings.PASSWORD_HASHERS


def test_argon2id_first_and_pbkdf2_kept_after_it() -> None:
    hashers = production_settings.PASSWORD_HASHERS
    assert hashers[0] == "accounts.hashers.TunedArgon2PasswordHasher"
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in hashers[1:]


def test_parameters_at_least_owasp_minimum(production_hashers: None) -> None:
    params = extract_parameters(make_password(PASSWORD).split("argon2", 1)[1])
    assert params.type == Type.ID
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1
    assert (params.memory_cost, params.time_cost, params.parallelism) == (
        TunedArgon2PasswordHasher.memory_cost,
        TunedArgon2PasswordHasher.time_cost,
        TunedArgon2PasswordHasher.parallelism,
    )


def test_an_old_pbkdf2_hash_is_upgraded_on_login(production_hashers: None) -> None:
    user = make_user()
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    response = APIClient().post("/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$"), user.password
    assert check_password(PASSWORD, user.password)
    again = APIClient().post("/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json")
    assert again.status_code == 200


def test_a_wrong_password_does_not_rehash(production_hashers: None) -> None:
    user = make_user()
    old = make_password(PASSWORD, hasher="pbkdf2_sha256")
    User.objects.filter(pk=user.pk).update(password=old)
    response = APIClient().post("/api/auth/login", {"username": user.username, "password": "wrong"}, format="json")
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.password == old
