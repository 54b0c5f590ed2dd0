"""A member's flow through the Python client generated from the OpenAPI schema (README, "Clients"):
log in, check the quota, upload a product photo, order `basic_clean`, wait for it, print the
result URLs.

    python clients/python/member_flow.py http://127.0.0.1:8000 <username> <password> photo.jpg

It uses the generated functions and models only (no hand-written HTTP), so it is the example to
copy, and core/tests/test_generated_clients.py runs it against a live server on every `make test`.
"""

from __future__ import annotations

import mimetypes
import sys
import time
from pathlib import Path
from typing import Protocol, TypeVar

from photo_api_client import AuthenticatedClient, Client
from photo_api_client.api.auth import auth_login
from photo_api_client.api.media import media_upload
from photo_api_client.api.quota import quota_get
from photo_api_client.api.task import task_create, task_get
from photo_api_client.models import (
    ErrorEnvelope,
    LoginInRequest,
    TaskCreateRequest,
    TaskStatusEnum,
    TaskTypeEnum,
    UploadInRequest,
)
from photo_api_client.types import File

POLL_SECONDS = 1.0
FINISHED = (TaskStatusEnum.SUCCESS, TaskStatusEnum.FAILED)

Payload = TypeVar("Payload", covariant=True)


class Envelope(Protocol[Payload]):
    """Every 2xx answer: `{success: true, data: <payload>}`."""

    @property
    def data(self) -> Payload: ...


class ApiError(Exception):
    """An error answer (`{success: false, error: {code, message}}`, SPEC §2)."""


def unwrap(answer: Envelope[Payload] | ErrorEnvelope | None) -> Payload:
    if isinstance(answer, ErrorEnvelope):
        raise ApiError(f"{answer.error.code} {answer.error.message}")
    if answer is None:
        raise ApiError("an answer the schema does not describe")
    return answer.data


def member_flow(base_url: str, username: str, password: str, photo: Path, *, timeout: float = 120) -> list[str]:
    """The result URLs of a `basic_clean` job on `photo`."""
    with Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous:
        login = unwrap(auth_login.sync(client=anonymous, body=LoginInRequest(username=username, password=password)))

    with (
        AuthenticatedClient(base_url=base_url, token=login.token, raise_on_unexpected_status=True) as client,
        photo.open("rb") as image,
    ):
        quota = unwrap(quota_get.sync(client=client))
        if quota.remaining < 1:
            raise ApiError("no quota left: renew the membership first")
        upload = unwrap(
            media_upload.sync(
                client=client,
                body=UploadInRequest(
                    file=File(payload=image, file_name=photo.name, mime_type=mimetypes.guess_type(photo.name)[0])
                ),
            )
        )
        task = unwrap(
            task_create.sync(
                client=client, body=TaskCreateRequest(type_=TaskTypeEnum.BASIC_CLEAN, input_image_url=upload.url)
            )
        )
        deadline = time.monotonic() + timeout
        while task.status not in FINISHED:
            if time.monotonic() > deadline:
                raise ApiError(f"task {task.id} still {task.status} after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
            task = unwrap(task_get.sync(client=client, task_id=task.id))

    if task.status != TaskStatusEnum.SUCCESS:
        raise ApiError(f"task {task.id} failed: {task.error_message}")
    return task.result_urls


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, username, password, photo = argv
    for url in member_flow(base_url, username, password, Path(photo)):
        print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
