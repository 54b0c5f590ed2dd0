"""Run the project as `make run` does — embedded default, no environment — in a scratch folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"), "DJANGO_VAR_DIR": str(var_dir)}
    # Under `make test` the processes' code counts toward the coverage (coverage's subprocess patch
    # hands its configuration down in these variables); nothing else of the test's environment.
    env.update({name: value for name, value in os.environ.items() if name.startswith("COVERAGE_")})
    env.update(extra)
    return env


def manage(var_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=embedded_env(var_dir, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_server(var_dir: Path, port: int, **extra: str) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=embedded_env(var_dir, **{"PUBLIC_BASE_URL": base, **extra}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def embedded_processes(var_dir: Path, commands: dict[str, list[str]], **extra: str) -> Iterator[None]:
    """Start long-running processes of the embedded default (worker, simulator ...) and stop them."""
    processes = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=embedded_env(var_dir, **extra),
            stdout=(var_dir / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for name, command in commands.items()
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
