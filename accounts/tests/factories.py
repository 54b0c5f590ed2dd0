"""Users for tests: members (quota granted through the quota service, so the ledger matches) and
staff (support agents, superusers) with a logged-in admin client."""

from __future__ import annotations

from importlib import import_module
from typing import Any, cast

import factory
from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User
from quota.services import quota_adjust, quota_grant

PASSWORD = "correct-horse-42"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


class MemberFactory(UserFactory):
    """A member with quota granted through the quota service, so the ledger matches."""

    @factory.post_generation
    def quota(obj: User, create: bool, extracted: int | None, **kwargs: Any) -> None:
        if not create:
            return
        amount = 10 if extracted is None else extracted
        quota_grant(user_id=obj.pk, amount=max(amount, 1), days=30, reason="test")
        if amount == 0:
            quota_adjust(user_id=obj.pk, delta=-1, reason="test: member with no quota left")
        obj.refresh_from_db()


def make_user(**fields: Any) -> User:
    return cast(User, UserFactory(**fields))


def make_member(**fields: Any) -> User:
    return cast(User, MemberFactory(**fields))


def balance(user: User) -> int:
    """The user's quota as stored now."""
    user.refresh_from_db()
    return user.quota_remaining


# --- staff --------------------------------------------------------------------------------------


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
    """A browser-style client with `user` logged in to the admin."""
    client = Client()
    client.force_login(user)
    return client
