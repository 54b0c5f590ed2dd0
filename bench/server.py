from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

WORKERS = 3
THREADS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Gunicorn:
    """`app` served by WORKERS gthread workers of THREADS threads each, without access logs (the
    same for the product and its baselines; the project's gunicorn.conf.py is not read)."""

    def __init__(self, *, root: Path, environment: dict[str, str], log: Path, app: str = "config.wsgi") -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = log.open("wb")
        no_config = log.with_suffix(".conf.py")
        no_config.write_text("")
        self.process = subprocess.Popen(
            [
                str(root / ".venv" / "bin" / "gunicorn"),
                app,
                "-c",
                str(no_config),
                "-k",
                "gthread",
                "-w",
                str(WORKERS),
                "--threads",
                str(THREADS),
                "-b",
                f"127.0.0.1:{self.port}",
            ],
            cwd=root,
            env={**os.environ, **environment},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def wait_ready(self, timeout: float = 30, path: str = "/health", ok: tuple[int, ...] = (200,)) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.base_url}{path}", timeout=5).status_code in ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGTERM is gunicorn's graceful stop: the master waits for its workers.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
