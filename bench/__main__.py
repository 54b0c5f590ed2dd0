"""Entry point: `python -m bench` (make bench). BENCH_DATABASE and BENCH_REDIS_URL move the run to
another database and Redis (bench/environment.py)."""

from __future__ import annotations

import sys

from bench.environment import ROOT, bench_django


def main() -> int:
    with bench_django() as environment:
        from bench.run import run

        return run(root=ROOT, environment=environment)


if __name__ == "__main__":
    sys.exit(main())
