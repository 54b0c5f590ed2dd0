"""Load through wrk (bench/load.lua): C on the client side, so the load generator takes little of
the two cores it shares with the server and the database."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("load.lua")


@dataclass(frozen=True)
class Result:
    name: str
    connections: int
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(
    name: str,
    *,
    url: str,
    method: str,
    lines: list[tuple[str, str]],
    folder: Path,
    connections: int,
    seconds: int,
    threads: int = 2,
) -> Result:
    """`lines` are (token, body) pairs taken in turn, one per request."""
    requests_file = folder / f"wrk-{abs(hash(name))}.tsv"
    requests_file.write_text("".join(f"{token}\t{body}\n" for token, body in lines))
    base, _, path = url.partition("/api/")
    command = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(SCRIPT),
        base,
        "--",
        str(requests_file),
    ]
    environment = {**os.environ, "BENCH_METHOD": method, "BENCH_PATH": f"/api/{path}"}
    finished = subprocess.run(
        command, capture_output=True, text=True, env=environment, check=True, timeout=seconds + 60
    )
    measured = json.loads(finished.stdout.strip().splitlines()[-1])
    return Result(name=name, connections=connections, **measured)
