from typing import Any, cast

import factory

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
