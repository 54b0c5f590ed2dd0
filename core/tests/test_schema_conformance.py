"""The API against its own OpenAPI document: schemathesis generates requests for every operation
of /api/schema (valid and invalid ones), sends each as a member with a token and without a token,
in process through the WSGI application (no network), and checks that no answer is a 5xx and that
every answer is documented: its status code, content type, headers and body schema."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from media.tests.images import product_photo

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Per operation and generation mode: about 400 requests per operation, 1.5 minutes in all on a
# 2-core machine.
MAX_EXAMPLES = 150
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SENT: Counter[str] = Counter()


# Read at collection: the document needs no database (its view has no authentication).
schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", WSGIHandler())
schema.config.generation.update(modes=list(GenerationMode), max_examples=MAX_EXAMPLES, database="none")


@pytest.fixture(scope="module", autouse=True)
def _reached_the_views() -> Iterator[None]:
    """A run where every answer was a 401 or a 404 would prove little: some must be 2xx."""
    yield
    if SENT:
        assert SENT["member 2xx"] and SENT["member, own ids 2xx"] and SENT["anonymous 4xx"], dict(SENT)


@dataclass(frozen=True)
class Own:
    """A member's token, one of its uploads and one of its tasks: generated ids and URLs name
    nothing, so each request is sent once more with these, to reach the 2xx answers too."""

    authorization: str
    upload_url: str
    task_id: str


@pytest.fixture
def own(member: User, monkeypatch: pytest.MonkeyPatch) -> Iterator[Own]:
    authorization = f"Bearer {RefreshToken.for_user(member).access_token}"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    photo = SimpleUploadedFile("p.png", product_photo(), "image/png")
    upload_url = client.post("/api/media/upload", {"file": photo}, format="multipart").json()["data"]["url"]
    task = client.post("/api/task/create", {"type": "basic_clean", "inputImageUrl": upload_url}, format="json")
    # Throttles high enough that generated requests reach the views, not 4029.
    rates = dict.fromkeys(SimpleRateThrottle.THROTTLE_RATES, "100000/min")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    # Requests run inside the test's transaction, as with Django's test client: the WSGI handler
    # must not close the connection at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield Own(authorization, upload_url, task.json()["data"]["id"])
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def send(case: Any, label: str, authorization: str | None, checks: list[Any]) -> None:
    headers = {name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"}
    if authorization:
        headers["Authorization"] = authorization
    case.headers = headers
    response = case.call_and_validate(checks=checks)
    SENT[f"{label} {response.status_code // 100}xx"] += 1


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_is_documented_and_none_is_a_5xx(case: Any, own: Own) -> None:
    checks = CHECKS
    # A long-poll (`GET /api/task/{id}?wait=N`) on a task that does not change would spend N
    # seconds per request here; its answers are the same without it (tasks' tests cover waiting).
    if isinstance(case.query, dict) and case.query.pop("wait", None) is not None:
        checks = [c for c in CHECKS if c is not negative_data_rejection]
    send(case, "anonymous", None, checks)
    send(case, "member", own.authorization, checks)
    names_a_task = "task_id" in (case.path_parameters or {})
    names_an_image = isinstance(case.body, dict) and "inputImageUrl" in case.body
    if names_a_task:
        case.path_parameters["task_id"] = own.task_id
    if names_an_image:
        case.body["inputImageUrl"] = own.upload_url
    if names_a_task or names_an_image:
        # The generated value that made a negative case invalid may be the one just replaced.
        send(case, "member, own ids", own.authorization, [c for c in CHECKS if c is not negative_data_rejection])
