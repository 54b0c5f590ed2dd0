from typing import Any

from django.core.management.base import BaseCommand

from quota.selectors import quota_mismatches


class Command(BaseCommand):
    help = "Check quota_remaining == sum(ledger.delta) for every user; exit 1 listing the users where it fails."

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = quota_mismatches()
        if not mismatches:
            self.stdout.write("ok: every balance matches its ledger")
            return
        for username, balance, ledger_total in mismatches:
            self.stderr.write(f"{username}: balance {balance} != ledger sum {ledger_total}")
        self.stderr.write(f"{len(mismatches)} user(s) out of balance")
        raise SystemExit(1)
