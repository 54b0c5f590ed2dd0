from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from quota.management.commands._lookup import user_by_username
from quota.services import quota_grant


class Command(BaseCommand):
    help = "Make USERNAME a member, add N quota and extend the membership by D days."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--quota", type=int, required=True)
        parser.add_argument("--days", type=int, required=True)
        parser.add_argument("--reason", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        try:
            row = quota_grant(user_id=user.pk, amount=options["quota"], days=options["days"], reason=options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.message("en")) from exc
        user.refresh_from_db()
        self.stdout.write(
            f"{user.username}: +{row.delta} quota, balance {row.balance_after}, "
            f"member until {user.quota_expire_at:%Y-%m-%d %H:%M %Z}"
        )
