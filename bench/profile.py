"""Where a create's time goes: py-spy samples every gunicorn worker while the create load runs,
and the samples are summed by function (time inside it and everything it calls)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.load import Result

SECONDS = 12
RATE = 250
# Functions worth naming in the report, by the name py-spy gives their frame.
WATCHED = {
    "authenticate (JWT)": "authenticate (rest_framework_simplejwt/authentication.py",
    "throttles": "check_throttles (rest_framework/views.py",
    "parse body": "_load_data_and_files (rest_framework/request.py",
    "task_create": "task_create (tasks/creation.py",
    "input URL check": "_check_input_url (tasks/creation.py",
    "quota_deduct": "quota_deduct (quota/services.py",
    "TaskOut serialize": "data (rest_framework/serializers.py",
    "render JSON": "render (core/renderers.py",
    "middleware + Django": "__call__ (django/core/handlers/wsgi.py",
    "database execute": "execute (psycopg/cursor.py",
    "commit": "commit (django/db/backends/base/base.py",
    "enqueue (Celery)": "enqueue_advance (tasks/queue.py",
    "logging": "_proxy_to_logger (structlog",
}


@dataclass(frozen=True)
class Profile:
    samples: int
    watched: dict[str, int]
    top_self: list[tuple[str, int]]
    load: Result | None
    note: str = ""


def _parse(raw: str) -> tuple[int, Counter[str], Counter[str]]:
    total, inclusive, leaves = 0, Counter[str](), Counter[str]()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # Only request threads: the gthread main loop waiting for connections is not request work.
        if "handle_request (gunicorn/workers/gthread.py" not in stack:
            continue
        total += count
        frames = stack.split(";")
        for name, needle in WATCHED.items():
            if any(needle in frame for frame in frames):
                inclusive[name] += count
        leaves[frames[-1].split(" (")[0] + " (" + frames[-1].split(" (", 1)[-1].split(":")[0]] += count
    return total, inclusive, leaves


def record(*, pids: list[int], folder: Path, load: Callable[[], Result]) -> Profile:
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy")
    outputs = [folder / f"py-spy-{pid}.txt" for pid in pids]
    spies = [
        subprocess.Popen(
            [
                *(spy, "record", "--pid", str(pid), "--rate", str(RATE), "--duration", str(SECONDS)),
                *("--nonblocking", "--format", "raw", "--output", str(out)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for pid, out in zip(pids, outputs, strict=True)
    ]
    result = load()
    errors = []
    for process in spies:
        _, stderr = process.communicate(timeout=SECONDS + 30)
        if process.returncode:
            errors.append(stderr.decode(errors="replace")[-300:])
    total, inclusive, leaves = 0, Counter[str](), Counter[str]()
    for out in outputs:
        if out.exists():
            t, i, leaf = _parse(out.read_text())
            total, inclusive, leaves = total + t, inclusive + i, leaves + leaf
    return Profile(
        samples=total,
        watched=dict(inclusive.most_common()),
        top_self=leaves.most_common(12),
        load=result,
        note="; ".join(errors),
    )
