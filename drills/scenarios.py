"""The drills: each drives load through the HTTP API, injects its fault, and returns its own figures;
`drills.verdict.judge` then applies the common verdict. Registered in DRILLS with the system each
one needs (timeouts, storage, how many beats)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections

from accounts.models import User
from drills.load import PASSWORD, Load, Member, Recorder
from drills.system import System
from drills.verdict import OUTAGE_GRACE
from quota.services import quota_grant
from tasks.models import ACTIVE_STATUSES, Task, TaskStage, TaskStatus, TaskType
from tasks.sweep import tasks_sweep


@dataclass
class Run:
    """What a drill hands to the verdict: outage windows, the tracebacks its fault may cause, and
    how long the tasks may take to end after the load."""

    figures: dict[str, Any] = field(default_factory=dict)
    outages: list[tuple[float, float]] = field(default_factory=list)
    allowed_tracebacks: list[str] = field(default_factory=list)
    terminal_timeout: float = 180
    problems: list[str] = field(default_factory=list)


def members(load: Load, count: int, *, quota: int) -> list[Member]:
    made = []
    for n in range(count):
        user = User.objects.create_user(username=f"drill{n}", password=PASSWORD)
        quota_grant(user_id=user.pk, amount=quota, days=30, reason="fault drill")
        made.append(load.member(user.username, seed=n))
    return made


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def _ended_after(task_ids: list[Any], moment: float, timeout: float) -> float | None:
    """Seconds from `moment` (a time.time()) until the last of `task_ids` ended; None past `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        if not Task.objects.filter(pk__in=task_ids, status__in=ACTIVE_STATUSES).exists():
            ends = [t for t in Task.objects.filter(pk__in=task_ids).values_list("completed_at", flat=True) if t]
            return round(max(ends).timestamp() - moment, 1) if ends else None
        time.sleep(0.5)
    return None


# --- 1. a worker SIGKILLed mid-step ---------------------------------------------------------------


def worker_kill(system: System, load: Load) -> Run:
    # The simulator's request threads see the killed worker's connections reset.
    run = Run(allowed_tracebacks=[r"WorkerLostError", r"ConnectionResetError: \[Errno 104\]"])
    crew = members(load, 2, quota=100)
    for task_type, queue, mid_step in (
        (TaskType.BASIC_CLEAN, "cpu", Task.objects.filter(status=TaskStatus.PROCESSING, stage=TaskStage.RUNNING)),
        (TaskType.MODEL_POSE12, "io", Task.objects.filter(stage=TaskStage.COLLECTING)),
    ):
        created = load.burst(crew, task_type, 20)
        held = mid_step.filter(type=task_type, lease_until__isnull=False)
        wait_until(held.exists, 90, f"a {task_type} task in the middle of its step")
        interrupted = list(held.values_list("id", flat=True))
        worker = system.worker(queue)
        worker.kill()
        killed_at = time.time()
        time.sleep(5)
        worker.start()
        restarted_at = time.time()
        system.wait_worker_ready(worker)
        resumed = _ended_after(interrupted, restarted_at, 150)
        run.figures[task_type] = {
            "created": len(created),
            "interrupted_mid_step": len(interrupted),
            "killed_at": round(killed_at, 1),
            "seconds_from_restart_until_the_interrupted_ended": resumed,
        }
        if resumed is None or resumed > 60:
            run.problems.append(f"{task_type}: interrupted tasks ended {resumed}s after the restart (want < 60)")
    return run


# --- 2 and 3: the broker or the database goes away during paced creates ---------------------------


def _outage_under_load(
    run: Run,
    system: System,
    load: Load,
    *,
    seconds: float,
    down: float,
    stop: Callable[[], None],
    start: Callable[[], None],
) -> None:
    """Creates for `seconds` (one every 0.4 s); 10 s in, `stop()`, and `down` seconds later
    `start()`. The outage delays work and loses none: every task must succeed, and no process
    may need a restart."""
    crew = members(load, 3, quota=200)
    created: list[str] = []
    creator = threading.Thread(
        target=lambda: created.extend(load.paced(crew, TaskType.BASIC_CLEAN, seconds=seconds, every=0.4))
    )
    creator.start()
    time.sleep(10)
    stopped = time.time()
    stop()
    time.sleep(down)
    start()
    started = time.time()
    run.outages.append((stopped, started))
    creator.join()
    close_old_connections()
    creates = [a for a in load.recorder.answers if a.what == "create"]
    during = [a for a in creates if stopped <= a.at <= started + OUTAGE_GRACE]
    first_ok = min((a.at for a in creates if a.status == 201 and a.at > started), default=None)
    run.figures.update(
        tasks_created=len(created),
        creates_during_outage=dict(Counter(f"{a.status}/{a.code}" for a in during)),
        seconds_after_the_fault_until_a_create_succeeded=None if first_ok is None else round(first_ok - started, 1),
        seconds_after_the_fault_until_all_ended=_ended_after(
            list(Task.objects.values_list("id", flat=True)), started, 240
        ),
    )
    failed = Counter(Task.objects.filter(status=TaskStatus.FAILED).values_list("failure_code", flat=True))
    if failed:
        run.problems.append(f"the outage should delay work and lose none, yet tasks failed: {dict(failed)}")
    restarted = [name for name, p in system.processes.items() if p.starts > 1 and name != "redis"]
    if restarted:
        run.problems.append(f"processes had to be restarted: {restarted}")


def broker_outage(system: System, load: Load) -> Run:
    run = Run(
        allowed_tracebacks=[
            r"redis\.exceptions",
            r"ConnectionRefusedError",
            r"kombu\.exceptions\.OperationalError",
            r"Error 111 connecting",
            r"Connection (closed|refused|reset)",
        ]
    )
    _outage_under_load(run, system, load, seconds=55, down=30, stop=system.redis_stop, start=system.redis_start)
    return run


def database_restart(system: System, load: Load) -> Run:
    run = Run(
        allowed_tracebacks=[
            r"psycopg\.OperationalError",
            r"OperationalError",
            r"InterfaceError",
            r"AdminShutdown",
            r"terminating connection due to administrator command",
            r"server closed the connection",
            r"Connection refused",
            r"the database system is (shutting down|starting up)",
        ]
    )
    _outage_under_load(run, system, load, seconds=45, down=15, stop=system.postgres_stop, start=system.postgres_start)
    return run


# --- 4. RunningHub misbehaves on one call in five --------------------------------------------------


def runninghub_chaos(system: System, load: Load) -> Run:
    run = Run(allowed_tracebacks=[r"RunningHub\w*Error"], terminal_timeout=420)
    system.sim("POST", "/_sim/config", {"chaos": 0.2, "chaos_seed": 12, "run_time": 3.0})
    crew = members(load, 5, quota=100)
    started = time.time()
    created = load.burst(crew, TaskType.MODEL_POSE12, 300, threads=8)
    run.figures["created"] = len(created)
    run.figures["seconds_until_all_ended"] = _ended_after(created, started, 420)
    state = system.sim("GET", "/_sim/state")
    run.figures["chaos_fired"] = state["chaos"]
    run.figures["runninghub_calls"] = state["calls"]
    return run


# --- 5. the object store goes away while results are collected ------------------------------------


def storage_outage(system: System, load: Load) -> Run:
    run = Run(
        allowed_tracebacks=[r"ConnectionError", r"RemoteDisconnected", r"CosClientError", r"Connection aborted"],
        terminal_timeout=300,
    )
    crew = members(load, 2, quota=100)
    system.sim("POST", "/_sim/config", {"run_time": 4.0})
    created = load.burst(crew, TaskType.MODEL_POSE12, 20) + load.burst(crew, TaskType.BASIC_CLEAN, 10)
    storing = Task.objects.filter(stage__in=(TaskStage.COLLECTING, TaskStage.AUDITING))
    wait_until(storing.exists, 90, "a task collecting its results")
    stopped = time.time()
    system.cos("fault", {"mode": "refuse", "scope": "all"})
    time.sleep(30)
    system.cos("fault", {"mode": "none"})
    started = time.time()
    run.outages.append((stopped, started))
    run.figures["created"] = len(created)
    run.figures["seconds_after_storage_returned_until_all_ended"] = _ended_after(created, started, 300)
    return run


# --- 6. two beats and two sweeps at once ----------------------------------------------------------


def double_sweep(system: System, load: Load) -> Run:
    run = Run(terminal_timeout=180)
    crew = members(load, 2, quota=100)
    # Pose12 jobs that never finish: failed by the processing timeout and cancelled at RunningHub.
    system.sim("POST", "/_sim/config", {"never_finish": True})
    processing = load.burst(crew, TaskType.MODEL_POSE12, 20)
    wait_until(
        lambda: Task.objects.filter(type=TaskType.MODEL_POSE12, status=TaskStatus.PROCESSING).count() == 20,
        60,
        "the RunningHub jobs to start",
    )
    # basic_clean with no cpu worker: failed by the pending timeout.
    system.worker("cpu").stop()
    pending = load.burst(crew, TaskType.BASIC_CLEAN, 20)
    stop = threading.Event()
    sweeps = Counter[str]()

    def sweeper(name: str) -> None:
        while not stop.is_set():
            report = tasks_sweep()
            sweeps[name] += report.failed
            close_old_connections()
            time.sleep(1)

    threads = [threading.Thread(target=sweeper, args=(f"drill-sweep-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    ended = _ended_after(processing + pending, time.time(), 180)
    time.sleep(10)  # the cancels are queued after commit: let them reach RunningHub
    stop.set()
    for thread in threads:
        thread.join()
    system.worker("cpu").start()
    state = system.sim("GET", "/_sim/state")
    vendor_ids = set(Task.objects.exclude(vendor_task_id="").values_list("vendor_task_id", flat=True))
    cancels = {k: v for k, v in state["cancelRequests"].items() if k in vendor_ids}
    beats_sent = {n: system.beat(n).log.read_text().count("Sending due task") for n in (1, 2)}
    worker_sweeps = sum(
        "tasks.sweep[" in line and "succeeded" in line for line in system.worker("io").log.read_text().splitlines()
    )
    run.figures.update(
        sweeps_sent_by_each_beat=beats_sent,
        sweeps_run_by_the_io_worker=worker_sweeps,
        processing_tasks=len(processing),
        pending_tasks=len(pending),
        failed_by_the_drills_own_sweeps=dict(sweeps),
        seconds_until_all_ended=ended,
        vendor_jobs=len(vendor_ids),
        cancel_requests_at_runninghub=sum(cancels.values()),
        jobs_cancelled_more_than_once=sum(1 for n in cancels.values() if n > 1),
        jobs_never_cancelled=len(vendor_ids - set(cancels)),
    )
    if run.figures["jobs_cancelled_more_than_once"] or run.figures["jobs_never_cancelled"]:
        run.problems.append(f"RunningHub cancels: {cancels}")
    return run


# --- 7. timeouts that race the worker ---------------------------------------------------------------


def clock_timeouts(system: System, load: Load) -> Run:
    run = Run(terminal_timeout=180)
    crew = members(load, 2, quota=100)
    # (a) The worker holds a pose12 task in a slow submit (upload and run each take 20 s) while its
    # pending timeout (20 s) passes: the sweep fails it, the late job is cancelled, one outcome.
    system.sim("POST", "/_sim/config", {"latency": 20.0})
    held = load.burst(crew, TaskType.MODEL_POSE12, 6)
    time.sleep(2 * 20 + 5)
    system.sim("POST", "/_sim/config", {"latency": 0.0})
    _ended_after(held, time.time(), 60)
    outcomes_a = Counter(Task.objects.filter(pk__in=held).values_list("status", "failure_code"))
    run.figures["held_past_pending_timeout"] = {f"{s}/{c}": n for (s, c), n in outcomes_a.items()}
    # (b) RunningHub jobs that finish just before, at and just after the processing timeout.
    limit = system.processing_timeout
    groups: dict[str, list[str]] = {}
    for delta in (-3, 1, 3, 6):
        system.sim("POST", "/_sim/config", {"run_time": float(limit + delta)})
        ids = load.burst(crew, TaskType.MODEL_POSE12, 4)
        submitted = Task.objects.filter(pk__in=ids).exclude(status=TaskStatus.PENDING)
        wait_until(lambda: submitted.count() == len(ids), 30, "the jobs to be submitted")  # noqa: B023 (called at once)
        groups[f"finishes {delta:+d}s from the timeout"] = ids
    _ended_after([i for ids in groups.values() for i in ids], time.time(), 150)
    run.figures["finishing_near_the_processing_timeout"] = {
        name: {
            f"{s}/{c or '-'}": n
            for (s, c), n in Counter(Task.objects.filter(pk__in=ids).values_list("status", "failure_code")).items()
        }
        for name, ids in groups.items()
    }
    state = system.sim("GET", "/_sim/state")
    cancels = state["cancelRequests"]
    run.figures["cancel_requests_at_runninghub"] = sum(cancels.values())
    run.figures["jobs_cancelled_more_than_once"] = sum(1 for n in cancels.values() if n > 1)
    if run.figures["jobs_cancelled_more_than_once"]:
        run.problems.append(f"RunningHub jobs cancelled more than once: {cancels}")
    return run


SCENARIOS: dict[str, Callable[[System, Load], Run]] = {
    "worker_kill": worker_kill,
    "broker_outage": broker_outage,
    "database_restart": database_restart,
    "runninghub_chaos": runninghub_chaos,
    "storage_outage": storage_outage,
    "double_sweep": double_sweep,
    "clock_timeouts": clock_timeouts,
}


def run_drill(name: str, system: System) -> tuple[Run, Recorder]:
    recorder = Recorder()
    load = Load(system.base_url, recorder)
    return SCENARIOS[name](system, load), recorder
