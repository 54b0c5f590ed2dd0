"""The RunningHub client against the simulator over real HTTP on 127.0.0.1 (no database needed)."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from PIL import Image

from aimodel.runninghub import (
    OutcomeState,
    RunningHubClient,
    RunningHubError,
    RunningHubFinalError,
    RunningHubQueueFull,
    RunningHubTransientError,
    TaskOutcome,
    parse_webhook,
)
from conftest import SIM_RUN_TIME
from devtools.testing import SimulatorHandle, StoppedClock, stopped_clock

RUN_TIME = SIM_RUN_TIME
WEBAPP_ID = "1937084629516193794"


@pytest.fixture
def client(sim: SimulatorHandle) -> RunningHubClient:
    return RunningHubClient(base_url=sim.base_url, api_key=sim.api_key, read_timeout=5)


@pytest.fixture
def clock(sim: SimulatorHandle) -> Iterator[StoppedClock]:
    """The simulator's clock stopped: its jobs move on only when the test advances it."""
    with stopped_clock() as stopped:
        yield stopped


def photo_png(color: tuple[int, int, int] = (180, 40, 60)) -> bytes:
    image = Image.new("RGB", (240, 320), color)
    image.paste((20, 120, 200), (30, 40, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def nodes(file_name: str, prompt: str = "a model in a red coat, street") -> list[dict[str, str]]:
    return [
        {"nodeId": "103", "fieldName": "text", "fieldValue": prompt},
        {"nodeId": "74", "fieldName": "image", "fieldValue": file_name},
    ]


def start_task(client: RunningHubClient, webhook_url: str | None = None) -> str:
    file_name = client.upload_image(data=photo_png(), filename="input.png", content_type="image/png")
    return client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes(file_name), webhook_url=webhook_url)


def wait_for(client: RunningHubClient, task_id: str, timeout: float = 5) -> TaskOutcome:
    deadline = time.monotonic() + timeout
    while True:
        outcome = client.outputs(task_id=task_id)
        if outcome.state is not OutcomeState.PENDING or time.monotonic() > deadline:
            return outcome
        time.sleep(0.05)


def test_upload_returns_the_file_name_for_the_load_image_node(client: RunningHubClient, sim: SimulatorHandle) -> None:
    file_name = client.upload_image(data=photo_png(), filename="shot.png", content_type="image/png")

    assert file_name.startswith("api/") and file_name.endswith(".png")
    assert sim.state()["uploads"] == [file_name]


def test_a_task_is_pending_while_running_then_succeeds_with_twelve_real_pngs(
    client: RunningHubClient, sim: SimulatorHandle, clock: StoppedClock
) -> None:
    task_id = start_task(client)

    assert len(task_id) == 19 and task_id.isdigit()
    assert client.outputs(task_id=task_id) == TaskOutcome(state=OutcomeState.PENDING, running=True)
    clock.advance(2 * RUN_TIME)
    outcome = client.outputs(task_id=task_id)

    assert outcome.state is OutcomeState.SUCCESS
    assert len(outcome.outputs) == 12
    bodies = set()
    for output in outcome.outputs:
        assert output.file_type == "png" and output.node_id and output.cost_time is not None
        response = requests.get(output.url, timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert int(response.headers["Content-Length"]) == len(response.content)
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == "PNG"
            image.load()
        bodies.add(response.content)
    assert len(bodies) == 12
    task = sim.state()["tasks"][0]
    assert task["prompt"] == "a model in a red coat, street"
    assert task["webappId"] == WEBAPP_ID


def test_a_queued_task_is_pending(client: RunningHubClient, sim: SimulatorHandle) -> None:
    sim.configure(queue_time=5)
    task_id = start_task(client)

    assert client.outputs(task_id=task_id).state is OutcomeState.PENDING
    assert sim.state()["tasks"][0]["status"] == "QUEUED"


def test_pending_shown_as_code_zero_is_still_pending(
    client: RunningHubClient, sim: SimulatorHandle, clock: StoppedClock
) -> None:
    sim.configure(legacy_pending=True, queue_time=0.3)
    task_id = start_task(client)

    assert client.outputs(task_id=task_id) == TaskOutcome(state=OutcomeState.PENDING, running=False)
    clock.advance(0.31)
    assert client.outputs(task_id=task_id) == TaskOutcome(state=OutcomeState.PENDING, running=True)
    clock.advance(2 * RUN_TIME)
    assert client.outputs(task_id=task_id).state is OutcomeState.SUCCESS


def test_a_task_that_never_finishes_stays_pending(
    client: RunningHubClient, sim: SimulatorHandle, clock: StoppedClock
) -> None:
    sim.configure(never_finish=True)
    task_id = start_task(client)
    clock.advance(3600)

    assert client.outputs(task_id=task_id).state is OutcomeState.PENDING


def test_a_failed_task_has_a_readable_reason_without_the_traceback(
    client: RunningHubClient, sim: SimulatorHandle
) -> None:
    sim.configure(fail=True)
    outcome = wait_for(client, start_task(client))

    assert outcome.state is OutcomeState.FAILED
    assert outcome.outputs == ()
    assert outcome.failed_reason.startswith("KSampler: ")
    assert "out of memory" in outcome.failed_reason
    assert "File " not in outcome.failed_reason and "execution.py" not in outcome.failed_reason


def test_one_task_can_be_made_to_fail_after_it_started(
    client: RunningHubClient, sim: SimulatorHandle, clock: StoppedClock
) -> None:
    doomed = start_task(client)
    healthy = start_task(client)
    sim.configure(fail_tasks=[doomed])
    clock.advance(2 * RUN_TIME)

    assert client.outputs(task_id=doomed).state is OutcomeState.FAILED
    assert client.outputs(task_id=healthy).state is OutcomeState.SUCCESS


def test_an_input_that_is_not_an_image_fails_in_the_load_image_node(
    client: RunningHubClient, sim: SimulatorHandle
) -> None:
    file_name = client.upload_image(data=b"not an image", filename="x.png", content_type="image/png")
    task_id = client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes(file_name))

    outcome = wait_for(client, task_id)

    assert outcome.state is OutcomeState.FAILED
    assert outcome.failed_reason.startswith("LoadImage: ")


def test_a_full_queue_is_reported_as_queue_full_and_clears(client: RunningHubClient, sim: SimulatorHandle) -> None:
    file_name = client.upload_image(data=photo_png(), filename="input.png", content_type="image/png")
    sim.configure(queue_full=1)

    with pytest.raises(RunningHubQueueFull) as raised:
        client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes(file_name))

    assert raised.value.code == 421
    assert isinstance(raised.value, RunningHubTransientError)
    assert client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes(file_name)).isdigit()


