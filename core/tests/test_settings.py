"""Security settings of a deployment, read from a fresh process with a production-like
environment (settings are computed once, at start-up)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from core.tests.embedded import ROOT

pytestmark = pytest.mark.slow


def production_env(**extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://photo@127.0.0.1:5432/photo",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "photo.example.com",
        "PUBLIC_BASE_URL": "https://photo.example.com",
        "RUNNINGHUB_API_KEY": secrets.token_hex(16),
        "RUNNINGHUB_WEBAPP_ID": "1937084629516193794",
        "RUNNINGHUB_WEBHOOK_SECRET": secrets.token_urlsafe(24),
    }
    env.update(extra)
    return env


NAMES = [
    "DEBUG",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "TASK_COSTS",
    "DATABASES",
]


def read_settings(**extra: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=production_env(**extra), capture_output=True, text=True, timeout=60
    )


def settings_of(**extra: str) -> dict[str, object]:
    result = read_settings(**extra)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _binding(settings: dict[str, object]) -> object:
    return settings["DATABASES"]["default"]["OPTIONS"]["server_side_binding"]  # type: ignore[index]


def test_statements_are_bound_server_side_unless_the_database_url_says_otherwise() -> None:
    assert _binding(settings_of()) is True
    off = settings_of(DATABASE_URL="postgres://photo@127.0.0.1:5432/photo?server_side_binding=false")
    assert _binding(off) is False


def test_a_deployment_sends_hsts_including_subdomains() -> None:
    values = settings_of()
    assert values["DEBUG"] is False
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True


def test_cookies_are_secure_outside_debug_even_without_the_ssl_redirect() -> None:
    values = settings_of(DJANGO_SECURE_SSL_REDIRECT="false")
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True


def test_debug_keeps_plain_http_cookies_and_no_hsts() -> None:
    values = settings_of(DJANGO_DEBUG="true")
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False


def test_the_proxy_https_header_is_honoured_only_behind_a_trusted_proxy() -> None:
    assert settings_of()["SECURE_PROXY_SSL_HEADER"] is None
    assert settings_of(TRUSTED_PROXIES="0")["SECURE_PROXY_SSL_HEADER"] is None
    assert settings_of(TRUSTED_PROXIES="1")["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


@pytest.mark.parametrize("name", ["TASK_COST_BASIC_CLEAN", "TASK_COST_MODEL_POSE12"])
def test_a_task_cost_beyond_the_column_stops_start_up_naming_it(name: str) -> None:
    assert settings_of(**{name: "32767"})["TASK_COSTS"]
    result = read_settings(**{name: "32768"})
    assert result.returncode != 0
    assert name in result.stderr and "32767" in result.stderr


def test_check_deploy_is_clean_for_a_production_like_environment() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(TRUSTED_PROXIES="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNING" not in result.stderr
