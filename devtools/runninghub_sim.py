"""A local stand-in for RunningHub's legacy OpenAPI, for tests and offline development.

It speaks the same wire format as the real service (HTTP 200 with `{code, msg, data}`, 19-digit
string task ids, `promptTips` as a JSON string, 804/813 while a task is busy, 805 with
`failedReason`), produces real PNG results derived from the uploaded input and serves them
itself, and can be told to misbehave (latency, queueing, failures, 421, HTTP 5xx, broken JSON,
tasks that never end, webhooks) from the command line or at run time through `/_sim/*`.

    python -m devtools.runninghub_sim --host 127.0.0.1 --port 8188 --api-key KEY --run-time 3
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageOps

logger = logging.getLogger("runninghub_sim")

MAX_UPLOAD_BYTES = 30 * 1024 * 1024
ERROR_MESSAGES = {
    301: "PARAMS_INVALID",
    415: "TASK_INSTANCE_MAXED",
    421: "TASK_QUEUE_MAXED",
    423: "TASK_NOT_FOUNED",
    433: "VALIDATE_PROMPT_FAILED",
    500: "UNKNOWN_ERROR",
    802: "APIKEY_UNAUTHORIZED",
    803: "APIKEY_INVALID_NODE_INFO",
    807: "APIKEY_TASK_NOT_FOUND",
    808: "APIKEY_UPLOAD_FAILED",
    809: "APIKEY_FILE_SIZE_EXCEEDED",
    901: "WEBAPP_NOT_EXISTS",
}
_RESULT_MAX_SIDE = 512
_CDN_PATH = re.compile(r"^/cdn/(\d+)/(\d+)\.png$")
_API_PATHS = frozenset(
    {
        "/task/openapi/upload",
        "/task/openapi/ai-app/run",
        "/task/openapi/create",
        "/task/openapi/outputs",
        "/task/openapi/status",
        "/task/openapi/cancel",
        "/uc/openapi/accountStatus",
    }
)


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


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class _State:
    tasks: dict[str, SimTask] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    cancelled: list[str] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    images: dict[tuple[str, int], bytes] = field(default_factory=dict)
    request_keys: dict[str, list[str]] = field(default_factory=dict)


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
            }

    def handle_api(self, path: str, body: bytes, content_type: str) -> Answer:
        with self._lock:
            self._state.calls[path] += 1
            settings = self._settings
            fault = self._take_fault()
        if settings.latency:
            time.sleep(settings.latency)
        if fault is not None:
            return fault
        if path == "/task/openapi/upload":
            return self._upload(body, content_type)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _envelope(301, "PARAMS_INVALID")
        if not isinstance(payload, dict):
            return _envelope(301, "PARAMS_INVALID")
        with self._lock:
            self._state.request_keys[path] = sorted(payload)
        key = payload.get("apikey") if path == "/uc/openapi/accountStatus" else None
        if (key or payload.get("apiKey")) != settings.api_key:
            return _envelope(802, "APIKEY_UNAUTHORIZED")
        handlers: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "/task/openapi/ai-app/run": self._run_app,
            "/task/openapi/create": self._create,
            "/task/openapi/outputs": self._outputs,
            "/task/openapi/status": self._task_status,
            "/task/openapi/cancel": self._cancel,
            "/uc/openapi/accountStatus": self._account_status,
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
        png = _derived_png(source, task_id, index)
        with self._lock:
            self._state.images[(task_id, index)] = png
        return png

    def _take_fault(self) -> Answer | None:
        settings = self._settings
        if settings.http_5xx:
            self._settings = dataclasses.replace(settings, http_5xx=settings.http_5xx - 1)
            status = HTTPStatus.BAD_GATEWAY if settings.http_5xx % 2 else HTTPStatus.INTERNAL_SERVER_ERROR
            page = f"<html><body><h1>{status.value} {status.phrase}</h1></body></html>"
            return Answer(status.value, page.encode(), "text/html")
        if settings.malformed:
            self._settings = dataclasses.replace(settings, malformed=settings.malformed - 1)
            return Answer(200, b'{"code": 0, "msg": "success", "data": {"taskId": "19', "application/json")
        if settings.error_count and settings.error_code:
            self._settings = dataclasses.replace(settings, error_count=settings.error_count - 1)
            return _envelope(settings.error_code, ERROR_MESSAGES.get(settings.error_code, "UNKNOWN_ERROR"))
        return None

    def _upload(self, body: bytes, content_type: str) -> Answer:
        try:
            form = parse_multipart(body, content_type)
        except ValueError:
            return _envelope(301, "PARAMS_INVALID")
        key_part = form.get("apiKey")
        if key_part is None or key_part.content.decode(errors="replace") != self.settings.api_key:
            return _envelope(802, "APIKEY_UNAUTHORIZED")
        file_part = form.get("file")
        if file_part is None or not file_part.content:
            return _envelope(301, "PARAMS_INVALID")
        if len(file_part.content) > MAX_UPLOAD_BYTES:
            return _envelope(809, "APIKEY_FILE_SIZE_EXCEEDED")
        extension = _extension(file_part.filename)
        file_name = f"api/{hashlib.sha256(file_part.content).hexdigest()}.{extension}"
        with self._lock:
            self._state.uploads[file_name] = file_part.content
        return _envelope(0, "success", {"fileName": file_name, "fileType": "input"})

    def _run_app(self, payload: dict[str, Any]) -> Answer:
        app_id = payload.get("webappId")
        if not isinstance(app_id, str | int) or isinstance(app_id, bool) or not str(app_id).strip():
            return _envelope(301, "PARAMS_INVALID")
        return self._start(payload, str(app_id), nodes_required=True)

    def _create(self, payload: dict[str, Any]) -> Answer:
        workflow_id = payload.get("workflowId")
        if not isinstance(workflow_id, str | int) or isinstance(workflow_id, bool) or not str(workflow_id):
            return _envelope(301, "PARAMS_INVALID")
        return self._start(payload, str(workflow_id), nodes_required=False)

    def _start(self, payload: dict[str, Any], app_id: str, *, nodes_required: bool) -> Answer:
        nodes = payload.get("nodeInfoList")
        if nodes is None and not nodes_required:
            nodes = []
        if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
            return _envelope(803, "APIKEY_INVALID_NODE_INFO")
        webhook_url = payload.get("webhookUrl")
        if webhook_url and (not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))):
            return _envelope(301, "PARAMS_INVALID")
        with self._lock:
            settings = self._settings
            prompt = _field_value(nodes, settings.prompt_node_id, "text")
            image_name = _field_value(nodes, settings.image_node_id, "image")
            image_known = image_name is not None and image_name in self._state.uploads
            if nodes_required and (prompt is None or not image_known):
                return _envelope(803, "APIKEY_INVALID_NODE_INFO")
            if image_name is not None and not image_known:
                return _envelope(803, "APIKEY_INVALID_NODE_INFO")
            if settings.queue_full:
                self._settings = dataclasses.replace(settings, queue_full=settings.queue_full - 1)
                return _envelope(421, "TASK_QUEUE_MAXED")
            now = time.monotonic()
            if settings.concurrency and self._busy_count(now) >= settings.concurrency:
                return _envelope(421, "TASK_QUEUE_MAXED")
            task = SimTask(
                task_id=self._new_task_id(),
                client_id=secrets.token_hex(16),
                app_id=app_id,
                created_at=now,
                queue_time=settings.queue_time,
                run_time=settings.run_time,
                never_finish=settings.never_finish,
                fail=settings.fail,
                image_name=image_name,
                prompt=prompt or "",
                webhook_url=webhook_url or None,
                load_error=_load_error(self._state.uploads.get(image_name or "")),
            )
            self._state.tasks[task.task_id] = task
            wss_url = self._wss_url(task)
        if task.webhook_url and settings.webhook and not task.never_finish:
            self._schedule_webhook(task, settings)
        tips: dict[str, Any] = {
            "result": True,
            "error": None,
            "outputs_to_execute": [settings.output_node_id],
            "node_errors": {},
        }
        if settings.validation_error:
            tips["result"] = False
            tips["node_errors"] = {
                settings.image_node_id: {
                    "errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "image"}],
                    "class_type": "LoadImage",
                }
            }
        return _envelope(
            0,
            "success",
            {
                "netWssUrl": wss_url,
                "taskId": task.task_id,
                "clientId": task.client_id,
                "taskStatus": "QUEUED" if task.queue_time else "RUNNING",
                "promptTips": json.dumps(tips),
            },
        )

    def _outputs(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._state.tasks.get(str(payload.get("taskId")))
            if task is None:
                return _envelope(807, "APIKEY_TASK_NOT_FOUND")
            return self._outputs_answer(task)

    def _outputs_answer(self, task: SimTask) -> Answer:
        status = self._status(task, time.monotonic())
        if status in ("QUEUED", "RUNNING") and self._settings.legacy_pending:
            return _envelope(0, "APIKEY_TASK_IS_QUEUED" if status == "QUEUED" else "APIKEY_TASK_IS_RUNNING")
        if status == "QUEUED":
            return _envelope(813, "APIKEY_TASK_IS_QUEUED")
        if status == "RUNNING":
            return _envelope(804, "APIKEY_TASK_IS_RUNNING", {"netWssUrl": self._wss_url(task)})
        if status == "FAILED":
            return _envelope(805, "APIKEY_TASK_STATUS_ERROR", {"failedReason": self._failed_reason(task)})
        cost = str(round(task.queue_time + task.run_time))
        files = [
            {
                "fileUrl": f"{self._result_base()}/cdn/{task.task_id}/{index}.png",
                "fileType": "png",
                "taskCostTime": cost,
                "nodeId": self._settings.output_node_id,
                "thirdPartyConsumeMoney": None,
                "consumeMoney": None,
                "consumeCoins": "17",
            }
            for index in range(1, self._settings.output_count + 1)
        ]
        return _envelope(0, "success", files)

    def _task_status(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._state.tasks.get(str(payload.get("taskId")))
            if task is None:
                return _envelope(807, "APIKEY_TASK_NOT_FOUND")
            return _envelope(0, "success", self._status(task, time.monotonic()))

    def _cancel(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            task = self._state.tasks.get(str(payload.get("taskId")))
            if task is None:
                return _envelope(423, "TASK_NOT_FOUNED")
            if self._status(task, time.monotonic()) in ("QUEUED", "RUNNING"):
                task.cancelled = True
                self._state.cancelled.append(task.task_id)
        return _envelope(0, "success")

    def _account_status(self, payload: dict[str, Any]) -> Answer:
        with self._lock:
            busy = self._busy_count(time.monotonic())
        return _envelope(
            0,
            "success",
            {
                "remainCoins": "99999",
                "currentTaskCounts": str(busy),
                "remainMoney": "999",
                "currency": "CNY",
                "apiType": "NORMAL",
            },
        )

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

    def _failed_reason(self, task: SimTask) -> dict[str, str]:
        if task.cancelled:
            node_name, exception_type, message = "", "InterruptedError", "Task was cancelled by the user"
        elif task.load_error:
            node_name, exception_type, message = "LoadImage", "UnidentifiedImageError", task.load_error
        else:
            node_name, exception_type = "KSampler", "RuntimeError"
            message = "CUDA out of memory while sampling (simulated failure)"
        trace = [
            '  File "/workspace/ComfyUI/execution.py", line 328, in process_inputs\n',
            "    result = f(**inputs)\n",
            f"{exception_type}: {message}\n",
        ]
        return {
            "current_outputs": "{}",
            "exception_type": exception_type,
            "node_name": node_name,
            "current_inputs": "{}",
            "traceback": json.dumps(trace),
            "node_id": self._settings.output_node_id,
            "exception_message": message,
        }

    def _new_task_id(self) -> str:
        # Real ids are 19-digit snowflakes; keep them increasing and unique within this process.
        candidate = max(self._last_task_id + 1, 1_900_000_000_000_000_000 + time.time_ns() // 1000)
        self._last_task_id = candidate
        return str(candidate)

    def _result_base(self) -> str:
        return (self._settings.public_url or self._base_url).rstrip("/")

    def _wss_url(self, task: SimTask) -> str:
        host = self._result_base().split("://", 1)[-1]
        return f"ws://{host}/ws/c_instance?clientId={task.client_id}&workflowId={task.app_id}"

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
        body = json.dumps({"event": "TASK_END", "taskId": task_id, "eventData": event_data}).encode()
        # Only http(s) webhooks are accepted at run time, so urlopen never sees file: or custom schemes.
        request = urllib.request.Request(  # noqa: S310
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
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


@dataclass(frozen=True)
class FormPart:
    content: bytes
    filename: str | None


def parse_multipart(body: bytes, content_type: str) -> dict[str, FormPart]:
    """Fields of a multipart/form-data body, by name (the stdlib's `cgi` parser is gone)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise ValueError("not multipart/form-data")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts: dict[str, FormPart] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        head, separator, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without a header block")
        part_headers = Message()
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            header_name, colon, value = line.partition(":")
            if colon:
                part_headers[header_name.strip()] = value.strip()
        name = part_headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("multipart part without a name")
        filename = part_headers.get_param("filename", header="content-disposition")
        parts[name] = FormPart(content=content, filename=filename if isinstance(filename, str) else None)
    raise ValueError("multipart body without a closing boundary")


def _envelope(code: int, msg: str, data: Any = None) -> Answer:
    return Answer(200, json.dumps({"code": code, "msg": msg, "data": data}, ensure_ascii=False).encode())


def _field_value(nodes: list[dict[str, Any]], node_id: str, field_name: str) -> str | None:
    for node in nodes:
        if str(node.get("nodeId")) == node_id and node.get("fieldName") == field_name:
            value = node.get("fieldValue")
            return value if isinstance(value, str) else None
    return None


def _extension(filename: str | None) -> str:
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return suffix if suffix in {"png", "jpg", "jpeg", "webp"} else "png"


def _load_error(data: bytes | None) -> str:
    if data is None:
        return ""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as exc:  # Pillow raises many unrelated types for undecodable input.
        return f"cannot identify image file: {type(exc).__name__}"
    return ""


def _derived_png(source: bytes | None, task_id: str, index: int) -> bytes:
    """Result `index` (1-based): one of twelve distinct transforms of the input, as a real PNG."""
    if source is None:
        base = Image.linear_gradient("L").resize((384, 512)).convert("RGB")
    else:
        with Image.open(io.BytesIO(source)) as opened:
            base = ImageOps.exif_transpose(opened).convert("RGB")
    base.thumbnail((_RESULT_MAX_SIDE, _RESULT_MAX_SIDE))
    width, height = base.size
    transforms: list[Callable[[Image.Image], Image.Image]] = [
        lambda im: im,
        ImageOps.mirror,
        ImageOps.flip,
        lambda im: im.rotate(90, expand=True),
        lambda im: im.rotate(180),
        lambda im: im.rotate(270, expand=True),
        lambda im: im.crop((width // 8, height // 8, width - width // 8, height - height // 8)),
        lambda im: im.crop((0, 0, max(1, width * 3 // 4), max(1, height * 3 // 4))),
        lambda im: im.crop((width // 4, height // 4, width, height)),
        lambda im: ImageOps.grayscale(im).convert("RGB"),
        ImageOps.invert,
        lambda im: ImageOps.posterize(im, 2),
    ]
    shot = transforms[(index - 1) % len(transforms)](base)
    # A per-shot tint and frame keep every result different even for a flat, symmetric input.
    seed = hashlib.sha256(f"{task_id}:{index}".encode()).digest()
    tint = Image.new("RGB", shot.size, (seed[0], seed[1], seed[2]))
    shot = ImageChops.blend(shot, tint, 0.18)
    ImageDraw.Draw(shot).rectangle((0, 0, shot.width - 1, shot.height - 1), outline=(seed[3], 40, 200), width=index)
    output = io.BytesIO()
    shot.save(output, format="PNG")
    return output.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_sim/state":
            self._send(_json_answer(self.server.simulator.snapshot()))
            return
        match = _CDN_PATH.match(path)
        if match:
            png = self.server.simulator.result_png(match.group(1), int(match.group(2)))
            if png is None:
                self._send(Answer(404, b"not found", "text/plain"))
            else:
                self._send(Answer(200, png, "image/png"))
            return
        self._send(Answer(404, b"not found", "text/plain"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES + 1024 * 1024:
            self.close_connection = True
            self._send(_envelope(809, "APIKEY_FILE_SIZE_EXCEEDED"))
            return
        body = self.rfile.read(length)
        simulator = self.server.simulator
        if path in _API_PATHS:
            self._send(simulator.handle_api(path, body, self.headers.get("Content-Type", "")))
        elif path == "/_sim/config":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("settings must be a JSON object")
                settings = simulator.configure(changes)
            except ValueError as exc:
                self._send(_json_answer({"error": str(exc)}, status=400))
                return
            self._send(_json_answer(dataclasses.asdict(settings)))
        elif path == "/_sim/reset":
            simulator.reset()
            self._send(_json_answer(dataclasses.asdict(simulator.settings)))
        else:
            self._send(Answer(404, b"not found", "text/plain"))

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def _json_answer(payload: Any, *, status: int = 200) -> Answer:
    return Answer(status, json.dumps(payload, ensure_ascii=False).encode())


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: SimSettings) -> None:
        super().__init__(address, _Handler)
        host, port = self.server_address[:2]
        self.simulator = RunningHubSimulator(settings, base_url=f"http://{host!s}:{port}")

    @property
    def base_url(self) -> str:
        return self.simulator.public_url

    def server_close(self) -> None:
        self.simulator.shutdown()
        super().server_close()


def _settings_from_args(args: argparse.Namespace) -> SimSettings:
    changes = {name: value for name, value in vars(args).items() if name not in {"host", "port", "verbose"}}
    changes["fail_tasks"] = tuple(changes["fail_tasks"])
    return merge_settings(SimSettings(), changes)


def _argument_parser() -> argparse.ArgumentParser:
    defaults = SimSettings()
    parser = argparse.ArgumentParser(prog="python -m devtools.runninghub_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--public-url", default="", help="base of result URLs when reached through a proxy")
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds added to every answer")
    parser.add_argument("--queue-time", type=float, default=defaults.queue_time, help="seconds a task answers 813")
    parser.add_argument("--run-time", type=float, default=defaults.run_time, help="seconds a task answers 804")
    parser.add_argument("--fail", action="store_true", help="new tasks end with 805")
    parser.add_argument("--fail-tasks", nargs="*", default=[], metavar="TASK_ID", help="these tasks end with 805")
    parser.add_argument("--never-finish", action="store_true", help="new tasks answer 804 forever")
    parser.add_argument("--queue-full", type=int, default=0, metavar="N", help="the next N runs answer 421")
    parser.add_argument("--concurrency", type=int, default=0, help="421 past this many busy tasks (0: no limit)")
    parser.add_argument("--http-5xx", type=int, default=0, metavar="N", help="the next N API calls answer 500/502")
    parser.add_argument("--malformed", type=int, default=0, metavar="N", help="the next N API calls answer bad JSON")
    parser.add_argument("--error-code", type=int, default=0, help="business code for the next --error-count calls")
    parser.add_argument("--error-count", type=int, default=0, metavar="N")
    parser.add_argument("--legacy-pending", action="store_true", help="answer pending tasks with code 0")
    parser.add_argument("--validation-error", action="store_true", help="runs report node_errors in promptTips")
    parser.add_argument("--no-webhook", dest="webhook", action="store_false", help="never call webhookUrl")
    parser.add_argument("--webhook-delay", type=float, default=defaults.webhook_delay)
    parser.add_argument("--webhook-retries", type=int, default=defaults.webhook_retries)
    parser.add_argument("--webhook-retry-interval", type=float, default=defaults.webhook_retry_interval)
    parser.add_argument("--prompt-node-id", default=defaults.prompt_node_id)
    parser.add_argument("--image-node-id", default=defaults.image_node_id)
    parser.add_argument("--output-node-id", default=defaults.output_node_id)
    parser.add_argument("--output-count", type=int, default=defaults.output_count)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _argument_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    server = SimulatorServer((args.host, args.port), _settings_from_args(args))
    logger.info("RunningHub simulator on %s (control API under /_sim/)", server.base_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
