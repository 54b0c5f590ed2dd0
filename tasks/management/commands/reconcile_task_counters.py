from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tasks.counters import task_counter_mismatches, task_counters_rebuild


class Command(BaseCommand):
    help = (
        "Check every member's task counters (the list's total) against the tasks they count; "
        "exit 1 listing the wrong ones, or set them right with --fix."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true", help="recount and store the right numbers")

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = task_counter_mismatches()
        if not mismatches:
            self.stdout.write("ok: every task counter matches its tasks")
            return
        for user_id, status, task_type, counted, actual in mismatches:
            self.stderr.write(f"user {user_id} {status} {task_type}: counter {counted} != {actual} tasks")
        if options["fix"]:
            task_counters_rebuild()
            self.stdout.write(f"fixed {len(mismatches)} counter(s)")
            return
        self.stderr.write(f"{len(mismatches)} counter(s) wrong; run again with --fix to set them right")
        raise SystemExit(1)
