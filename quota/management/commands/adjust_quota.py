from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from quota.management.commands._lookup import user_by_username
from quota.services import quota_adjust


class Command(BaseCommand):
    help = "Correct USERNAME's quota by DELTA (may be negative) through the ledger; a reason is required."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("delta", type=int)
        parser.add_argument("--reason", required=True)
        parser.add_argument("--actor", help="username of the staff member making the correction")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        actor = user_by_username(options["actor"]) if options["actor"] else None
        try:
            row = quota_adjust(user_id=user.pk, delta=options["delta"], reason=options["reason"], actor=actor)
        except ApplicationError as exc:
            raise CommandError(exc.message("en")) from exc
        self.stdout.write(f"{user.username}: {row.delta:+d} quota, balance {row.balance_after}")
