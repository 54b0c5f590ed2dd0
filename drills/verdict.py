"""The one verdict every drill ends with: every task terminal within its timeouts, exactly one
terminal transition each, `reconcile_quota` clean, one refund per failed task and none for a
success, every success with all its stored results, no 5xx outside the injected outage (and those
in the envelope), no traceback in the logs that is not the injected fault."""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

from django.core.management import call_command
from django.db import DatabaseError, close_old_connections
from django.db.models import Count

from drills.load import Recorder
from drills.system import System
from media.storage import get_storage
from quota.models import LedgerKind, QuotaLedger
from tasks.models import Task, TaskEvent, TaskStatus, TaskType

TERMINAL = (TaskStatus.SUCCESS, TaskStatus.FAILED)
EXPECTED_RESULTS = {TaskType.BASIC_CLEAN: 3, TaskType.MODEL_POSE12: 12}
# An answer this long after an outage ended still counts as the outage's (a request in flight).
OUTAGE_GRACE = 5.0


@dataclass
class Verdict:
    drill: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def wait_terminal(timeout: float) -> float | None:
    """Seconds until no task is active, or None if some still are after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        close_old_connections()
        try:
            if not Task.objects.exclude(status__in=TERMINAL).exists():
                return time.monotonic() - start
        except DatabaseError:
            # The drill's own database may be coming back from its restart.
            time.sleep(1)
            continue
        time.sleep(1)
    return None


def _command_clean(name: str) -> tuple[bool, str]:
    out = io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(out):
            call_command(name, stdout=out, stderr=out)
    except SystemExit as exit_:
        return exit_.code in (0, None), out.getvalue()
    return True, out.getvalue()


def _tracebacks(system: System, allowed: list[str]) -> tuple[list[str], int]:
    """Traceback blocks in every log that match none of the `allowed` patterns; and how many were
    allowed (the injected fault's)."""
    unexpected, expected = [], 0
    for log in sorted(system.logs.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        for n, line in enumerate(lines):
            if "Traceback (most recent call last)" not in line:
                continue
            # A JSON line holds the whole exception; a plain-text one runs until the next unindented line.
            block = line
            if not line.lstrip().startswith("{"):
                rest = []
                for following in lines[n + 1 : n + 80]:
                    rest.append(following)
                    if following and not following.startswith((" ", "\t", "Traceback", "During", "The above")):
                        break
                block = "\n".join([line, *rest])
            if any(re.search(pattern, block) for pattern in allowed):
                expected += 1
            else:
                tail = block[-600:].replace("\\n", "\n")
                unexpected.append(f"{log.name}: {tail}")
    return unexpected, expected


def judge(
    *,
    drill: str,
    system: System,
    recorder: Recorder,
    outages: list[tuple[float, float]],
    allowed_tracebacks: list[str],
    terminal_timeout: float,
) -> Verdict:
    verdict = Verdict(drill)
    waited = wait_terminal(terminal_timeout)
    close_old_connections()
    verdict.figures["seconds_to_all_terminal_after_load"] = None if waited is None else round(waited, 1)
    active = Task.objects.exclude(status__in=TERMINAL)
    if waited is None:
        verdict.problems.append(
            f"{active.count()} tasks still active after {terminal_timeout:.0f}s: "
            f"{list(active.values_list('id', 'type', 'status', 'stage')[:5])}"
        )
    tasks = Task.objects.all()
    verdict.figures["tasks"] = tasks.count()
    verdict.figures["successes"] = tasks.filter(status=TaskStatus.SUCCESS).count()
    failed = tasks.filter(status=TaskStatus.FAILED)
    verdict.figures["failures"] = failed.count()
    verdict.figures["failure_codes"] = dict(Counter(failed.values_list("failure_code", flat=True)))

    # Exactly one terminal transition per task.
    terminal_events = (
        TaskEvent.objects.filter(to_status__in=TERMINAL)
        .exclude(from_status__in=TERMINAL)
        .values("task_id")
        .annotate(n=Count("id"))
    )
    twice = [row["task_id"] for row in terminal_events if row["n"] > 1]
    if twice:
        verdict.problems.append(f"{len(twice)} tasks finished more than once: {twice[:5]}")
    ended = {row["task_id"] for row in terminal_events}
    unrecorded = tasks.filter(status__in=TERMINAL).exclude(id__in=ended).count()
    if unrecorded:
        verdict.problems.append(f"{unrecorded} terminal tasks without their terminal status event")

    # Refunds: one per failed task, of its cost; none for a success.
    refunds = QuotaLedger.objects.filter(kind=LedgerKind.REFUND)
    verdict.figures["refunds"] = refunds.count()
    per_task = Counter(refunds.values_list("task_id", flat=True))
    wrong = [t for t in failed.values_list("id", flat=True) if per_task.get(t) != 1]
    if wrong:
        verdict.problems.append(f"{len(wrong)} failed tasks without exactly one refund: {wrong[:5]}")
    refunded_successes = tasks.filter(status=TaskStatus.SUCCESS, id__in=list(per_task)).count()
    if refunded_successes:
        verdict.problems.append(f"{refunded_successes} successful tasks were refunded")
    costs = dict(tasks.values_list("id", "cost"))
    wrong_amount = [
        task_id for task_id, delta in refunds.values_list("task_id", "delta") if task_id and delta != costs.get(task_id)
    ]
    if wrong_amount:
        verdict.problems.append(f"refunds of the wrong amount: {wrong_amount[:5]}")

    for command in ("reconcile_quota", "reconcile_task_counters"):
        clean, output = _command_clean(command)
        verdict.figures[command] = "clean" if clean else "FAILED"
        if not clean:
            verdict.problems.append(f"{command}: {output.strip()[:500]}")

    # Every success has all its results, stored.
    storage = get_storage()
    result_keys: set[str] = set()
    incomplete = []
    for task in tasks.filter(status=TaskStatus.SUCCESS):
        keys = [storage.key_for_url(url) for url in task.result_urls]
        result_keys.update(k for k in keys if k)
        if len(keys) != EXPECTED_RESULTS[TaskType(task.type)] or not all(k and storage.exists(key=k) for k in keys):
            incomplete.append(task.pk)
    if incomplete:
        verdict.problems.append(
            f"{len(incomplete)} successful tasks without all their stored results: {incomplete[:5]}"
        )
    if system.storage == "cos":
        stored = [k for k in system.cos("keys", {}).get("keys", []) if isinstance(k, str) and k.startswith("results/")]
        orphans = sorted(set(stored) - result_keys)
        verdict.figures["result_objects_in_bucket"] = len(stored)
        verdict.figures["orphaned_objects"] = len(orphans)
        if orphans:
            verdict.problems.append(f"{len(orphans)} result objects in the bucket that no task names: {orphans[:3]}")

    # Answers: 5xx only inside an outage, and then in the envelope; no unanswered request outside one.
    def in_outage(at: float) -> bool:
        return any(start <= at <= end + OUTAGE_GRACE for start, end in outages)

    answers = recorder.answers
    verdict.figures["requests"] = len(answers)
    verdict.figures["answers"] = dict(Counter(str(a.status) for a in answers))
    outside = [a for a in answers if (a.status >= 500 or a.status == 0) and not in_outage(a.at)]
    if outside:
        verdict.problems.append(f"{len(outside)} 5xx or unanswered requests outside the outage: {outside[:3]}")
    bare = [a for a in answers if a.status >= 500 and not a.envelope]
    if bare:
        verdict.problems.append(f"{len(bare)} 5xx answers outside the envelope: {bare[:3]}")
    created = {a.task_id for a in answers if a.task_id}
    missing = created - {str(pk) for pk in tasks.values_list("id", flat=True)}
    if missing:
        verdict.problems.append(f"{len(missing)} tasks answered 201 but not in the database")
    charged_unanswered = tasks.count() - len(created)
    verdict.figures["tasks_created_without_a_201"] = charged_unanswered

    unexpected, expected = _tracebacks(system, allowed_tracebacks)
    verdict.figures["tracebacks_of_the_injected_fault"] = expected
    for block in unexpected[:5]:
        verdict.problems.append(f"unexpected traceback in {block}")
    if len(unexpected) > 5:
        verdict.problems.append(f"... and {len(unexpected) - 5} more unexpected tracebacks")
    return verdict
