"""Queuing the worker's steps. Messages name their Celery task (see `tasks/tasks.py`), so the
modules that queue work do not import the entry points that call back into them. A broker failure
is logged, not raised: the sweep re-queues work whose due time has passed, so an outage delays
tasks and loses none.

Steps go to one of two queues by the task's type: basic_clean's image work to "cpu", pose12's
RunningHub calls and downloads to "io" (settings.CELERY_TASK_QUEUES), so each pool is sized for its
work and a long cut-out never holds up a poll. The log context of the request or step that queues
a message (its request id) travels in the message's headers (core/observability.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from celery import current_app

logger = logging.getLogger(__name__)

CPU_QUEUE = "cpu"
IO_QUEUE = "io"

ADVANCE = "tasks.advance"
SWEEP = "tasks.sweep"
CANCEL_VENDOR_TASK = "tasks.cancel_vendor_task"
DISPATCH = "tasks.dispatch"


def advance_queue(task_type: str) -> str:
    return CPU_QUEUE if task_type == "basic_clean" else IO_QUEUE


def enqueue_advance(*, task_id: uuid.UUID, task_type: str, due: datetime | None, countdown: float = 0) -> None:
    """Queue the task's step due at `due` (None: whatever is due, as for a webhook) on its type's queue."""
    try:
        current_app.send_task(
            ADVANCE,
            args=(str(task_id), due.isoformat() if due else None),
            countdown=countdown,
            queue=advance_queue(task_type),
        )
    except Exception:
        logger.warning("could not enqueue task %s; the sweep will retry", task_id, exc_info=True)


def enqueue_vendor_cancel(vendor_task_id: str) -> None:
    try:
        current_app.send_task(CANCEL_VENDOR_TASK, args=(vendor_task_id,))
    except Exception:
        logger.warning("could not enqueue the RunningHub cancel of %s", vendor_task_id, exc_info=True)


def enqueue_dispatch() -> None:
    """A RunningHub slot came free: hand it to the next waiting task."""
    try:
        current_app.send_task(DISPATCH)
    except Exception:
        logger.warning("could not enqueue a dispatch; the sweep dispatches every minute", exc_info=True)