def test_the_concurrency_limit_answers_queue_full_until_a_slot_frees(
    client: RunningHubClient, sim: SimulatorHandle, clock: StoppedClock
) -> None:
    sim.configure(concurrency=1)
    start_task(client)

    with pytest.raises(RunningHubQueueFull):
        start_task(client)
    clock.advance(2 * RUN_TIME)
    assert start_task(client).isdigit()


@pytest.mark.parametrize("fault", ["http_5xx", "malformed"])
def test_server_errors_and_garbled_answers_are_transient(
    client: RunningHubClient, sim: SimulatorHandle, fault: str
) -> None:
    task_id = start_task(client)
    sim.configure(**{fault: 2})

    for _ in range(2):
        with pytest.raises(RunningHubTransientError) as raised:
            client.outputs(task_id=task_id)
        assert not isinstance(raised.value, RunningHubQueueFull)
    assert wait_for(client, task_id).state is OutcomeState.SUCCESS


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (415, RunningHubTransientError),
        (500, RunningHubTransientError),
        (301, RunningHubFinalError),
        (433, RunningHubFinalError),
        (808, RunningHubFinalError),
        (809, RunningHubFinalError),
        (901, RunningHubFinalError),
    ],
)
def test_business_codes_are_sorted_into_transient_and_final(
    client: RunningHubClient, sim: SimulatorHandle, code: int, expected: type[RunningHubError]
) -> None:
    file_name = client.upload_image(data=photo_png(), filename="input.png", content_type="image/png")
    sim.configure(error_code=code, error_count=1)

    with pytest.raises(expected) as raised:
        client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes(file_name))

    assert raised.value.code == code
    assert type(raised.value) is expected


