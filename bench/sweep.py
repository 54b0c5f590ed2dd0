from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

from bench.recorder import recording
from tasks.sweep import SweepReport, tasks_sweep

MAX_RUNS = 5


@dataclass(frozen=True)
class SweepRun:
    report: SweepReport
    seconds: float
    queries: int


def measure_sweep() -> list[SweepRun]:
    """Sweeps until nothing stale is left (each run takes at most 1,000 of each kind), plus the
    run that finds nothing, which is what the sweep costs on a healthy minute."""
    runs: list[SweepRun] = []
    while len(runs) < MAX_RUNS:
        with recording() as rec:
            began = perf_counter()
            report = tasks_sweep()
            seconds = perf_counter() - began
        runs.append(SweepRun(report=report, seconds=seconds, queries=len(rec.queries)))
        if report.failed == 0 and report.requeued == 0:
            break
    return runs
