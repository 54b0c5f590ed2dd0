from django.core.management.base import CommandError

from accounts.models import User


def user_by_username(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return user