def test_a_wrong_key_is_final(sim: SimulatorHandle) -> None:
    intruder = RunningHubClient(base_url=sim.base_url, api_key="not-the-key")

    calls: list[Callable[[], object]] = [
        lambda: intruder.upload_image(data=photo_png(), filename="a.png", content_type="image/png"),
        lambda: intruder.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes("api/x.png")),
        lambda: intruder.outputs(task_id="1907035719658053634"),
    ]
    for call in calls:
        with pytest.raises(RunningHubFinalError) as raised:
            call()
        assert raised.value.code == 802
    assert "not-the-key" not in repr(intruder)


@pytest.mark.parametrize(
    "node_info_list",
    [
        [{"nodeId": "103", "fieldName": "text", "fieldValue": "prompt only"}],
        nodes("api/never-uploaded.png"),
        [{"nodeId": "9", "fieldName": "text", "fieldValue": "wrong node"}],
    ],
)
def test_a_node_list_that_does_not_match_the_app_is_final(
    client: RunningHubClient, node_info_list: list[dict[str, str]]
) -> None:
    with pytest.raises(RunningHubFinalError) as raised:
        client.run_app(webapp_id=WEBAPP_ID, node_info_list=node_info_list)

    assert raised.value.code == 803


def test_node_errors_in_prompt_tips_are_final(client: RunningHubClient, sim: SimulatorHandle) -> None:
    sim.configure(validation_error=True)

    with pytest.raises(RunningHubFinalError, match="LoadImage"):
        start_task(client)
    state = sim.state()
    assert [t["taskId"] for t in state["tasks"]] == state["cancelled"], "the task RunningHub made anyway is cancelled"


def test_cancel_stops_a_running_task_and_ignores_unknown_ones(client: RunningHubClient, sim: SimulatorHandle) -> None:
    task_id = start_task(client)

    client.cancel(task_id=task_id)
    client.cancel(task_id="1900000000000000001")

    state = sim.state()
    assert state["cancelled"] == [task_id]
    assert state["calls"]["/task/openapi/cancel"] == 2
    assert client.outputs(task_id=task_id).state is OutcomeState.FAILED


def test_requests_carry_the_documented_fields(client: RunningHubClient, sim: SimulatorHandle) -> None:
    task_id = start_task(client, webhook_url="http://127.0.0.1:9/hook")
    client.outputs(task_id=task_id)

    keys = sim.state()["requestKeys"]
    assert keys["/task/openapi/ai-app/run"] == ["apiKey", "nodeInfoList", "webappId", "webhookUrl"]
    assert keys["/task/openapi/outputs"] == ["apiKey", "taskId"]


def test_an_unreachable_service_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    offline = RunningHubClient(base_url=f"http://127.0.0.1:{closed_port}", api_key="k", connect_timeout=1)

    with pytest.raises(RunningHubTransientError):
        offline.outputs(task_id="1907035719658053634")


def test_a_slow_answer_times_out_as_transient(sim: SimulatorHandle) -> None:
    sim.configure(latency=0.5)
    impatient = RunningHubClient(base_url=sim.base_url, api_key=sim.api_key, read_timeout=0.1)

    with pytest.raises(RunningHubTransientError):
        impatient.outputs(task_id="1907035719658053634")


def test_an_http_error_that_is_not_a_server_fault_is_final(sim: SimulatorHandle) -> None:
    misrouted = RunningHubClient(base_url=sim.base_url + "/not-runninghub", api_key=sim.api_key)

    with pytest.raises(RunningHubFinalError, match="HTTP 404"):
        misrouted.outputs(task_id="1907035719658053634")


