"""Resident memory of the processes the bench starts, from /proc/<pid>/status: VmRSS now and VmHWM,
the peak since the process began (kept by the kernel, so no sampling can miss it). ru_maxrss is not
used: Linux carries it over from a forking parent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def status_mb(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status in MB (10^6 bytes; the kernel counts in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise LookupError(f"{field} not in /proc/{pid}/status")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@dataclass(frozen=True)
class ProcessMemory:
    role: str
    pid: int
    started_mb: float  # VmRSS once the process was ready, before any load
    peak_mb: float  # VmHWM at the end of the load

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.started_mb


def started(pids: dict[int, str]) -> dict[int, float]:
    """VmRSS of each process now (the baseline before a load)."""
    return {pid: status_mb(pid, "VmRSS") for pid in pids}


def peaks(pids: dict[int, str], baseline: dict[int, float]) -> list[ProcessMemory]:
    """VmHWM of each process, which must still be running."""
    return [
        ProcessMemory(role=role, pid=pid, started_mb=baseline.get(pid, float("nan")), peak_mb=status_mb(pid, "VmHWM"))
        for pid, role in pids.items()
    ]
