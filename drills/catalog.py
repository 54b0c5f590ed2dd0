"""The drills by name: the system each one needs and what it injects (no Django here: the system's
ports and timeouts must be in the environment before Django's settings are read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Drill:
    system: dict[str, Any]
    injects: str


DRILLS: dict[str, Drill] = {
    "worker_kill": Drill(
        {"pending_timeout": 180, "processing_timeout": 180},
        "SIGKILL of the cpu worker (its process group) mid basic_clean, then of the io worker mid pose12 "
        "collect, 20 tasks each; each restarted 5 s later",
    ),
    "broker_outage": Drill(
        {"pending_timeout": 180}, "the drill's redis-server killed for 30 s during 55 s of paced creates"
    ),
    "database_restart": Drill(
        {"pending_timeout": 180}, "PostgreSQL stopped (fast shutdown) for 15 s during 45 s of paced creates"
    ),
    "runninghub_chaos": Drill(
        {"pending_timeout": 300, "processing_timeout": 60, "io_threads": 16},
        "300 pose12 tasks with the simulator's chaos at 0.2: 5xx, malformed JSON, slow answers, 421, 805, "
        "never-finishing jobs, lost webhooks",
    ),
    "storage_outage": Drill(
        {"storage": "cos", "pending_timeout": 240, "processing_timeout": 240},
        "the COS server refuses every connection for 30 s while results are being stored",
    ),
    "double_sweep": Drill(
        {"beats": 2, "pending_timeout": 30, "processing_timeout": 30},
        "two celery-beat processes plus two sweeps looping in the drill, over tasks timing out pending and processing",
    ),
    "clock_timeouts": Drill(
        {"pending_timeout": 20, "processing_timeout": 20},
        "the pending timeout passing while a worker holds the task; RunningHub jobs finishing 3 s before to "
        "6 s after the processing timeout",
    ),
}
