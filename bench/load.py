"""A small closed-loop load client: a few threads, each with its own keep-alive session, send
requests back to back until a request count or a deadline is reached, whichever comes first."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

import requests

Send = Callable[[requests.Session, int], requests.Response]


@dataclass(frozen=True)
class Scenario:
    name: str
    expected_status: int
    max_requests: int
    max_seconds: float
    concurrency: int
    warmup: int
    # One sender per thread, so each thread can act as its own user.
    senders: list[Send]


@dataclass
class Result:
    name: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000


def run(scenario: Scenario, sessions: list[requests.Session]) -> Result:
    result = Result(name=scenario.name, concurrency=scenario.concurrency)
    lock = threading.Lock()
    issued = 0
    clock = {"began": 0.0, "deadline": 0.0}

    def start_clock() -> None:
        clock["began"] = perf_counter()
        clock["deadline"] = clock["began"] + scenario.max_seconds

    # The clock starts when the last thread has finished its warm-up, not when the first has.
    start_gate = threading.Barrier(scenario.concurrency, action=start_clock)

    def claim() -> bool:
        nonlocal issued
        with lock:
            if issued >= scenario.max_requests or perf_counter() >= clock["deadline"]:
                return False
            issued += 1
            return True

    def worker(index: int) -> None:
        session, send = sessions[index], scenario.senders[index]
        try:
            # Warm-up fills the connection pools on both sides and the server's caches.
            for n in range(scenario.warmup):
                send(session, -n - 1)
        except Exception:
            start_gate.abort()
            raise
        start_gate.wait()
        n = 0
        while claim():
            n += 1
            began = perf_counter()
            try:
                response = send(session, n)
                ok, detail = response.status_code == scenario.expected_status, response.text[:300]
            except requests.RequestException as exc:
                ok, detail = False, repr(exc)
            elapsed = perf_counter() - began
            with lock:
                if ok:
                    result.latencies.append(elapsed)
                else:
                    result.errors += 1
                    result.first_error = result.first_error or detail

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(scenario.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if start_gate.broken:
        raise RuntimeError(f"{scenario.name}: the warm-up failed (see the traceback above)")
    result.seconds = perf_counter() - clock["began"]
    return result
