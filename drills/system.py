"""The whole system for one drill, on loopback and in a throw-away folder: its own PostgreSQL cluster
(initdb, on its own port), its own redis-server, the RunningHub simulator, optionally the COS server,
gunicorn, a cpu and an io Celery worker, and celery-beat. Each process is its own process group, so
a drill can SIGKILL a worker with its children, stop Redis or restart PostgreSQL, and start it again.

The environment (ports, URLs, short timeouts) is fixed before Django is imported: the drill process
uses the ORM on the same database for seeding and for the verdict."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
COS_SECRET_ID = "AKIDdrillsecretid0000000000000000000"
COS_SECRET_KEY = "drillsecretkey00000000000000000000"
COS_BUCKET = "photos-1250000000"
COS_REGION = "ap-guangzhou"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (/usr/lib/postgresql/*/bin)")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses root: run the cluster as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Process:
    """One long-running process in a process group of its own, logging to `log`."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n=== drill: start {self.name} ({self.starts}) at {time.time():.3f}\n".encode())
            self.popen = subprocess.Popen(  # noqa: S603 (our own fixed commands)
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: the process and its children die mid-step, acknowledging nothing."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class System:
    name: str
    storage: str = "local"
    pending_timeout: int = 120
    processing_timeout: int = 120
    sweep_interval: int = 5
    poll_interval: int = 1
    io_threads: int = 8
    beats: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"drill-{self.name}-"))
        os.chmod(self.dir, 0o755)  # noqa: S103 (the postgres user reads its data folder under it)
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.pg_port, self.redis_port, self.web_port, self.sim_port, self.cos_port = (free_port() for _ in range(5))
        self.pg_data = self.dir / "pg"
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.cos_url = f"http://127.0.0.1:{self.cos_port}"
        self.processes: dict[str, Process] = {}
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        redis = f"redis://127.0.0.1:{self.redis_port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/photo",
            "CELERY_BROKER_URL": f"{redis}/0",
            "CACHE_URL": f"{redis}/1",
            "DJANGO_SECRET_KEY": "drill-secret-key-that-is-long-enough-for-hmac-sha256-signing",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_VAR_DIR": str(self.dir / "var"),
            "PUBLIC_BASE_URL": self.base_url,
            "RUNNINGHUB_BASE_URL": self.sim_url,
            "RUNNINGHUB_API_KEY": "sim-api-key",
            "RUNNINGHUB_WEBAPP_ID": "1937084629516193794",
            "RUNNINGHUB_WEBHOOK_SECRET": "drill-webhook-secret",
            "RUNNINGHUB_POLL_INTERVAL": str(self.poll_interval),
            "RUNNINGHUB_MAX_CONCURRENCY": "50",
            "PROVIDER_URL_ALLOW_LOOPBACK": "true",
            "TASK_PENDING_TIMEOUT": str(self.pending_timeout),
            "TASK_PROCESSING_TIMEOUT": str(self.processing_timeout),
            "SWEEP_INTERVAL": str(self.sweep_interval),
            "MEMBER_MAX_ACTIVE_TASKS": "10000",
            "THROTTLE_TASK_CREATE": "100000/min",
            "THROTTLE_UPLOAD": "100000/min",
            "THROTTLE_LOGIN_IP": "100000/min",
            "THROTTLE_LOGIN_USER": "100000/min",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        if self.storage == "cos":
            env.update(
                STORAGE_BACKEND="cos",
                COS_SECRET_ID=COS_SECRET_ID,
                COS_SECRET_KEY=COS_SECRET_KEY,
                COS_BUCKET=COS_BUCKET,
                COS_REGION=COS_REGION,
                COS_ENDPOINT_URL=self.cos_url,
            )
        env.update(self.extra_env)
        return env

    # --- PostgreSQL and Redis ---------------------------------------------------------------------

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.pg_data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def postgres_start(self) -> None:
        options = f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=200"
        self._pg_ctl("-o", options, "-l", str(self.logs / "postgres.log"), "-w", "-t", "60", "start")

    def postgres_stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def _postgres_init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.logs, "postgres")
        subprocess.run(  # noqa: S603
            _as_postgres([_pg_bin("initdb"), "-D", str(self.pg_data), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.postgres_start()
        subprocess.run(  # noqa: S603
            [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "photo"], check=True
        )

    def redis_start(self) -> None:
        process = self.processes.get("redis") or self._process(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        process.start()
        self._wait(lambda: self._redis_up(), "redis")

    def redis_stop(self) -> None:
        self.processes["redis"].kill()

    def _redis_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    # --- the application ----------------------------------------------------------------------------

    def _process(self, name: str, command: list[str]) -> Process:
        process = Process(name=name, command=command, env=self.env, log=self.logs / f"{name}.log")
        self.processes[name] = process
        return process

    def worker(self, queue: str, number: int = 1) -> Process:
        name = f"worker-{queue}" + (f"-{number}" if number > 1 else "")
        pool = ["-P", "prefork", "-c", "2"] if queue == "cpu" else ["-P", "threads", "-c", str(self.io_threads)]
        command = [str(BIN / "celery"), "-A", "config", "worker", "-Q", queue, *pool, "-n", f"{name}@drill"]
        return self.processes.get(name) or self._process(name, [*command, "-l", "INFO", "--without-mingle"])

    def beat(self, number: int = 1) -> Process:
        name = f"beat-{number}"
        schedule = str(self.dir / f"{name}-schedule")
        return self.processes.get(name) or self._process(
            name, [str(BIN / "celery"), "-A", "config", "beat", "-l", "INFO", "-s", schedule]
        )

    def start(self) -> None:
        self._postgres_init()
        self.redis_start()
        manage = [str(BIN / "python"), "manage.py"]
        subprocess.run(  # noqa: S603
            [*manage, "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=(self.logs / "migrate.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        self._process(
            "runninghub",
            [
                str(BIN / "python"),
                "-m",
                "devtools.runninghub_sim",
                "--port",
                str(self.sim_port),
                "--api-key",
                "sim-api-key",
                "--run-time",
                "3",
            ],
        ).start()
        if self.storage == "cos":
            self._process(
                "cos",
                [
                    str(BIN / "python"),
                    "-m",
                    "devtools.cos_server",
                    "--port",
                    str(self.cos_port),
                    "--secret-id",
                    COS_SECRET_ID,
                    "--secret-key",
                    COS_SECRET_KEY,
                    "--bucket",
                    COS_BUCKET,
                    "--region",
                    COS_REGION,
                ],
            ).start()
        self._process(
            "web",
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                "2",
                "--threads",
                "8",
            ],
        ).start()
        self.worker("cpu").start()
        self.worker("io").start()
        for number in range(1, self.beats + 1):
            self.beat(number).start()
        self._wait(lambda: self._http_ok(f"{self.sim_url}/_sim/state"), "the RunningHub simulator")
        self._wait(lambda: self._http_ok(f"{self.base_url}/health"), "gunicorn")
        self._wait(self._workers_ready, "the Celery workers", timeout=60)

    def _workers_ready(self) -> bool:
        return all(b"ready." in p.log.read_bytes() for name, p in self.processes.items() if name.startswith("worker-"))

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @staticmethod
    def _wait(check: object, what: str, timeout: float = 30) -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not come up within {timeout}s")
            time.sleep(0.2)

    def wait_worker_ready(self, process: Process, timeout: float = 60) -> None:
        marker = f"=== drill: start {process.name} ({process.starts})".encode()

        def ready() -> bool:
            text = process.log.read_bytes()
            return b"ready" in text[text.rfind(marker) :]

        self._wait(ready, process.name, timeout)

    def sim(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.request(method, f"{self.sim_url}{path}", json=payload, timeout=10)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def cos(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.cos_url}/_cos/{action}", json=payload, timeout=10)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def stop(self, *, keep: bool = False) -> None:
        for name, process in reversed(list(self.processes.items())):
            if name != "redis":
                process.stop()
        if "redis" in self.processes:
            self.processes["redis"].kill()
        with contextlib.suppress(subprocess.CalledProcessError):
            self.postgres_stop()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
