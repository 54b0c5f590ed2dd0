"""The simulator's in-memory state and its rules: settings, fault modes, tasks, counters, webhooks.

Fault modes (fields of `SimSettings`, set on the command line or with `POST /_sim/config`):

- `latency`: seconds added before every API answer.
- `queue_time` / `run_time`: seconds a new task answers 813 (queued), then 804 (running).
- `fail`: new tasks end with 805 (a KSampler error); `fail_tasks`: these task ids end with 805.
- `never_finish`: new tasks answer 804 forever and never call their webhook.
- `queue_full` (count): the next N runs answer 421; `concurrency`: 421 while that many tasks are busy.
- `http_5xx` (count): the next N API calls answer an HTML 502/500 page, alternating.
- `malformed` (count): the next N API calls answer truncated JSON.
- `error_code` with `error_count` (count): the next N API calls answer that business code.
- `legacy_pending`: pending tasks answer code 0 with the 804/813 `msg` strings.
- `validation_error`: runs report `node_errors` in `promptTips`.
- `webhook` (off: never call `webhookUrl`), `webhook_delay`, `webhook_retries`, `webhook_retry_interval`.
- `chaos` (probability 0-1, with `chaos_seed`): each API call answers, with that probability, one of an
  HTML 5xx page, truncated JSON, a slow answer (`chaos_slow` seconds) or, for a run, 421; and each new
  job, with that probability, fails with 805, never finishes, or loses its webhook. What fired is
  counted in `chaos` of the snapshot. The fault drills (`python -m drills chaos`) use it.

Counts go down as they fire; checks run in the order 5xx, malformed, error code. An undecodable upload
fails its task at the LoadImage node, and a cancelled task reads as failed. `snapshot()` (`GET /_sim/state`)
shows the counters: calls per path, uploads, cancellations (and cancel requests per task id), webhook
deliveries, request keys per path, the peak number of jobs queued or running at once (`peakBusy`) and
the 421 answers given;
`reset()` (`POST /_sim/reset`) restores the start-up settings and forgets everything else.
"""

from __future__ import annotations

import dataclasses
import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from devtools.runninghub_sim import wire
from devtools.runninghub_sim.images import derived_png, load_error
from devtools.runninghub_sim.wire import Answer


@dataclass(frozen=True)
class SimSettings:
    """Behaviour knobs. Counters (`queue_full`, `http_5xx`, `malformed`) count down as they fire."""

    api_key: str = "sim-api-key"
    public_url: str = ""
    latency: float = 0.0
    queue_time: float = 0.0
    run_time: float = 3.0
    fail: bool = False
    fail_tasks: tuple[str, ...] = ()
    never_finish: bool = False
    queue_full: int = 0
    concurrency: int = 0
    http_5xx: int = 0
    malformed: int = 0
    error_code: int = 0
    error_count: int = 0
    legacy_pending: bool = False
    validation_error: bool = False
    webhook: bool = True
    webhook_delay: float = 0.0
    webhook_retries: int = 2
    webhook_retry_interval: float = 0.5
    prompt_node_id: str = "103"
    image_node_id: str = "74"
    output_node_id: str = "136"
    output_count: int = 12
    chaos: float = 0.0
    chaos_seed: int = 0
    chaos_slow: float = 3.0


def merge_settings(settings: SimSettings, changes: dict[str, Any]) -> SimSettings:
    """`settings` with `changes` applied, each value checked against the field's type."""
    known = {f.name: f for f in dataclasses.fields(SimSettings)}
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        default = known[name].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number")
            value = float(value)
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"{name} must be a list of strings")
            value = tuple(value)
        elif not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        checked[name] = value
    return dataclasses.replace(settings, **checked)


@dataclass
class SimTask:
    task_id: str
    client_id: str
    app_id: str
    created_at: float
    queue_time: float
    run_time: float
    never_finish: bool
    fail: bool
    image_name: str | None
    prompt: str
    webhook_url: str | None
    load_error: str = ""
    cancelled: bool = False
    webhook_lost: bool = False


@dataclass
class _State:
    tasks: dict[str, SimTask] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    cancelled: list[str] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    images: dict[tuple[str, int], bytes] = field(default_factory=dict)
    request_keys: dict[str, list[str]] = field(default_factory=dict)
    # How many jobs were queued or running at once at most, and how many runs got 421.
    peak_busy: int = 0
    queue_full_answers: int = 0
    cancel_requests: Counter[str] = field(default_factory=Counter)
    chaos: Counter[str] = field(default_factory=Counter)


