"""Staff users for the admin console tests (accounts, quota and tasks)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User
from accounts.tests.factories import make_user


def support_group() -> Group:
    """The group the data migration made; transactional tests flush it, so make it again then."""
    group = Group.objects.filter(name="support").first()
    if group is None:
        import_module("accounts.migrations.0003_support_group").create_support_group(apps, None)
        group = Group.objects.get(name="support")
    return group


def make_support(**fields: Any) -> User:
    user = make_user(is_staff=True, **fields)
    user.groups.add(support_group())
    return user


def make_superuser(**fields: Any) -> User:
    return make_user(is_staff=True, is_superuser=True, **fields)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