class _WebhookReceiver(BaseHTTPRequestHandler):
    bodies: list[bytes]
    arrived: threading.Event

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.arrived.set()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_webhook_names_the_task_and_carries_the_outputs_answer(
    client: RunningHubClient, sim: SimulatorHandle
) -> None:
    class Receiver(_WebhookReceiver):
        bodies: list[bytes] = []
        arrived = threading.Event()

    receiver = Receiver
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        task_id = start_task(client, webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook?secret=s3")
        assert receiver.arrived.wait(5)
    finally:
        server.shutdown()
        server.server_close()

    body = receiver.bodies[0]
    assert parse_webhook(body) == task_id
    event = json.loads(json.loads(body)["eventData"])
    assert event["code"] == 0 and len(event["data"]) == 12
    assert client.outputs(task_id=task_id).state is OutcomeState.SUCCESS
    assert sim.state()["webhooks"][0]["status"] == 200


def test_webhook_parsing_accepts_a_numeric_task_id() -> None:
    body = json.dumps({"event": "TASK_END", "taskId": 1904163390028185602, "eventData": "{}"}).encode()

    assert parse_webhook(body) == "1904163390028185602"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        json.dumps({"eventData": "{}"}).encode(),
        json.dumps({"taskId": "", "eventData": "{}"}).encode(),
        json.dumps({"taskId": "../etc/passwd", "eventData": "{}"}).encode(),
        json.dumps({"taskId": "1904163390028185602"}).encode(),
        json.dumps({"taskId": "1904163390028185602", "eventData": {"code": 0}}).encode(),
        b"\xff\xfe",
    ],
)
def test_webhook_parsing_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_webhook(body)


# --- odd answers: a loopback server that answers what each test scripts -------------------------


class _Scripted(BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]]
    paths: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.paths.append(self.path)
        status, body = self.answers.pop(0) if self.answers else (200, b'{"code": 0, "msg": "success"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[RunningHubClient, list[str]]]]:
    """A client of a server that answers each request with the next of `answers` (JSON values or
    raw bytes); returns the client and the paths it was asked."""
    servers: list[ThreadingHTTPServer] = []

    def make(*answers: object) -> tuple[RunningHubClient, list[str]]:
        paths: list[str] = []
        handler = type(
            "Handler",
            (_Scripted,),
            {
                "answers": [(200, a if isinstance(a, bytes) else json.dumps(a).encode()) for a in answers],
                "paths": paths,
            },
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        client = RunningHubClient(base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="k", read_timeout=5)
        return client, paths

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


FILE = {"fileUrl": "https://cdn.example.com/a.png", "fileType": "png", "nodeId": "136", "taskCostTime": "41"}


def test_a_code_zero_sent_as_a_string_is_success(scripted: Any) -> None:
    client, _ = scripted({"code": "0", "msg": "success", "data": [FILE]})
    outcome = client.outputs(task_id="1900000000000000001")
    assert outcome.state is OutcomeState.SUCCESS
    assert outcome.outputs[0].url == FILE["fileUrl"] and outcome.outputs[0].cost_time == 41.0


@pytest.mark.parametrize(
    "answer",
    [
        [1, 2],
        "success",
        {"msg": "success", "data": [FILE]},
        {"code": True, "data": [FILE]},
        {"code": "zero", "data": [FILE]},
        {"code": 0, "data": {"fileUrl": FILE["fileUrl"]}},
        {"code": 0, "data": [5]},
        {"code": 0, "data": [{"fileType": "png"}]},
        {"code": 0, "data": [{"fileUrl": "ftp://cdn.example.com/a.png"}]},
        b"<html>maintenance</html>",
    ],
    ids=[
        "json-array",
        "json-string",
        "no-code",
        "boolean-code",
        "word-code",
        "data-object",
        "item-not-object",
        "item-without-url",
        "item-not-http",
        "html",
    ],
)
def test_an_answer_the_client_cannot_read_is_transient(scripted: Any, answer: object) -> None:
    client, _ = scripted(answer)
    with pytest.raises(RunningHubTransientError) as raised:
        client.outputs(task_id="1900000000000000001")
    assert not isinstance(raised.value, RunningHubQueueFull)


@pytest.mark.parametrize(
    ("answer", "running"),
    [
        ({"code": 0, "msg": "success", "data": []}, False),
        ({"code": 0, "msg": "success", "data": None}, False),
        ({"code": 0, "msg": "APIKEY_TASK_IS_RUNNING", "data": [FILE]}, True),
        ({"code": 0, "msg": "APIKEY_TASK_IS_QUEUED", "data": None}, False),
        ({"code": 813, "msg": "APIKEY_TASK_IS_QUEUED", "data": None}, False),
    ],
    ids=["empty-list", "null", "legacy-running", "legacy-queued", "queued"],
)
def test_answers_that_mean_not_yet_are_pending(scripted: Any, answer: object, running: bool) -> None:
    client, _ = scripted(answer)
    assert client.outputs(task_id="1900000000000000001") == TaskOutcome(state=OutcomeState.PENDING, running=running)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"failedReason": "CUDA error: device-side assert"}, "CUDA error: device-side assert"),
        ({"failedReason": {"node_name": "KSampler", "exception_message": "oom"}}, "KSampler: oom"),
        ({"failedReason": json.dumps({"node_name": "LoadImage"})}, "LoadImage"),
        ({"failedReason": "{}"}, "RunningHub task failed"),
        ({"failedReason": ""}, "RunningHub task failed"),
        (None, "RunningHub task failed"),
        ({"failedReason": 7}, "RunningHub task failed"),
    ],
    ids=["plain-text", "object", "json-text", "empty-object", "empty", "no-data", "number"],
)
def test_a_failed_reason_in_any_shape_is_read(scripted: Any, data: object, reason: str) -> None:
    client, _ = scripted({"code": 805, "msg": "APIKEY_TASK_FAILED", "data": data})
    outcome = client.outputs(task_id="1900000000000000001")
    assert (outcome.state, outcome.failed_reason) == (OutcomeState.FAILED, reason)


