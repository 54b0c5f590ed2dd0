"""Fixtures shared by every app's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import make_member, make_user
from aimodel.engines import runninghub_client
from devtools.cos_testing import RunningCos, start_cos_server
from devtools.testing import SimulatorHandle, start_simulator
from media.storage import get_storage
from media.tests.factories import upload_photo
from tasks.progress import typical_run_times_forget

# Every log line of the run is scanned for secrets; one found fails the run (core/tests/logscan.py).
pytest_plugins = ["core.tests.logscan"]


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters and run-time estimates live in the shared cache; each test starts with none."""
    cache.clear()
    typical_run_times_forget()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(api: APIClient) -> Callable[[User], APIClient]:
    """An API client logged in as `user` with a real access token."""
    from rest_framework_simplejwt.tokens import RefreshToken

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return make


@pytest.fixture
def member(db: None) -> User:
    return make_member()


@pytest.fixture
def non_member(db: None) -> User:
    return make_user()


@pytest.fixture
def staff(db: None) -> User:
    """Staff with the task-action permission that the status endpoint requires."""
    from django.contrib.auth.models import Permission

    user = make_user(is_staff=True, username="staffer")
    user.user_permissions.add(Permission.objects.get(codename="run_task_actions"))
    return User.objects.get(pk=user.pk)


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Each test stores files in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    get_storage.cache_clear()
    yield
    get_storage.cache_clear()


@pytest.fixture
def uploaded(member: User, client_for: Callable[[User], APIClient]) -> str:
    """The URL of a product photo `member` uploaded through the API."""
    return upload_photo(client_for(member))


@pytest.fixture
def assert_max_statements() -> Callable[[int], Any]:
    """Like django_assert_max_num_queries, but counts only data statements: psycopg 3 reports
    BEGIN and COMMIT as queries, which the query budgets in the issues do not mean."""
    from contextlib import contextmanager

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")

    @contextmanager
    def budget(limit: int) -> Iterator[None]:
        with CaptureQueriesContext(connection) as captured:
            yield
        statements = [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(control)]
        assert len(statements) <= limit, f"{len(statements)} statements > {limit}:\n" + "\n".join(statements)

    return budget


# Local stand-ins for RunningHub and COS, one each for the whole run; every test starts from a
# reset copy.
SIM_RUN_TIME = 0.2


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorHandle]:
    handle = start_simulator(run_time=SIM_RUN_TIME)
    yield handle
    handle.stop()


@pytest.fixture
def sim(simulator: SimulatorHandle, settings: Any) -> Iterator[SimulatorHandle]:
    """The simulator reset to its start-up settings, with the product's RunningHub client pointed
    at it. Fault modes: `sim.configure(...)` (devtools/runninghub_sim/state.py lists them)."""
    simulator.reset()
    settings.RUNNINGHUB_BASE_URL = simulator.base_url
    settings.RUNNINGHUB_API_KEY = simulator.api_key
    runninghub_client.cache_clear()
    yield simulator
    runninghub_client.cache_clear()


@pytest.fixture(scope="session")
def cos_server() -> Iterator[RunningCos]:
    running = start_cos_server()
    yield running
    running.stop()


@pytest.fixture
def cos(cos_server: RunningCos) -> RunningCos:
    """The COS server reset: empty private buckets, no verdicts, no faults."""
    cos_server.state.reset()
    return cos_server


@pytest.fixture
def cos_storage(cos: RunningCos, settings: Any) -> Iterator[RunningCos]:
    """The product keeps its files (uploads, results) on the local COS server."""
    settings.STORAGE_BACKEND = "cos"
    settings.COS_SECRET_ID = cos.secret_id
    settings.COS_SECRET_KEY = cos.secret_key
    settings.COS_BUCKET = cos.bucket
    settings.COS_REGION = cos.region
    settings.COS_ENDPOINT_URL = cos.endpoint_url
    get_storage.cache_clear()
    yield cos
    get_storage.cache_clear()


@pytest.fixture
def prompt_templates(db: None) -> None:
    """The migration-seeded prompt templates; transactional tests flush tables, seeds included,
    so they are seeded again (idempotently) for the tests that need them."""
    from importlib import import_module

    from django.apps import apps

    import_module("aimodel.migrations.0002_seed_prompt_templates").seed(apps, None)
