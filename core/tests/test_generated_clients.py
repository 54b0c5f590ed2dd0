"""Clients generated from the OpenAPI schema run the member's flow (log in, upload a photo, order
`basic_clean`, wait for success, three result images) against a live server and a real Celery
worker: the Python client of openapi-python-client, installed in a venv of its own, and
openapi-fetch typed by openapi-typescript. A schema change that breaks generated clients, or the
example scripts in clients/ that front-end developers copy, fails here."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from accounts.models import User
from accounts.tests.factories import PASSWORD
from media.storage import get_storage
from media.tests.images import product_photo
from tasks.tests.conftest import worker  # noqa: F401  (the fixture, used through usefixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.usefixtures("worker")]

REPO = Path(__file__).resolve().parents[2]
PYTHON_CLIENT = REPO / "clients" / "python"
TYPESCRIPT_CLIENT = REPO / "clients" / "typescript"
VAR = REPO / "var"
BIN = Path(sys.executable).parent
# The venv that installs the generated client: kept between runs (the client is generated and
# installed anew every run), one per generator and Python version, whose templates decide the
# client's dependencies. setuptools builds the generated package (`--meta setup`) in that venv.
CLIENT_VENV = VAR / f"client-venv-{version('openapi-python-client')}-py{sys.version_info[0]}.{sys.version_info[1]}"
SETUPTOOLS = "setuptools==80.9.0"
# A step that installs from a package registry on its first run gets minutes; the flow itself less.
STEP_TIMEOUT = 300
FLOW_TIMEOUT = 120


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = STEP_TIMEOUT) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    command = " ".join(str(arg) for arg in args)
    assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def exclusive() -> Iterator[None]:
    """Runs of the suite in one work tree share the client venv and clients/typescript's files."""
    VAR.mkdir(exist_ok=True)
    with (VAR / "generated-clients.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def server(live_server: Any, settings: Any) -> str:
    """The live server's URL (by address: it listens on IPv4 loopback only); it also serves the
    stored files that result URLs name."""
    url = f"http://127.0.0.1:{live_server.thread.port}"
    settings.PUBLIC_BASE_URL = url
    get_storage.cache_clear()
    return url


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "bottle.jpg"
    path.write_bytes(product_photo(fmt="JPEG"))
    return path


def assert_three_result_images(urls: list[str], server: str) -> None:
    """basic_clean's cut-out on transparency, on white, and enhanced, served by the live server."""
    assert len(urls) == 3, urls
    modes = []
    for url in urls:
        assert url.startswith(f"{server}/media/results/"), url
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200, url
        image = Image.open(io.BytesIO(answer.content))
        image.load()
        modes.append(image.mode)
    assert modes == ["RGBA", "RGB", "RGB"]


def client_venv_python() -> Path:
    """The kept venv's interpreter, made on first use (made anew when a run was interrupted)."""
    python = CLIENT_VENV / "bin" / "python"
    ready = CLIENT_VENV / "ready"
    if not ready.exists():
        run(sys.executable, "-m", "venv", "--clear", CLIENT_VENV, cwd=VAR)
        run(python, "-m", "pip", "install", "--quiet", SETUPTOOLS, cwd=VAR)
        ready.touch()
    return python


def test_python_client_runs_the_member_flow(
    exclusive: None, server: str, member: User, photo: Path, tmp_path: Path
) -> None:
    generated = tmp_path / "photo-api-client"
    run(
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        "--url",
        f"{server}/api/schema",
        "--config",
        PYTHON_CLIENT / "openapi-python-client.yaml",
        "--meta",
        "setup",
        "--output-path",
        generated,
        "--fail-on-warning",
        cwd=tmp_path,
        env={"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},  # its ruff post-hooks
    )
    script = PYTHON_CLIENT / "member_flow.py"
    run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--config-file=",
        "--cache-dir",
        os.devnull,
        "--follow-imports=silent",
        script,
        cwd=tmp_path,
        env={"MYPYPATH": str(generated)},
    )
    python = client_venv_python()
    run(python, "-m", "pip", "install", "--quiet", "--no-build-isolation", generated, cwd=tmp_path)

    output = run(python, script, server, member.username, PASSWORD, photo, cwd=tmp_path, timeout=FLOW_TIMEOUT)

    assert_three_result_images(output.split(), server)


def npm_ci() -> None:
    """node_modules as package-lock.json says, installed again only when the lock changes."""
    lock = (TYPESCRIPT_CLIENT / "package-lock.json").read_bytes()
    stamp = TYPESCRIPT_CLIENT / "node_modules" / ".installed-lock"
    digest = hashlib.sha256(lock).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        run("npm", "ci", "--no-audit", "--no-fund", cwd=TYPESCRIPT_CLIENT)
        stamp.write_text(digest)


def test_typescript_client_runs_the_member_flow(exclusive: None, server: str, member: User, photo: Path) -> None:
    npm_ci()
    run("node", "generate.mjs", f"{server}/api/schema", cwd=TYPESCRIPT_CLIENT)
    run("npm", "run", "--silent", "typecheck", cwd=TYPESCRIPT_CLIENT)
    run("npm", "run", "--silent", "build", "--", "--noCheck", cwd=TYPESCRIPT_CLIENT)  # checked just above

    output = run(
        "node",
        "dist/member-flow.js",
        server,
        member.username,
        PASSWORD,
        photo,
        cwd=TYPESCRIPT_CLIENT,
        timeout=FLOW_TIMEOUT,
    )

    assert_three_result_images(output.split(), server)