@pytest.mark.parametrize("data", [{}, {"fileName": ""}, {"fileName": 5}, None, ["api/a.png"]])
def test_an_upload_answer_without_a_file_name_is_transient(scripted: Any, data: object) -> None:
    client, _ = scripted({"code": 0, "msg": "success", "data": data})
    with pytest.raises(RunningHubTransientError, match="no fileName"):
        client.upload_image(data=b"x", filename="a.png", content_type="image/png")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (None, "no data object"),
        ({"taskStatus": "RUNNING"}, "no usable taskId"),
        ({"taskId": "12ab"}, "no usable taskId"),
        ({"taskId": True}, "no usable taskId"),
    ],
)
def test_a_run_answer_without_a_task_id_is_transient(scripted: Any, data: object, error: str) -> None:
    client, _ = scripted({"code": 0, "msg": "success", "data": data})
    with pytest.raises(RunningHubTransientError, match=error):
        client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes("api/a.png"))


def test_a_run_answer_with_a_numeric_task_id_and_unreadable_tips_is_accepted(scripted: Any) -> None:
    client, paths = scripted({"code": 0, "data": {"taskId": 1900000000000000007, "promptTips": "not json"}})
    assert client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes("api/a.png")) == "1900000000000000007"
    assert paths == ["/task/openapi/ai-app/run"], "nothing was cancelled"


def test_node_errors_cancel_the_created_task_even_if_the_cancel_fails(scripted: Any) -> None:
    tips = json.dumps({"node_errors": {"74": "bad image"}})
    client, paths = scripted({"code": 0, "data": {"taskId": "1900000000000000008", "promptTips": tips}}, b"nope")
    with pytest.raises(RunningHubFinalError, match="workflow validation failed"):
        client.run_app(webapp_id=WEBAPP_ID, node_info_list=nodes("api/a.png"))
    assert paths == ["/task/openapi/ai-app/run", "/task/openapi/cancel"]


def test_cancel_of_a_task_runninghub_does_not_know_is_no_error(scripted: Any) -> None:
    client, _ = scripted({"code": 807, "msg": "APIKEY_TASK_NOT_FOUND"}, {"code": 301, "msg": "PARAMS_INVALID"})
    client.cancel(task_id="1900000000000000009")
    with pytest.raises(RunningHubFinalError):
        client.cancel(task_id="1900000000000000009")
