"""Who may call what: every `/api/` route and method of the URL conf × every kind of caller → the
answer expected. The routes are read from the resolver, so a new endpoint without a row in
EXPECTED fails `test_every_route_and_method_has_an_expectation` until someone decides who may call
it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.tests.factories import PASSWORD, make_member, make_user, support_group
from core.tests.routes import api_routes
from media.tests.images import product_photo

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
MEMBER = "member"  # owns the task and the upload the requests name
OTHER_MEMBER = "other member"
NON_MEMBER = "non-member"
STAFF = "staff without the task permission"
SUPPORT = "support"  # the `support` group of accounts' migration
SUPERUSER = "superuser"
SUBJECTS = [ANONYMOUS, MEMBER, OTHER_MEMBER, NON_MEMBER, STAFF, SUPPORT, SUPERUSER]

Outcome = tuple[int, int | None]  # HTTP status, envelope error code
OK: Outcome = (200, None)
CREATED: Outcome = (201, None)
BAD_PARAMS: Outcome = (400, 4002)
NOT_LOGGED_IN: Outcome = (401, 1001)
FORBIDDEN: Outcome = (403, 4003)
WRONG_STATE: Outcome = (409, 4005)


def everyone(outcome: Outcome) -> dict[str, Outcome]:
    return dict.fromkeys(SUBJECTS, outcome)


def signed_in(outcome: Outcome, **others: Outcome) -> dict[str, Outcome]:
    """Anonymous is 1001; every signed-in subject gets `outcome` unless named in `others`."""
    table = {**everyone(outcome), ANONYMOUS: NOT_LOGGED_IN}
    table.update({name.replace("_", " "): value for name, value in others.items()})
    return table


def owner_only(outcome: Outcome) -> dict[str, Outcome]:
    return {**everyone(FORBIDDEN), ANONYMOUS: NOT_LOGGED_IN, MEMBER: outcome}


@dataclass
class World:
    users: dict[str, User]
    upload_url: str
    task_id: str


@dataclass(frozen=True)
class Case:
    expect: dict[str, Outcome]
    body: Callable[[World], Any] | None = None
    path: Callable[[World], dict[str, str]] = lambda world: {}
    query: str = ""
    format: str = "json"


def task_path(world: World) -> dict[str, str]:
    return {"task_id": world.task_id}


def new_task(world: World) -> dict[str, Any]:
    return {"type": "basic_clean", "inputImageUrl": world.upload_url}


EXPECTED: dict[tuple[str, str], Case] = {
    ("auth-login", "POST"): Case(
        everyone(OK), body=lambda w: {"username": w.users[MEMBER].username, "password": PASSWORD}
    ),
    ("auth-refresh", "POST"): Case(
        everyone(OK), body=lambda w: {"refresh": str(RefreshToken.for_user(w.users[MEMBER]))}
    ),
    # The refresh token is the proof (README, Security model: tokens); no login is needed.
    ("auth-logout", "POST"): Case(
        everyone(OK), body=lambda w: {"refresh": str(RefreshToken.for_user(w.users[MEMBER]))}
    ),
    ("auth-me", "GET"): Case(signed_in(OK)),
    ("quota-list", "GET"): Case(signed_in(OK)),
    # Uploading needs a login, not a membership (ordering a job does).
    ("media-upload", "POST"): Case(
        signed_in(CREATED),
        body=lambda w: {"file": SimpleUploadedFile("p.png", product_photo(), "image/png")},
        format="multipart",
    ),
    ("task-create", "POST"): Case(
        # Another member may not order a job on this member's upload; non-members may order nothing.
        {**signed_in(FORBIDDEN), MEMBER: CREATED, OTHER_MEMBER: BAD_PARAMS},
        body=new_task,
    ),
    ("task-batch", "POST"): Case(
        {**signed_in(FORBIDDEN), MEMBER: CREATED, OTHER_MEMBER: BAD_PARAMS},
        body=lambda w: {"items": [new_task(w), new_task(w)]},
    ),
    ("task-list", "GET"): Case(signed_in(OK)),
    ("task-detail", "GET"): Case(owner_only(OK), path=task_path),
    ("task-cancel", "POST"): Case(owner_only(OK), path=task_path),
    # The world's task is pending: only its owner gets as far as the state check.
    ("task-retry", "POST"): Case(owner_only(WRONG_STATE), path=task_path),
    ("task-archive", "GET"): Case(owner_only(WRONG_STATE), path=task_path),
    ("task-set-status", "PUT"): Case(
        {**signed_in(FORBIDDEN), SUPPORT: OK, SUPERUSER: OK},
        path=task_path,
        body=lambda w: {"status": "failed", "errorMessage": "support"},
    ),
    # RunningHub's callback carries no login; its secret is the URL's token.
    ("webhook-runninghub", "POST"): Case(
        everyone(OK), query="?token=test-webhook-secret", body=lambda w: {"taskId": "1", "eventData": "{}"}
    ),
    ("schema", "GET"): Case(everyone(OK)),
    ("docs", "GET"): Case(everyone(OK)),
}


def test_every_route_and_method_has_an_expectation() -> None:
    found = {(route.name, method) for route in api_routes() for method in route.methods}
    assert sorted(found - set(EXPECTED)) == [], "routes without a row in EXPECTED"
    assert sorted(set(EXPECTED) - found) == [], "rows in EXPECTED for routes that are gone"


def test_every_row_names_every_subject() -> None:
    for key, case in EXPECTED.items():
        assert set(case.expect) == set(SUBJECTS), key


def client_of(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def world(settings: Any) -> World:
    settings.RUNNINGHUB_WEBHOOK_SECRET = "test-webhook-secret"
    support = make_user(is_staff=True)
    support.groups.add(support_group())
    users = {
        MEMBER: make_member(),
        OTHER_MEMBER: make_member(),
        NON_MEMBER: make_user(),
        STAFF: make_user(is_staff=True),
        SUPPORT: support,
        SUPERUSER: make_user(is_staff=True, is_superuser=True),
    }
    owner = client_of(users[MEMBER])
    photo = SimpleUploadedFile("p.png", product_photo(), "image/png")
    upload = owner.post("/api/media/upload", {"file": photo}, format="multipart")
    assert upload.status_code == 201, upload.content
    url = upload.json()["data"]["url"]
    task = owner.post("/api/task/create", {"type": "basic_clean", "inputImageUrl": url}, format="json")
    assert task.status_code == 201, task.content
    return World(users=users, upload_url=url, task_id=task.json()["data"]["id"])


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda key: f"{key[1]} {key[0]}")
def test_who_may_call_what(world: World, key: tuple[str, str], subject: str) -> None:
    name, method = key
    case = EXPECTED[key]
    route = next(route for route in api_routes() if route.name == name)
    client = client_of(world.users.get(subject))
    path = route.path(**case.path(world)) + case.query
    body = case.body(world) if case.body else None
    response = getattr(client, method.lower())(path, body, format=case.format if body is not None else None)
    status, code = case.expect[subject]
    assert response.status_code == status, (subject, response.content[:300])
    if code is not None:
        assert response.json()["error"]["code"] == code
