"""python -m drills [name ...]: run the fault drills (all of them by default, each in a process of
its own), print each one's figures and verdict, and exit 1 if any failed. Figures of the last run
are written to var/drills/<name>.json; the logs of a failed drill are kept under var/drills/."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from drills.catalog import DRILLS
from drills.system import ROOT, System

OUT = ROOT / "var" / "drills"


def _one(name: str, *, keep: bool) -> int:
    system = System(name, **DRILLS[name].system)
    os.environ.update(system.env)
    import django

    django.setup()
    from drills.scenarios import run_drill
    from drills.verdict import judge

    started = time.time()
    try:
        system.start()
        run, recorder = run_drill(name, system)
        print(f"drill {name}: load and fault done: {json.dumps(run.figures, default=str)}", file=sys.stderr)
        verdict = judge(
            drill=name,
            system=system,
            recorder=recorder,
            outages=run.outages,
            allowed_tracebacks=run.allowed_tracebacks,
            terminal_timeout=run.terminal_timeout,
        )
        verdict.problems[:0] = run.problems
        verdict.figures = {**run.figures, **verdict.figures, "drill_seconds": round(time.time() - started)}
    except Exception as exc:
        system.stop(keep=True)
        print(f"drill {name}: could not run: {exc!r}; logs in {system.logs}", file=sys.stderr)
        raise
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"drill": name, "injects": DRILLS[name].injects, "passed": verdict.passed, **verdict.__dict__}
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    failed = not verdict.passed
    if failed or keep:
        kept = OUT / f"{name}-logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(system.logs, kept, ignore=shutil.ignore_patterns("postgres.log"))
    system.stop()
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*DRILLS, []], help="drills to run (default: all)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs of passing drills too")
    args = parser.parse_args()
    os.chdir(ROOT)
    names = args.names or list(DRILLS)
    if len(names) == 1:
        return _one(names[0], keep=args.keep_logs)
    results = {}
    for name in names:
        started = time.time()
        command = [sys.executable, "-m", "drills", name, *(["--keep-logs"] if args.keep_logs else [])]
        results[name] = (subprocess.run(command, cwd=ROOT, check=False).returncode, round(time.time() - started))  # noqa: S603
    for name, (code, seconds) in results.items():
        print(f"{'PASS' if code == 0 else 'FAIL'}  {name}  ({seconds} s)")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