class RunningHubSimulator:
    """The simulator's state and rules, independent of the HTTP plumbing. Thread-safe."""

    def __init__(self, settings: SimSettings, base_url: str) -> None:
        self._initial = settings
        self._settings = settings
        self._base_url = base_url
        self._state = _State()
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._last_task_id = 0
        self._chaos = random.Random(settings.chaos_seed)

    @property
    def settings(self) -> SimSettings:
        with self._lock:
            return self._settings

    @property
    def public_url(self) -> str:
        with self._lock:
            return self._result_base()

    def configure(self, changes: dict[str, Any]) -> SimSettings:
        with self._lock:
            self._settings = merge_settings(self._settings, changes)
            if "chaos_seed" in changes:
                self._chaos.seed(self._settings.chaos_seed)
            return self._settings

    def reset(self) -> None:
        self._cancel_timers()
        with self._lock:
            self._settings = self._initial
            self._state = _State()

    def shutdown(self) -> None:
        self._cancel_timers()

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            return {
                "config": dataclasses.asdict(self._settings),
                "tasks": [
                    {
                        "taskId": task.task_id,
                        "webappId": task.app_id,
                        "status": self._status(task, now),
                        "prompt": task.prompt,
                        "imageName": task.image_name,
                        "webhookUrl": task.webhook_url,
                        "cancelled": task.cancelled,
                    }
                    for task in self._state.tasks.values()
                ],
                "uploads": sorted(self._state.uploads),
                "calls": dict(self._state.calls),
                "cancelled": list(self._state.cancelled),
                "webhooks": [dict(delivery) for delivery in self._state.webhooks],
                "requestKeys": dict(self._state.request_keys),
                "peakBusy": self._state.peak_busy,
                "queueFullAnswers": self._state.queue_full_answers,
                "cancelRequests": dict(self._state.cancel_requests),
                "chaos": dict(self._state.chaos),
            }

    def handle_api(self, path: str, body: bytes, content_type: str) -> Answer:
        with self._lock:
            self._state.calls[path] += 1
            settings = self._settings
            fault = self._take_fault()
            delay = settings.latency
            if fault is None and settings.chaos:
                fault, slow = self._chaos_fault(path, settings)
                delay += slow
        if delay:
            time.sleep(delay)
        if fault is not None:
            return fault
        if path == wire.UPLOAD_PATH:
            return self._upload(body, content_type)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return wire.error(301)
        if not isinstance(payload, dict):
            return wire.error(301)
        with self._lock:
            self._state.request_keys[path] = sorted(payload)
        key = payload.get("apikey") if path == wire.ACCOUNT_STATUS_PATH else None
        if (key or payload.get("apiKey")) != settings.api_key:
            return wire.error(802)
        handlers: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "/task/openapi/ai-app/run": self._run_app,
            "/task/openapi/create": self._create,
            "/task/openapi/outputs": self._outputs,
            "/task/openapi/status": self._task_status,
            "/task/openapi/cancel": self._cancel,
            wire.ACCOUNT_STATUS_PATH: self._account_status,
        }
        return handlers[path](payload)

    def result_png(self, task_id: str, index: int) -> bytes | None:
        with self._lock:
            self._state.calls["/cdn"] += 1
            task = self._state.tasks.get(task_id)
            if task is None or not 1 <= index <= self._settings.output_count:
                return None
            if self._status(task, time.monotonic()) != "SUCCESS":
                return None
            cached = self._state.images.get((task_id, index))
            source = self._state.uploads.get(task.image_name or "")
        if cached is not None:
            return cached
        png = derived_png(source, task_id, index)
        with self._lock:
            self._state.images[(task_id, index)] = png
        return png

    def _take_fault(self) -> Answer | None:
        settings = self._settings
        if settings.http_5xx:
            self._settings = dataclasses.replace(settings, http_5xx=settings.http_5xx - 1)
            return wire.gateway_error(
                HTTPStatus.BAD_GATEWAY if settings.http_5xx % 2 else HTTPStatus.INTERNAL_SERVER_ERROR
            )
        if settings.malformed:
            self._settings = dataclasses.replace(settings, malformed=settings.malformed - 1)
            return wire.truncated_json()
        if settings.error_count and settings.error_code:
            self._settings = dataclasses.replace(settings, error_count=settings.error_count - 1)
            return wire.error(settings.error_code)
        return None

    def _chaos_fault(self, path: str, settings: SimSettings) -> tuple[Answer | None, float]:
        """With probability `chaos`, one fault for this call (under the lock): an answer, or a delay."""
        if self._chaos.random() >= settings.chaos:
            return None, 0.0
        kinds = ["http_5xx", "malformed", "slow"] + (["queue_full"] if path == "/task/openapi/ai-app/run" else [])
        kind = self._chaos.choice(kinds)
        self._state.chaos[kind] += 1
        if kind == "http_5xx":
            return wire.gateway_error(HTTPStatus.BAD_GATEWAY), 0.0
        if kind == "malformed":
            return wire.truncated_json(), 0.0
        if kind == "queue_full":
            self._state.queue_full_answers += 1
            return wire.error(421), 0.0
        return None, settings.chaos_slow

    def _chaos_job(self, settings: SimSettings) -> str:
        """With probability `chaos`, what goes wrong with a new job (under the lock): "" for nothing."""
        if not settings.chaos or self._chaos.random() >= settings.chaos:
            return ""
        kind = self._chaos.choice(["fail", "never_finish", "webhook_lost"])
        self._state.chaos[kind] += 1
        return kind

    def _upload(self, body: bytes, content_type: str) -> Answer:
        try:
            form = wire.parse_multipart(body, content_type)
        except ValueError:
            return wire.error(301)
        key_part = form.get("apiKey")
        if key_part is None or key_part.content.decode(errors="replace") != self.settings.api_key:
            return wire.error(802)
        file_part = form.get("file")
        if file_part is None or not file_part.content:
            return wire.error(301)
        if len(file_part.content) > wire.MAX_UPLOAD_BYTES:
            return wire.error(809)
        file_name, answer = wire.upload_answer(file_part.content, file_part.filename)
        with self._lock:
            self._state.uploads[file_name] = file_part.content
        return answer

    def _run_app(self, payload: dict[str, Any]) -> Answer:
        app_id = payload.get("webappId")
        if not isinstance(app_id, str | int) or isinstance(app_id, bool) or not str(app_id).strip():
            return wire.error(301)
        return self._start(payload, str(app_id), nodes_required=True)

    def _create(self, payload: dict[str, Any]) -> Answer:
        workflow_id = payload.get("workflowId")
        if not isinstance(workflow_id, str | int) or isinstance(workflow_id, bool) or not str(workflow_id):
            return wire.error(301)
        return self._start(payload, str(workflow_id), nodes_required=False)

    def _start(self, payload: dict[str, Any], app_id: str, *, nodes_required: bool) -> Answer:
        nodes = payload.get("nodeInfoList")
        if nodes is None and not nodes_required:
            nodes = []
        if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
            return wire.error(803)
        webhook_url = payload.get("webhookUrl")
        if webhook_url and (not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))):
            return wire.error(301)
        with self._lock:
            settings = self._settings
            prompt = wire.field_value(nodes, settings.prompt_node_id, "text")
            image_name = wire.field_value(nodes, settings.image_node_id, "image")
            image_known = image_name is not None and image_name in self._state.uploads
            if nodes_required and (prompt is None or not image_known):
                return wire.error(803)
            if image_name is not None and not image_known:
                return wire.error(803)
            now = time.monotonic()
            if settings.queue_full or (settings.concurrency and self._busy_count(now) >= settings.concurrency):
                if settings.queue_full:
                    self._settings = dataclasses.replace(settings, queue_full=settings.queue_full - 1)
                self._state.queue_full_answers += 1
                return wire.error(421)
            job_fault = self._chaos_job(settings)
            task = SimTask(
                task_id=self._new_task_id(),
                client_id=secrets.token_hex(16),
                app_id=app_id,
                created_at=now,
                queue_time=settings.queue_time,
                run_time=settings.run_time,
                never_finish=settings.never_finish or job_fault == "never_finish",
                fail=settings.fail or job_fault == "fail",
                image_name=image_name,
                prompt=prompt or "",
                webhook_url=webhook_url or None,
                load_error=load_error(self._state.uploads.get(image_name or "")),
                webhook_lost=job_fault == "webhook_lost",
            )
            self._state.tasks[task.task_id] = task
            self._state.peak_busy = max(self._state.peak_busy, self._busy_count(now))
            wss_url = self._wss_url(task)
        if task.webhook_url and settings.webhook and not task.never_finish and not task.webhook_lost:
            self._schedule_webhook(task, settings)
        return wire.run_answer(
            task_id=task.task_id,
            client_id=task.client_id,
            wss_url=wss_url,
            queued=bool(task.queue_time),
            output_node_id=settings.output_node_id,
            node_errors=wire.image_not_in_list(settings.image_node_id) if settings.validation_error else {},
        )

    def _outputs(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._state.tasks.get(str(payload.get("taskId")))
            if task is None:
                return wire.error(807)
            return self._outputs_answer(task)

    def _outputs_answer(self, task: SimTask) -> Answer:
        status = self._status(task, time.monotonic())
        if status in ("QUEUED", "RUNNING"):
            return wire.pending_answer(status, legacy=self._settings.legacy_pending, wss_url=self._wss_url(task))
        if status == "FAILED":
            return self._failed_answer(task)
        return wire.outputs_answer(
            file_urls=[
                wire.result_url(self._result_base(), task.task_id, index)
                for index in range(1, self._settings.output_count + 1)
            ],
            cost=str(round(task.queue_time + task.run_time)),
            node_id=self._settings.output_node_id,
        )

    def _task_status(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._state.tasks.get(str(payload.get("taskId")))
            if task is None:
                return wire.error(807)
            return wire.envelope(0, "success", self._status(task, time.monotonic()))

    def _cancel(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            self._state.cancel_requests[str(payload.get("taskId"))] += 1
            task = self._state.tasks.get(str(payload.get("taskId")))
            if task is None:
                return wire.error(423)
            if self._status(task, time.monotonic()) in ("QUEUED", "RUNNING"):
                task.cancelled = True
                self._state.cancelled.append(task.task_id)
        return wire.envelope(0, "success")

    def _account_status(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            busy = self._busy_count(time.monotonic())
        return wire.account_status_answer(busy)

    def _status(self, task: SimTask, now: float) -> str:
        if task.cancelled:
            return "FAILED"
        elapsed = now - task.created_at
        if elapsed < task.queue_time:
            return "QUEUED"
        if task.never_finish or elapsed < task.queue_time + task.run_time:
            return "RUNNING"
        if task.fail or task.load_error or task.task_id in self._settings.fail_tasks:
            return "FAILED"
        return "SUCCESS"

    def _busy_count(self, now: float) -> int:
        return sum(self._status(task, now) in ("QUEUED", "RUNNING") for task in self._state.tasks.values())

    def _failed_answer(self, task: SimTask) -> Answer:
        if task.cancelled:
            node_name, exception_type, message = "", "InterruptedError", "Task was cancelled by the user"
        elif task.load_error:
            node_name, exception_type, message = "LoadImage", "UnidentifiedImageError", task.load_error
        else:
            node_name, exception_type = "KSampler", "RuntimeError"
            message = "CUDA out of memory while sampling (simulated failure)"
        return wire.failed_answer(
            node_name=node_name, exception_type=exception_type, message=message, node_id=self._settings.output_node_id
        )

    def _new_task_id(self) -> str:
        # Real ids are 19-digit snowflakes; keep them increasing and unique within this process.
        candidate = max(self._last_task_id + 1, 1_900_000_000_000_000_000 + time.time_ns() // 1000)
        self._last_task_id = candidate
        return str(candidate)

    def _result_base(self) -> str:
        return (self._settings.public_url or self._base_url).rstrip("/")

    def _wss_url(self, task: SimTask) -> str:
        return wire.wss_url(self._result_base(), client_id=task.client_id, app_id=task.app_id)

    def _schedule_webhook(self, task: SimTask, settings: SimSettings) -> None:
        delay = task.queue_time + task.run_time + settings.webhook_delay
        timer = threading.Timer(delay, self._deliver_webhook, args=(task.task_id, 0))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def _deliver_webhook(self, task_id: str, attempt: int) -> None:
        with self._lock:
            task = self._state.tasks.get(task_id)
            if task is None or task.webhook_url is None:
                return
            url = task.webhook_url
            event_data = self._outputs_answer(task).body.decode()
            settings = self._settings
        # Only http(s) webhooks are accepted at run time, so urlopen never sees file: or custom schemes.
        request = urllib.request.Request(  # noqa: S310
            url,
            data=wire.webhook_body(task_id, event_data),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        delivery: dict[str, Any] = {
            "taskId": task_id,
            "url": url,
            "attempt": attempt + 1,
            "eventData": event_data,
        }
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                delivery["status"] = response.status
        except urllib.error.HTTPError as exc:
            delivery["status"] = exc.code
        except (OSError, ValueError) as exc:
            delivery["status"] = None
            delivery["error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if self._state.tasks.get(task_id) is not task:
                return
            self._state.webhooks.append(delivery)
        delivered = isinstance(delivery["status"], int) and 200 <= delivery["status"] < 300
        if not delivered and attempt < settings.webhook_retries:
            retry = threading.Timer(settings.webhook_retry_interval, self._deliver_webhook, args=(task_id, attempt + 1))
            retry.daemon = True
            with self._lock:
                self._timers.append(retry)
            retry.start()

    def _cancel_timers(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
