"""Polling at scale: POLL_TASKS model_pose12 tasks in flight at once against the RunningHub simulator
(RUN_TIME seconds each), followed by ONE Celery worker process of WORKER_CONCURRENCY prefork slots.

Measured: every task's outcome; RunningHub API calls per task, counted in the simulator (uploads,
runs, outputs/status polls, cancels; the result downloads from its CDN apart) against the budget
RUN_TIME / RUNNINGHUB_POLL_INTERVAL + 4; how long each worker step held its slot and how much of
that was spent in time.sleep (bench/polling_probe.py, loaded into the worker); the worker's memory
(VmHWM of the main process and of each pool child).

    .venv/bin/python -m bench.polling          # alone, on its own database (bench/environment.py)
    .venv/bin/python -m bench.polling --web    # and the gunicorn workers' memory under the create load

Tasks are created as members create them: a member with quota, an upload through the media
service, `task_create`. The simulator runs in this process, on loopback, without webhooks, so the
worker learns every outcome by polling."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import memory
from bench.environment import ROOT, bench_django
from devtools.runninghub_sim import SimSettings, SimulatorServer, merge_settings, parse_multipart, wire

POLL_TASKS = int(os.environ.get("BENCH_POLL_TASKS", "500"))
RUN_TIME = 30.0
MEMBERS = 100  # five tasks each, well under MEMBER_MAX_ACTIVE_TASKS
WORKER_CONCURRENCY = 4
# Outside allowance for the run: submission, every task's RUN_TIME, collection.
DEADLINE_SECONDS = 420
API_PATHS = ("/task/openapi/upload", "/task/openapi/ai-app/run", "/task/openapi/outputs", "/task/openapi/status")


def worker_command(root: Path) -> list[str]:
    """Procfile's worker at WORKER_CONCURRENCY slots, with the bench's probe loaded."""
    return [
        str(root / ".venv" / "bin" / "celery"),
        *("-A", "config", "worker", "-Q", "cpu,io", "-P", "prefork", "-c", str(WORKER_CONCURRENCY)),
        *("-n", "poll@bench", "--without-mingle", "--without-gossip", "-l", "WARNING"),
        *("--include", "bench.polling_probe"),
    ]


class CallCounter:
    """Wraps the simulator's API handler and charges every call to the product task it serves:
    an upload by its file name (`<task id>.<ext>`), a run by the uploaded image it names, a poll or a
    cancel by RunningHub's task id, which the run's answer gave."""

    def __init__(self, server: SimulatorServer) -> None:
        self.by_task: Counter[str] = Counter()
        self.by_path: Counter[str] = Counter()
        self.unattributed: Counter[str] = Counter()
        self._file_owner: dict[str, str] = {}
        self._vendor_owner: dict[str, str] = {}
        self._runs: list[float] = []
        self._last_poll: dict[str, float] = {}
        self.poll_gaps: list[float] = []
        self._lock = threading.Lock()
        handle = server.simulator.handle_api

        def counted(path: str, body: bytes, content_type: str) -> wire.Answer:
            answer = handle(path, body, content_type)
            self._count(path, body, content_type, answer)
            return answer

        server.simulator.handle_api = counted  # type: ignore[method-assign]

    def _count(self, path: str, body: bytes, content_type: str, answer: wire.Answer) -> None:
        try:
            data = json.loads(answer.body).get("data")
        except (ValueError, AttributeError):
            data = None
        with self._lock:
            self.by_path[path] += 1
            owner = None
            if path == wire.UPLOAD_PATH:
                part = parse_multipart(body, content_type).get("file")
                owner = (part.filename or "").rsplit(".", 1)[0] if part else None
                if owner and isinstance(data, dict):
                    self._file_owner[str(data.get("fileName"))] = owner
            else:
                payload = json.loads(body or b"{}")
                if "nodeInfoList" in payload:
                    self._runs.append(time.monotonic())
                    images = [n.get("fieldValue") for n in payload["nodeInfoList"] if n.get("fieldName") == "image"]
                    owner = self._file_owner.get(str(images[0])) if images else None
                    if owner and isinstance(data, dict) and data.get("taskId"):
                        self._vendor_owner[str(data["taskId"])] = owner
                else:
                    vendor_id = str(payload.get("taskId"))
                    owner = self._vendor_owner.get(vendor_id)
                    now = time.monotonic()
                    if vendor_id in self._last_poll:
                        self.poll_gaps.append(now - self._last_poll[vendor_id])
                    self._last_poll[vendor_id] = now
            if owner:
                self.by_task[owner] += 1
            else:
                self.unattributed[path] += 1

    def submit_span(self) -> float:
        return max(self._runs) - min(self._runs) if self._runs else 0.0


@dataclass(frozen=True)
class StepStats:
    steps: int
    busy_seconds: float
    window_seconds: float
    slots: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    sleeping_steps: int
    slept_seconds: float

    @property
    def busy_fraction(self) -> float:
        return self.busy_seconds / (self.slots * self.window_seconds) if self.window_seconds else 0.0


@dataclass(frozen=True)
class PollingRun:
    tasks: int
    by_status: dict[str, int]
    run_time: float
    poll_interval: int
    max_concurrency: int
    create_seconds: float
    wall_seconds: float  # the worker ready to the last task's completion
    submit_seconds: float  # the first run to the last, at the simulator
    poll_gaps: list[float]  # seconds between a task's successive polls
    calls_per_task: list[int]
    calls_by_path: dict[str, int]
    unattributed: dict[str, int]
    cdn_downloads: int
    peak_in_flight: int
    queue_full_answers: int
    steps: StepStats
    worker_memory: list[memory.ProcessMemory]
    command: list[str] = field(default_factory=list)

    @property
    def budget(self) -> float:
        return self.run_time / self.poll_interval + 4

    @property
    def succeeded(self) -> int:
        return self.by_status.get("success", 0)

    @property
    def met(self) -> dict[str, bool]:
        return {
            "all succeeded": self.succeeded == self.tasks,
            "calls per task within budget": bool(self.calls_per_task) and max(self.calls_per_task) <= self.budget,
            "all in flight at once": self.peak_in_flight >= self.tasks,
            "no slot slept": self.steps.sleeping_steps == 0,
        }


def _read_steps(folder: Path) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for path in folder.glob("steps-*.jsonl"):
        steps.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return steps


def _step_stats(steps: list[dict[str, Any]]) -> StepStats:
    if not steps:
        return StepStats(0, 0.0, 0.0, WORKER_CONCURRENCY, 0.0, 0.0, 0.0, 0, 0.0)
    seconds = sorted(s["seconds"] for s in steps)
    window = max(s["start"] + s["seconds"] for s in steps) - min(s["start"] for s in steps)
    return StepStats(
        steps=len(steps),
        busy_seconds=sum(seconds),
        window_seconds=window,
        slots=WORKER_CONCURRENCY,
        p50_ms=statistics.median(seconds) * 1000,
        p99_ms=seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000,
        max_ms=seconds[-1] * 1000,
        sleeping_steps=sum(1 for s in steps if s["slept"] > 0),
        slept_seconds=sum(s["slept"] for s in steps),
    )


class _Worker:
    def __init__(self, *, root: Path, environment: dict[str, str], probe_dir: Path, log: Path) -> None:
        self.command = worker_command(root)
        self._log = log.open("wb")
        self.log = log
        self.probe_dir = probe_dir
        self.process = subprocess.Popen(
            self.command,
            cwd=root,
            env={**os.environ, **environment, "BENCH_PROBE_DIR": str(probe_dir)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (self.probe_dir / "ready").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def pids(self) -> dict[int, str]:
        return {self.process.pid: "main", **{pid: "pool child" for pid in memory.children(self.process.pid)}}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: running steps finish
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def run_polling(*, root: Path, environment: dict[str, str], folder: Path) -> PollingRun:
    """Django must be set up on a migrated bench database; `environment` is the bench's."""
    # The product's models and services: importable only once Django is set up, which
    # `python -m bench.polling` does first.
    from bench import polling_tasks as product

    server = SimulatorServer(
        ("127.0.0.1", 0),
        merge_settings(SimSettings(), {"run_time": RUN_TIME, "concurrency": POLL_TASKS, "webhook": False}),
    )
    counter = CallCounter(server)
    serving = threading.Thread(target=server.serve_forever, name="runninghub-sim", daemon=True)
    serving.start()
    probe_dir = folder / "polling-probe"
    probe_dir.mkdir(exist_ok=True)
    poll_interval = product.poll_interval()
    worker_environment = {
        **environment,
        "RUNNINGHUB_BASE_URL": server.base_url,
        "RUNNINGHUB_API_KEY": server.simulator.settings.api_key,
        "RUNNINGHUB_MAX_CONCURRENCY": str(POLL_TASKS),
        "RUNNINGHUB_POLL_INTERVAL": str(poll_interval),
    }
    product.purge_queues()
    # The whole burst is ordered before the worker consumes, so every task waits for it at once:
    # ordered beside the worker on two cores, the first jobs finish before the last are submitted.
    orders = product.uploads(product.members(MEMBERS, quota=POLL_TASKS), POLL_TASKS)
    ordering = time.monotonic()
    created = product.create_pose12(orders)
    create_seconds = time.monotonic() - ordering
    print(f"polling: {len(created)} pose12 tasks created in {create_seconds:.1f}s", flush=True)
    worker = _Worker(root=root, environment=worker_environment, probe_dir=probe_dir, log=folder / "polling-worker.log")
    try:
        worker.wait_ready()
        began = time.time()
        pids = worker.pids()
        baseline = memory.started(pids)
        product.wait_finished(created, until=time.monotonic() + DEADLINE_SECONDS)
        worker_memory = memory.peaks(pids, baseline)
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()
    finished = product.outcomes(created)
    snapshot = server.simulator.snapshot()
    return PollingRun(
        tasks=len(created),
        by_status=finished.by_status,
        run_time=RUN_TIME,
        poll_interval=poll_interval,
        max_concurrency=POLL_TASKS,
        create_seconds=create_seconds,
        wall_seconds=finished.last_completed - began,
        submit_seconds=counter.submit_span(),
        poll_gaps=counter.poll_gaps,
        calls_per_task=[counter.by_task[task_id] for task_id in created],
        calls_by_path=dict(counter.by_path),
        unattributed=dict(counter.unattributed),
        cdn_downloads=snapshot["calls"].get("/cdn", 0),
        peak_in_flight=snapshot["peakBusy"],
        queue_full_answers=snapshot["queueFullAnswers"],
        steps=_step_stats(_read_steps(probe_dir)),
        worker_memory=worker_memory,
        command=worker.command,
    )


def main(argv: list[str]) -> int:
    """`--web` also measures the gunicorn workers' memory under the create load (bench/run.py)."""
    with bench_django() as environment:
        from django.core.management import call_command

        from bench import report
        from bench.run import web_create_memory

        call_command("migrate", verbosity=0, interactive=False)
        with tempfile.TemporaryDirectory(prefix="bench-polling-") as folder:
            web = None
            if "--web" in argv:
                web = web_create_memory(root=ROOT, environment=environment, folder=Path(folder))
            polled = run_polling(root=ROOT, environment=environment, folder=Path(folder))
        print(report.polling_section(polled))
        print(report.memory_section(polled=polled, web=web))
        return 0 if all(polled.met.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
