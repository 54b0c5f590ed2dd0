"""Loaded into the Celery worker that bench.polling starts (`celery -A config worker --include
bench.polling_probe`): one JSON line per task the worker runs (which process, when it started, how
long it held its slot, and how long the slot spent inside time.sleep), written to
BENCH_PROBE_DIR/steps-<pid>.jsonl, and a `ready` file there once the worker consumes.

Connected at import in the main process, so the prefork children inherit the receivers."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, SupportsIndex, TextIO

from celery.signals import task_postrun, task_prerun, worker_ready

PROBE_DIR = Path(os.environ["BENCH_PROBE_DIR"])

_sleep = time.sleep
_running: dict[str, Any] = {}
_out: dict[int, TextIO] = {}


def _timed_sleep(seconds: float | SupportsIndex) -> None:
    """time.sleep, counted against the task the calling thread runs (only a slot's own thread:
    helper threads such as the lease heartbeat wait without holding the slot)."""
    began = time.monotonic()
    try:
        _sleep(seconds)
    finally:
        step = _running.get("step")
        if step is not None and threading.current_thread() is step["thread"]:
            step["slept"] += time.monotonic() - began


time.sleep = _timed_sleep


def _file() -> TextIO:
    pid = os.getpid()
    if pid not in _out:
        _out[pid] = (PROBE_DIR / f"steps-{pid}.jsonl").open("a", buffering=1)
    return _out[pid]


@task_prerun.connect
def _began(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    _running["step"] = {
        "thread": threading.current_thread(),
        "name": getattr(task, "name", ""),
        "wall": time.time(),
        "began": time.monotonic(),
        "slept": 0.0,
    }


@task_postrun.connect
def _ended(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    step = _running.pop("step", None)
    if step is None:
        return
    line = {
        "pid": os.getpid(),
        "name": step["name"],
        "start": step["wall"],
        "seconds": time.monotonic() - step["began"],
        "slept": step["slept"],
    }
    _file().write(json.dumps(line) + "\n")


@worker_ready.connect
def _ready(**kwargs: Any) -> None:
    (PROBE_DIR / "ready").write_text(str(os.getpid()))
