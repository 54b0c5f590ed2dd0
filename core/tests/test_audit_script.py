"""scripts/audit_dependencies.py: a vulnerability fails `make test`; an advisory service that
cannot be reached is said out loud and does not."""

from __future__ import annotations

import json
import runpy
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from core.tests.embedded import ROOT

Main = Callable[[], int]


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Main]:
    """The script's main() with pip-audit answering `stdout`, `stderr` and `returncode`."""

    def make(stdout: str = "", stderr: str = "", returncode: int = 0) -> Main:
        def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
            assert "--format" in command and "requirements.txt" in command
            return subprocess.CompletedProcess(command, returncode, stdout, stderr)

        monkeypatch.setattr(subprocess, "run", run)
        main: Main = runpy.run_path(str(ROOT / "scripts" / "audit_dependencies.py"))["main"]
        return main

    return make


def report(*dependencies: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_known_vulnerability_fails(audit: Callable[..., Main], capsys: pytest.CaptureFixture[str]) -> None:
    vuln = {"id": "PYSEC-2099-1", "fix_versions": ["5.2.99"]}
    main = audit(report({"name": "django", "version": "5.2.19", "vulns": [vuln]}), returncode=1)
    assert main() == 1
    assert "VULNERABLE django 5.2.19: PYSEC-2099-1 (fixed in 5.2.99)" in capsys.readouterr().out


def test_a_clean_audit_passes_and_says_what_it_checked(
    audit: Callable[..., Main], capsys: pytest.CaptureFixture[str]
) -> None:
    main = audit(report({"name": "django", "version": "5.2.19", "vulns": []}))
    assert main() == 0
    assert "no known vulnerability in 1 audited packages" in capsys.readouterr().out


def test_look_ups_refused_for_every_package_are_not_a_clean_audit(
    audit: Callable[..., Main], capsys: pytest.CaptureFixture[str]
) -> None:
    skipped = {"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    assert audit(report(skipped))() == 0
    out = capsys.readouterr().out
    assert "NOT audited" in out and "no known vulnerability" not in out


def test_an_unreachable_service_is_said_and_does_not_fail(
    audit: Callable[..., Main], capsys: pytest.CaptureFixture[str]
) -> None:
    main = audit(stderr="requests.exceptions.ConnectionError: Max retries exceeded", returncode=1)
    assert main() == 0
    assert "cannot be reached; dependencies NOT audited" in capsys.readouterr().out


def test_any_other_failure_of_pip_audit_fails(audit: Callable[..., Main]) -> None:
    assert audit(stderr="usage: pip-audit: error: bad flag", returncode=2)() == 2
