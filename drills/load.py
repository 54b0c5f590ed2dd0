"""Load through the HTTP API, as members do: log in, upload a photo, create tasks. Every answer is
recorded (when, what, status, whether it was the envelope) for the verdict's "no 5xx outside the
outage" check."""

from __future__ import annotations

import io
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from PIL import Image

PASSWORD = "drill-pass-2026"


@dataclass(frozen=True)
class Answer:
    at: float
    what: str
    status: int  # 0: no answer at all (connection refused or timed out)
    envelope: bool
    code: int | None
    task_id: str | None


@dataclass
class Recorder:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, what: str, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        try:
            response = requests.request(method, url, timeout=30, **kwargs)
        except requests.RequestException:
            self._add(Answer(time.time(), what, 0, False, None, None))
            return None
        envelope, code, task_id = False, None, None
        try:
            body = response.json()
            envelope = isinstance(body, dict) and "success" in body
            if envelope and not body["success"]:
                code = body["error"]["code"]
            elif envelope and isinstance(body.get("data"), dict):
                task_id = body["data"].get("id") if what == "create" else None
        except ValueError:
            pass
        self._add(Answer(time.time(), what, response.status_code, envelope, code, task_id))
        return response

    def _add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)


def photo(seed: int = 0, side: int = 192) -> bytes:
    """A small product photo (different per seed), JPEG."""
    image = Image.new("RGB", (side, side), (250, 250, 250))
    inner = Image.new("RGB", (side // 2, side // 2), ((seed * 47) % 200, (seed * 91) % 200, 120))
    image.paste(inner, (side // 4, side // 4))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class Member:
    username: str
    token: str
    upload_url: str


class Load:
    def __init__(self, base_url: str, recorder: Recorder) -> None:
        self.base_url = base_url
        self.recorder = recorder

    def login(self, username: str) -> str:
        response = self.recorder.call(
            "login", "POST", f"{self.base_url}/api/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert response is not None and response.status_code == 200, response and response.text
        token: str = response.json()["data"]["token"]
        return token

    def member(self, username: str, seed: int = 0) -> Member:
        token = self.login(username)
        response = self.recorder.call(
            "upload",
            "POST",
            f"{self.base_url}/api/media/upload",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("photo.jpg", photo(seed), "image/jpeg")},
        )
        assert response is not None and response.status_code == 201, response and response.text
        return Member(username, token, response.json()["data"]["url"])

    def create(self, member: Member, task_type: str) -> str | None:
        body: dict[str, Any] = {"type": task_type, "inputImageUrl": member.upload_url}
        if task_type == "model_pose12":
            body["params"] = {"scene": "studio", "category": "dress"}
        response = self.recorder.call(
            "create",
            "POST",
            f"{self.base_url}/api/task/create",
            json=body,
            headers={"Authorization": f"Bearer {member.token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        if response is None or response.status_code != 201:
            return None
        task_id: str = response.json()["data"]["id"]
        return task_id

    def burst(self, members: list[Member], task_type: str, count: int, *, threads: int = 8) -> list[str]:
        """`count` creates spread over `members`, `threads` at a time; the ids of the tasks created."""
        with ThreadPoolExecutor(threads) as pool:
            created = pool.map(lambda n: self.create(members[n % len(members)], task_type), range(count))
            return [task_id for task_id in created if task_id]

    def paced(self, members: list[Member], task_type: str, *, seconds: float, every: float) -> list[str]:
        """One create every `every` seconds for `seconds`, each in its own thread (a slow answer
        does not hold up the next request)."""
        created: list[str] = []
        lock = threading.Lock()

        def one(n: int) -> None:
            task_id = self.create(members[n % len(members)], task_type)
            if task_id:
                with lock:
                    created.append(task_id)

        workers = []
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            worker = threading.Thread(target=one, args=(n,))
            worker.start()
            workers.append(worker)
            n += 1
            time.sleep(every)
        for worker in workers:
            worker.join()
        return created
