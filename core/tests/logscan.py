"""A pytest plugin (loaded by the root conftest.py): every log line written during the test run,
rendered as in production, is scanned for secrets — a JWT, the signing key, the RunningHub API key,
the webhook secret, COS keys, the metrics token, the test users' password. One found fails the run
and prints where it was."""

from __future__ import annotations

import logging
import re

import pytest
from django.conf import settings

from accounts.tests.factories import PASSWORD
from core.tests.logs import JsonLines

_JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def _secrets() -> dict[str, str]:
    """Read at each line: tests point the settings at their own COS server, keys included."""
    named = {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "RUNNINGHUB_API_KEY": settings.RUNNINGHUB_API_KEY,
        "RUNNINGHUB_WEBHOOK_SECRET": settings.RUNNINGHUB_WEBHOOK_SECRET,
        "COS_SECRET_ID": settings.COS_SECRET_ID,
        "COS_SECRET_KEY": settings.COS_SECRET_KEY,
        "METRICS_TOKEN": settings.METRICS_TOKEN,
        "test user password": PASSWORD,
    }
    return {name: value for name, value in named.items() if value and len(value) >= 8}


def leaks_in(line: str) -> list[str]:
    found = [name for name, value in _secrets().items() if value in line]
    if _JWT.search(line):
        found.append("a JWT")
    return found


class SecretScanner(JsonLines):
    """Keeps only the lines that hold a secret (with what it found), not every line."""

    def __init__(self) -> None:
        super().__init__()
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is not ours to judge here
            return
        found = leaks_in(line)
        if found:
            self.leaks.append(f"{', '.join(found)} in: {line[:400]}")


_scanner = SecretScanner()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_scanner)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_scanner)
    if _scanner.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"{len(_scanner.leaks)} log lines hold a secret", red=True)
            for leak in _scanner.leaks[:20]:
                reporter.write_line(leak)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
