"""Client for RunningHub's legacy OpenAPI (`/task/openapi/*`).

RunningHub answers HTTP 200 with `{code, msg, data}` for business outcomes, so the envelope's `code`
decides what happened; the HTTP status only tells about the transport. Errors are sorted into
transient ones (try again later) and final ones (the request itself is wrong) so that callers can
decide between a retry and failing the task without knowing RunningHub's codes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests

from core.metrics import RUNNINGHUB_REQUESTS

logger = logging.getLogger(__name__)

CODE_OK = 0
CODE_INSTANCE_MAXED = 415
CODE_QUEUE_MAXED = 421
CODE_TASK_NOT_FOUND = 423
CODE_UNKNOWN_ERROR = 500
CODE_TASK_RUNNING = 804
CODE_TASK_FAILED = 805
CODE_APIKEY_TASK_NOT_FOUND = 807
CODE_TASK_QUEUED = 813

# Some copies of the docs show a pending task as code 0 carrying one of these messages.
_PENDING_MESSAGES = frozenset({"APIKEY_TASK_IS_RUNNING", "APIKEY_TASK_IS_QUEUED"})
_TRANSIENT_CODES = frozenset({CODE_INSTANCE_MAXED, CODE_UNKNOWN_ERROR})
_TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})
_TASK_ID_PATTERN = re.compile(r"^\d{1,32}$")
_FAILED_REASON_LIMIT = 500


class RunningHubError(Exception):
    """Anything that kept a RunningHub call from giving a usable answer."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message if code is None else f"[{code}] {message}")
        self.code = code
        self.message = message


class RunningHubTransientError(RunningHubError):
    """The call may succeed if repeated later: transport trouble, overload, garbled answers."""


class RunningHubQueueFull(RunningHubTransientError):
    """The key's concurrent-task limit is reached (code 421): wait for a slot, do not fail."""


class RunningHubFinalError(RunningHubError):
    """Repeating the same call will not help (bad key, node list, parameters, unknown app...)."""


@dataclass(frozen=True)
class OutputFile:
    url: str
    file_type: str
    node_id: str
    cost_time: float | None


class OutcomeState(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True)
class TaskOutcome:
    state: OutcomeState
    outputs: tuple[OutputFile, ...] = ()
    failed_reason: str = ""
    # For a pending job: True once RunningHub runs it (804), False while it waits in its queue (813).
    running: bool = False


@dataclass(frozen=True)
class _Envelope:
    code: int
    msg: str
    data: Any


class RunningHubClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"RunningHubClient(base_url={self._base_url!r})"

    def upload_image(self, *, data: bytes, filename: str, content_type: str) -> str:
        envelope = self._call(
            "/task/openapi/upload",
            form={"apiKey": self._api_key, "fileType": "image"},
            files={"file": (filename, data, content_type)},
        )
        self._raise_unless_ok(envelope)
        file_name = envelope.data.get("fileName") if isinstance(envelope.data, dict) else None
        if not isinstance(file_name, str) or not file_name:
            raise RunningHubTransientError("upload answer has no fileName")
        return file_name

    def run_app(
        self,
        *,
        webapp_id: str,
        node_info_list: list[dict[str, str]],
        webhook_url: str | None = None,
    ) -> str:
        payload: dict[str, Any] = {
            "apiKey": self._api_key,
            "webappId": webapp_id,
            "nodeInfoList": node_info_list,
        }
        if webhook_url:
            payload["webhookUrl"] = webhook_url
        envelope = self._call("/task/openapi/ai-app/run", json_body=payload)
        self._raise_unless_ok(envelope)
        if not isinstance(envelope.data, dict):
            raise RunningHubTransientError("run answer has no data object")
        task_id = _task_id_text(envelope.data.get("taskId"))
        if task_id is None:
            raise RunningHubTransientError("run answer has no usable taskId")
        node_errors = _node_errors(envelope.data.get("promptTips"))
        if node_errors:
            # RunningHub created the task all the same; it would hold a slot and spend coins.
            with contextlib.suppress(RunningHubError):
                self.cancel(task_id=task_id)
            raise RunningHubFinalError(f"workflow validation failed for task {task_id}: {node_errors}")
        return task_id

    def outputs(self, *, task_id: str) -> TaskOutcome:
        envelope = self._call("/task/openapi/outputs", json_body={"apiKey": self._api_key, "taskId": task_id})
        if envelope.code in (CODE_TASK_RUNNING, CODE_TASK_QUEUED):
            return TaskOutcome(state=OutcomeState.PENDING, running=envelope.code == CODE_TASK_RUNNING)
        if envelope.code == CODE_TASK_FAILED:
            return TaskOutcome(state=OutcomeState.FAILED, failed_reason=_readable_failure(envelope.data))
        self._raise_unless_ok(envelope)
        if envelope.data is None or envelope.msg in _PENDING_MESSAGES:
            return TaskOutcome(state=OutcomeState.PENDING, running=envelope.msg == "APIKEY_TASK_IS_RUNNING")
        if not isinstance(envelope.data, list):
            raise RunningHubTransientError("outputs answer data is neither a list nor null")
        if not envelope.data:
            # A finished pose12 run always saves files, so an empty list means "not yet".
            return TaskOutcome(state=OutcomeState.PENDING)
        return TaskOutcome(state=OutcomeState.SUCCESS, outputs=tuple(_output_file(item) for item in envelope.data))

    def cancel(self, *, task_id: str) -> None:
        envelope = self._call("/task/openapi/cancel", json_body={"apiKey": self._api_key, "taskId": task_id})
        if envelope.code in (CODE_TASK_NOT_FOUND, CODE_APIKEY_TASK_NOT_FOUND):
            logger.info("RunningHub does not know task %s; nothing to cancel", task_id)
            return
        self._raise_unless_ok(envelope)

    def _call(
        self,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> _Envelope:
        url = self._base_url + path
        started = time.monotonic()
        try:
            if json_body is not None:
                response = self._session.post(
                    url,
                    data=json.dumps(json_body),
                    headers={"Content-Type": "application/json"},
                    timeout=self._timeout,
                )
            else:
                response = self._session.post(url, data=form, files=files, timeout=self._timeout)
        except requests.RequestException as exc:
            _observe(path, "network_error", started)
            # The exception text names the URL only; the key travels in the body and stays out of logs.
            raise RunningHubTransientError(f"{path}: {type(exc).__name__}: {exc}") from exc
        try:
            envelope = _envelope(path, response)
        except RunningHubError:
            _observe(path, "malformed" if response.status_code == 200 else f"http_{response.status_code}", started)
            raise
        _observe(path, str(envelope.code), started)
        return envelope

    @staticmethod
    def _raise_unless_ok(envelope: _Envelope) -> None:
        if envelope.code == CODE_OK:
            return
        message = envelope.msg or "RunningHub error"
        if envelope.code == CODE_QUEUE_MAXED:
            raise RunningHubQueueFull(message, code=envelope.code)
        if envelope.code in _TRANSIENT_CODES:
            raise RunningHubTransientError(message, code=envelope.code)
        raise RunningHubFinalError(message, code=envelope.code)


def parse_webhook(body: bytes) -> str:
    """Task id named by a RunningHub webhook body; the caller must confirm with `outputs` before acting."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise ValueError("webhook body is not a JSON object")
    task_id = _task_id_text(payload.get("taskId"))
    if task_id is None:
        raise ValueError("webhook body has no usable taskId")
    if not isinstance(payload.get("eventData"), str):
        raise ValueError("webhook body has no eventData string")
    return task_id


def _observe(path: str, code: str, started: float) -> None:
    """One metric sample and one structured line per call: endpoint, answer code, latency."""
    seconds = time.monotonic() - started
    RUNNINGHUB_REQUESTS.labels(path, code).observe(seconds)
    logger.info("runninghub.call", extra={"endpoint": path, "code": code, "latency_ms": round(seconds * 1000, 1)})


def _envelope(path: str, response: requests.Response) -> _Envelope:
    status = response.status_code
    logger.debug("RunningHub %s answered HTTP %s", path, status)
    if status >= 500 or status in _TRANSIENT_HTTP_STATUSES:
        raise RunningHubTransientError(f"{path}: HTTP {status}")
    if status != 200:
        raise RunningHubFinalError(f"{path}: HTTP {status}")
    try:
        body = response.json()
    except ValueError as exc:
        raise RunningHubTransientError(f"{path}: answer is not JSON") from exc
    if not isinstance(body, dict):
        raise RunningHubTransientError(f"{path}: answer is not a JSON object")
    code = body.get("code")
    if isinstance(code, str) and code.lstrip("-").isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        raise RunningHubTransientError(f"{path}: answer has no numeric code")
    msg = body.get("msg")
    return _Envelope(code=code, msg=msg if isinstance(msg, str) else "", data=body.get("data"))


def _task_id_text(value: object) -> str | None:
    # RunningHub ids are 19-digit numbers; some answers send them as JSON numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and _TASK_ID_PATTERN.match(value):
        return value
    return None


def _node_errors(prompt_tips: object) -> str:
    if not isinstance(prompt_tips, str) or not prompt_tips.strip():
        return ""
    try:
        tips = json.loads(prompt_tips)
    except ValueError:
        logger.warning("RunningHub promptTips is not JSON; ignoring it")
        return ""
    errors = tips.get("node_errors") if isinstance(tips, dict) else None
    return json.dumps(errors, ensure_ascii=False)[:_FAILED_REASON_LIMIT] if errors else ""


def _readable_failure(data: object) -> str:
    reason: object = data.get("failedReason") if isinstance(data, dict) else None
    if isinstance(reason, str):
        try:
            reason = json.loads(reason)
        except ValueError:
            return str(reason)[:_FAILED_REASON_LIMIT] or "RunningHub task failed"
    if not isinstance(reason, dict):
        return "RunningHub task failed"
    node_name = str(reason.get("node_name") or "").strip()
    exception_message = str(reason.get("exception_message") or "").strip()
    parts = [part for part in (node_name, exception_message) if part]
    return (": ".join(parts) or "RunningHub task failed")[:_FAILED_REASON_LIMIT]


def _output_file(item: object) -> OutputFile:
    if not isinstance(item, dict):
        raise RunningHubTransientError("outputs answer holds a non-object item")
    url = item.get("fileUrl")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise RunningHubTransientError("outputs answer item has no http(s) fileUrl")
    return OutputFile(
        url=url,
        file_type=str(item.get("fileType") or ""),
        node_id=str(item.get("nodeId") or ""),
        cost_time=_seconds(item.get("taskCostTime")),
    )


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None
