from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from tasks.sweep import tasks_sweep


class Command(BaseCommand):
    help = "Run one sweep now: fail (and refund) timed-out tasks, re-enqueue lost work, expire lapsed quota."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count the tasks that would fail")

    def handle(self, *args: Any, **options: Any) -> None:
        report = tasks_sweep(dry_run=options["dry_run"])
        if options["dry_run"]:
            self.stdout.write(
                f"would fail {report.failed} task(s): {report.failed_pending} pending, "
                f"{report.failed_processing} processing past the timeout"
            )
            return
        self.stdout.write(
            f"failed {report.failed} task(s) ({report.failed_pending} pending, {report.failed_processing} processing); "
            f"re-enqueued {report.requeued}; expired quota of {report.quota_expired} user(s)"
        )
