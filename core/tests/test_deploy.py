"""The deployment files, checked without Docker (none runs on this machine): compose.yaml's service
commands and the Dockerfile's build and start commands are run here as the containers would run
them, on the test database and broker; the example environment is a valid deployment; the alert
rules name metrics that exist."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from celery import current_app
from django.conf import settings as django_settings
from django.db import connection

from core.tests.embedded import ROOT, free_port

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = sorted(name for name, service in SERVICES.items() if service.get("image") == "photo-service:latest")


def command_of(service: str) -> list[str]:
    """The service's command as a shell would split it, `${VAR:-default}` at its default, run with
    this venv's interpreter."""
    text = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", SERVICES[service]["command"])
    argv = shlex.split(text)
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    return [sys.executable, "-m", argv[0], *argv[1:]]


def deployment_env(**extra: str) -> dict[str, str]:
    """The example .env with the test database and broker in place of the compose hosts."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    db = connection.settings_dict
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
        CACHE_URL=os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"),
        **extra,
    )
    return env


def test_compose_runs_web_two_worker_pools_beat_postgres_and_redis() -> None:
    assert set(SERVICES) >= {"web", "worker-cpu", "worker-io", "beat", "postgres", "redis", "migrate"}
    assert APP_SERVICES == ["beat", "migrate", "web", "worker-cpu", "worker-io"]
    assert command_of("worker-cpu")[3:] == [
        "-A",
        "config",
        "worker",
        "-Q",
        "cpu",
        "-P",
        "prefork",
        "-c",
        "2",
        "-n",
        "cpu@%h",
        "-l",
        "INFO",
    ]
    assert command_of("worker-io")[3:9] == ["-A", "config", "worker", "-Q", "io", "-P"] and "threads" in command_of(
        "worker-io"
    )
    assert "migrate" in SERVICES["web"]["depends_on"]


def test_the_example_environment_is_a_valid_deployment(tmp_path: Path, transactional_db: None) -> None:
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=deployment_env(DJANGO_VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_migrate_and_web_commands(tmp_path: Path, transactional_db: None) -> None:
    env = deployment_env(DJANGO_VAR_DIR=str(tmp_path))
    migrate = subprocess.run(command_of("migrate"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    # gunicorn loads gunicorn.conf.py and the WSGI application, then stops.
    web = subprocess.run(
        [*command_of("web")[:3], "--check-config", *command_of("web")[3:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert web.returncode == 0, web.stdout + web.stderr


def test_the_dockerfile_builds_and_starts_as_described(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER app$", dockerfile, re.M)
    for copied in re.findall(r"^COPY (?!--)([^\n]+) /tmp/$", dockerfile, re.M)[0].split():
        assert (ROOT / copied).is_file(), copied
    (cmd,) = re.findall(r"^CMD (.+)$", dockerfile, re.M)
    assert json.loads(cmd) == ["gunicorn", "config.wsgi"] == shlex.split(SERVICES["web"]["command"])
    # The build's collectstatic runs with no deployment environment at all (the embedded default).
    build = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    assert (tmp_path / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist").is_dir()


@pytest.fixture
def started(tmp_path: Path, transactional_db: None) -> Iterator[Any]:
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(service: str, **extra: str) -> Path:
        log_path = tmp_path / f"{service}.log"
        env = deployment_env(DJANGO_VAR_DIR=str(tmp_path), **{**SERVICES[service].get("environment", {}), **extra})
        with log_path.open("wb") as log:
            processes.append(
                (
                    subprocess.Popen(command_of(service), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
                    log_path,
                )
            )
        return log_path

    current_app.control.purge()
    yield start
    for process, _ in processes:
        process.kill()
        process.wait(timeout=30)


def wait_until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.slow
def test_worker_and_beat_commands_start_and_serve_their_metrics(started: Any, tmp_path: Path) -> None:
    ports = {"worker-cpu": free_port(), "worker-io": free_port()}
    for service, port in ports.items():
        folder = tmp_path / f"prometheus-{service}"
        started(service, WORKER_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(folder))
    beat_log = started("beat")

    def both_ready() -> bool:
        answers = current_app.control.ping(timeout=0.5) or []
        return {name.split("@")[0] for answer in answers for name in answer} >= {"cpu", "io"}

    wait_until(both_ready)
    for port in ports.values():
        scraped = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert scraped.status_code == 200 and "photo_quota_refunds_total" in scraped.text
    wait_until(lambda: "beat: Starting" in beat_log.read_text())


def test_alert_rules_name_metrics_the_service_exports() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    exported = (ROOT / "core" / "metrics.py").read_text() + (ROOT / "tasks" / "metrics.py").read_text()
    names = {
        re.sub(r"_(total|count|sum|bucket)$", "", name)
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"photo_[a-z_]+", rule["expr"])
    }
    assert names and all(f'"{name}' in exported for name in names), names
