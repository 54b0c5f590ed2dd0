"""RunningHub's wire format, as the simulator speaks it.

The API paths, the business codes and their `msg` strings, the `{code, msg, data}` envelope (always
HTTP 200, even for errors) and every JSON shape inside it: upload, run (`promptTips` as a JSON string),
outputs (804 running, 813 queued, 805 with `failedReason`), account status, the webhook body. Also the
multipart upload parser and the URLs of the simulator's own result CDN. No state lives here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from typing import Any

UPLOAD_PATH = "/task/openapi/upload"
ACCOUNT_STATUS_PATH = "/uc/openapi/accountStatus"
API_PATHS = frozenset(
    {
        UPLOAD_PATH,
        "/task/openapi/ai-app/run",
        "/task/openapi/create",
        "/task/openapi/outputs",
        "/task/openapi/status",
        "/task/openapi/cancel",
        ACCOUNT_STATUS_PATH,
    }
)
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
CDN_PATH = re.compile(r"^/cdn/(\d+)/(\d+)\.png$")
_UPLOAD_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp"})


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def envelope(code: int, msg: str, data: Any = None) -> Answer:
    return Answer(200, json.dumps({"code": code, "msg": msg, "data": data}, ensure_ascii=False).encode())


def error(code: int) -> Answer:
    return envelope(code, ERROR_MESSAGES.get(code, "UNKNOWN_ERROR"))


def json_answer(payload: Any, *, status: int = 200) -> Answer:
    return Answer(status, json.dumps(payload, ensure_ascii=False).encode())


def not_found() -> Answer:
    return Answer(404, b"not found", "text/plain")


def gateway_error(status: HTTPStatus) -> Answer:
    """What a proxy in front of RunningHub answers when the service behind it is down: HTML, not JSON."""
    page = f"<html><body><h1>{status.value} {status.phrase}</h1></body></html>"
    return Answer(status.value, page.encode(), "text/html")


def truncated_json() -> Answer:
    return Answer(200, b'{"code": 0, "msg": "success", "data": {"taskId": "19', "application/json")


def upload_answer(content: bytes, filename: str | None) -> tuple[str, Answer]:
    """The `api/<sha256>.<ext>` name RunningHub gives an upload, and the answer that carries it."""
    file_name = f"api/{hashlib.sha256(content).hexdigest()}.{_extension(filename)}"
    return file_name, envelope(0, "success", {"fileName": file_name, "fileType": "input"})


def run_answer(
    *, task_id: str, client_id: str, wss_url: str, queued: bool, output_node_id: str, node_errors: dict[str, Any]
) -> Answer:
    tips = {
        "result": not node_errors,
        "error": None,
        "outputs_to_execute": [output_node_id],
        "node_errors": node_errors,
    }
    return envelope(
        0,
        "success",
        {
            "netWssUrl": wss_url,
            "taskId": task_id,
            "clientId": client_id,
            "taskStatus": "QUEUED" if queued else "RUNNING",
            "promptTips": json.dumps(tips),
        },
    )


def image_not_in_list(image_node_id: str) -> dict[str, Any]:
    """The `node_errors` RunningHub reports when the LoadImage node's value fails workflow validation."""
    return {
        image_node_id: {
            "errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "image"}],
            "class_type": "LoadImage",
        }
    }


def pending_answer(status: str, *, legacy: bool, wss_url: str) -> Answer:
    """The `/outputs` answer while `status` is QUEUED or RUNNING; `legacy` is the code-0 variant of old docs."""
    if legacy:
        return envelope(0, "APIKEY_TASK_IS_QUEUED" if status == "QUEUED" else "APIKEY_TASK_IS_RUNNING")
    if status == "QUEUED":
        return envelope(813, "APIKEY_TASK_IS_QUEUED")
    return envelope(804, "APIKEY_TASK_IS_RUNNING", {"netWssUrl": wss_url})


def failed_answer(*, node_name: str, exception_type: str, message: str, node_id: str) -> Answer:
    trace = [
        '  File "/workspace/ComfyUI/execution.py", line 328, in process_inputs\n',
        "    result = f(**inputs)\n",
        f"{exception_type}: {message}\n",
    ]
    reason = {
        "current_outputs": "{}",
        "exception_type": exception_type,
        "node_name": node_name,
        "current_inputs": "{}",
        "traceback": json.dumps(trace),
        "node_id": node_id,
        "exception_message": message,
    }
    return envelope(805, "APIKEY_TASK_STATUS_ERROR", {"failedReason": reason})


def outputs_answer(*, file_urls: list[str], cost: str, node_id: str) -> Answer:
    files = [
        {
            "fileUrl": url,
            "fileType": "png",
            "taskCostTime": cost,
            "nodeId": node_id,
            "thirdPartyConsumeMoney": None,
            "consumeMoney": None,
            "consumeCoins": "17",
        }
        for url in file_urls
    ]
    return envelope(0, "success", files)


def account_status_answer(busy: int) -> Answer:
    return envelope(
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


def webhook_body(task_id: str, event_data: str) -> bytes:
    return json.dumps({"event": "TASK_END", "taskId": task_id, "eventData": event_data}).encode()


def result_url(base: str, task_id: str, index: int) -> str:
    return f"{base}/cdn/{task_id}/{index}.png"


def wss_url(base: str, *, client_id: str, app_id: str) -> str:
    host = base.split("://", 1)[-1]
    return f"ws://{host}/ws/c_instance?clientId={client_id}&workflowId={app_id}"


def field_value(nodes: list[dict[str, Any]], node_id: str, field_name: str) -> str | None:
    """The string `fieldValue` that `nodeInfoList` sets for one node's field, if any."""
    for node in nodes:
        if str(node.get("nodeId")) == node_id and node.get("fieldName") == field_name:
            value = node.get("fieldValue")
            return value if isinstance(value, str) else None
    return None


def _extension(filename: str | None) -> str:
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    return suffix if suffix in _UPLOAD_EXTENSIONS else "png"


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
