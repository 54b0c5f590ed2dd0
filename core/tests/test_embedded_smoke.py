"""The embedded default (SQLite, no services) must keep working, or `make run` breaks silently."""

from pathlib import Path

import pytest
import requests

from core.tests.embedded import embedded_processes, embedded_server, free_port, manage


@pytest.mark.slow
def test_login_quota_grant_on_the_embedded_default(tmp_path: Path) -> None:
    migrated = manage(tmp_path, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    demo = manage(tmp_path, "bootstrap_demo")
    assert demo.returncode == 0, demo.stderr
    assert "demo / demo-pass-2026" in demo.stdout
    journal = manage(
        tmp_path,
        "shell",
        "-c",
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])",
    )
    assert journal.stdout.strip().splitlines()[-1] == "wal"

    with embedded_server(tmp_path, free_port()) as base:
        health = requests.get(f"{base}/health", timeout=5)
        assert health.status_code == 200, health.text
        login = requests.post(
            f"{base}/api/auth/login", json={"username": "demo", "password": "demo-pass-2026"}, timeout=5
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
        quota = requests.get(f"{base}/api/quota", headers=headers, timeout=5).json()["data"]
        assert quota["remaining"] == 100 and quota["isMember"] is True

        granted = manage(tmp_path, "grant_membership", "demo", "--quota", "5", "--days", "1")
        assert granted.returncode == 0, granted.stderr
        assert requests.get(f"{base}/api/quota", headers=headers, timeout=5).json()["data"]["remaining"] == 105

    reconciled = manage(tmp_path, "reconcile_quota")
    assert reconciled.returncode == 0, reconciled.stderr


def test_bootstrap_demo_refuses_outside_the_embedded_default(tmp_path: Path) -> None:
    result = manage(
        tmp_path,
        "bootstrap_demo",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        CACHE_URL="locmemcache://",
        CELERY_BROKER_URL="memory://",
        DJANGO_SECRET_KEY="x" * 50,
        PUBLIC_BASE_URL="http://x",
        RUNNINGHUB_API_KEY="k",
        RUNNINGHUB_WEBAPP_ID="1",
        RUNNINGHUB_WEBHOOK_SECRET="s",
    )
    assert result.returncode == 1
    assert "embedded default" in result.stderr


@pytest.mark.parametrize(
    "env,name",
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}, "DJANGO_SECRET_KEY"),
        ({"TASK_PENDING_TIMEOUT": "soon"}, "TASK_PENDING_TIMEOUT"),
        ({"SWEEP_INTERVAL": "-5"}, "SWEEP_INTERVAL"),
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND"),
        ({"STORAGE_BACKEND": "cos"}, "COS_SECRET_ID"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DATABASE_URL": "garbage", "DJANGO_SECRET_KEY": "k" * 50}, "DATABASE_URL has a bad value"),
        ({"CACHE_URL": "foo://bar"}, "CACHE_URL has a bad value"),
        ({"THROTTLE_LOGIN_IP": "abc"}, "THROTTLE_LOGIN_IP"),
        ({"RUNNINGHUB_BASE_URL": "not-a-url"}, "RUNNINGHUB_BASE_URL"),
        ({"PUBLIC_BASE_URL": "ftp:/x"}, "PUBLIC_BASE_URL"),
        ({"COS_ENDPOINT_URL": "garbage"}, "COS_ENDPOINT_URL"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(tmp_path: Path, env: dict[str, str], name: str) -> None:
    result = manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.slow
def test_a_newcomer_takes_both_jobs_to_success_on_the_embedded_default(tmp_path: Path) -> None:
    """What `make run` starts — web, Celery worker on the filesystem broker, the simulator — with
    SQLite, driven over HTTP as the README's curl walk-through does."""
    import sys
    import time

    from media.tests.images import product_photo

    web_port, sim_port = free_port(), free_port()
    env = {
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "RUNNINGHUB_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "RUNNINGHUB_POLL_INTERVAL": "1",
    }
    assert manage(tmp_path, "migrate", "--noinput").returncode == 0
    assert manage(tmp_path, "bootstrap_demo").returncode == 0
    celery = [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "2", "--loglevel", "INFO"]
    simulator = [sys.executable, "-m", "devtools.runninghub_sim", "--port", str(sim_port), "--run-time", "1"]
    with (
        embedded_processes(tmp_path, {"worker": celery, "runninghub": simulator}, **env),
        embedded_server(tmp_path, web_port, **env) as base,
    ):
        login = requests.post(
            f"{base}/api/auth/login", json={"username": "demo", "password": "demo-pass-2026"}, timeout=5
        )
        headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}
        upload = requests.post(
            f"{base}/api/media/upload",
            headers=headers,
            files={"file": ("p.jpg", product_photo(fmt="JPEG"), "image/jpeg")},
            timeout=10,
        )
        assert upload.status_code == 201, upload.text
        url = upload.json()["data"]["url"]
        ids = []
        for body in ({"type": "basic_clean", "inputImageUrl": url}, {"type": "model_pose12", "inputImageUrl": url}):
            created = requests.post(f"{base}/api/task/create", headers=headers, json=body, timeout=10)
            assert created.status_code == 201, created.text
            ids.append(created.json()["data"]["id"])

        deadline = time.monotonic() + 90
        tasks: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            tasks = [requests.get(f"{base}/api/task/{i}", headers=headers, timeout=5).json()["data"] for i in ids]
            if all(t["status"] in ("success", "failed") for t in tasks):
                break
            time.sleep(0.5)
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*.log"))
        assert [t["status"] for t in tasks] == ["success", "success"], (tasks, logs)
        assert [len(t["resultUrls"]) for t in tasks] == [3, 12]  # type: ignore[arg-type]
        result = requests.get(tasks[1]["resultUrls"][0], timeout=5)  # type: ignore[index]
        assert result.status_code == 200 and result.headers["Content-Type"] == "image/png"
        quota = requests.get(f"{base}/api/quota", headers=headers, timeout=5).json()["data"]
        assert quota["remaining"] == 98
