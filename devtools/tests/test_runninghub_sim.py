"""The RunningHub simulator: fidelity to the documented wire format, fault modes, control API."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from runninghub_sdk import RunningHubClient as ThirdPartyClient
from runninghub_sdk import TaskStatus

from conftest import SIM_RUN_TIME
from devtools.runninghub_sim import parse_multipart
from devtools.testing import SimulatorHandle, running_simulator, stopped_clock

DOCS = json.loads((Path(__file__).parent / "fixtures" / "runninghub_openapi.json").read_text())
RUN_TIME = SIM_RUN_TIME
WEBAPP_ID = "1937084629516193794"


def shape(value: Any) -> Any:
    """Keys and JSON types of `value`, with list items reduced to the first one's shape."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def post(sim: SimulatorHandle, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(sim.base_url + path, json=payload, timeout=5)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def upload(sim: SimulatorHandle, data: bytes | None = None, api_key: str | None = None) -> dict[str, Any]:
    if data is None:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (90, 90, 90)).save(buffer, format="PNG")
        data = buffer.getvalue()
    response = requests.post(
        sim.base_url + "/task/openapi/upload",
        data={"apiKey": api_key or sim.api_key, "fileType": "image"},
        files={"file": ("input.png", data, "image/png")},
        timeout=5,
    )
    answer: dict[str, Any] = response.json()
    return answer


def run_request(sim: SimulatorHandle, file_name: str, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(json.dumps(DOCS["ai_app_run"]["request"]).replace("{{fileName}}", file_name))
    request["apiKey"] = sim.api_key
    request.pop("webhookUrl")
    request.update(extra)
    return request


def start(sim: SimulatorHandle, **extra: Any) -> str:
    file_name = upload(sim)["data"]["fileName"]
    answer = post(sim, "/task/openapi/ai-app/run", run_request(sim, file_name, **extra))
    return str(answer["data"]["taskId"])


def outputs(sim: SimulatorHandle, task_id: str) -> dict[str, Any]:
    return post(sim, "/task/openapi/outputs", {"apiKey": sim.api_key, "taskId": task_id})


def finished_outputs(sim: SimulatorHandle, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while (answer := outputs(sim, task_id))["code"] in (804, 813) and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


class TestFidelityToTheDocumentedAnswers:
    def test_upload(self, sim: SimulatorHandle) -> None:
        answer = upload(sim)

        assert shape(answer) == shape(DOCS["upload"]["answer"])
        assert answer["data"]["fileName"].startswith("api/")

    def test_ai_app_run_accepts_the_documented_request_and_answers_alike(self, sim: SimulatorHandle) -> None:
        file_name = upload(sim)["data"]["fileName"]

        answer = post(sim, "/task/openapi/ai-app/run", run_request(sim, file_name))

        assert shape(answer) == shape(DOCS["ai_app_run"]["answer"])
        assert len(answer["data"]["taskId"]) == 19 and answer["data"]["taskId"].isdigit()
        assert json.loads(answer["data"]["promptTips"])["node_errors"] == {}
        assert sorted(DOCS["ai_app_run"]["request"]) == sorted(
            [*sim.state()["requestKeys"]["/task/openapi/ai-app/run"], "webhookUrl"]
        )

    def test_create_with_a_workflow_id(self, sim: SimulatorHandle) -> None:
        request = dict(DOCS["create"]["request"], apiKey=sim.api_key)

        answer = post(sim, "/task/openapi/create", request)

        assert shape(answer) == shape(DOCS["create"]["answer"])
        assert finished_outputs(sim, answer["data"]["taskId"])["code"] == 0

    def test_outputs_while_queued_running_and_after(self, sim: SimulatorHandle) -> None:
        sim.configure(queue_time=0.2)
        with stopped_clock() as clock:
            task_id = start(sim)

            assert outputs(sim, task_id) == DOCS["outputs_queued"]
            clock.advance(0.25)
            assert shape(outputs(sim, task_id)) == shape(DOCS["outputs_running"])
            clock.advance(RUN_TIME)
            assert shape(outputs(sim, task_id)) == shape(DOCS["outputs_success"])

    def test_outputs_of_a_failed_task(self, sim: SimulatorHandle) -> None:
        sim.configure(fail=True)

        answer = finished_outputs(sim, start(sim))

        assert shape(answer) == shape(DOCS["outputs_failed"])
        assert answer["msg"] == DOCS["outputs_failed"]["msg"]

    def test_status(self, sim: SimulatorHandle) -> None:
        task_id = start(sim)

        answer = post(sim, "/task/openapi/status", {"apiKey": sim.api_key, "taskId": task_id})

        assert answer == DOCS["status"]

    def test_cancel(self, sim: SimulatorHandle) -> None:
        task_id = start(sim)

        assert (
            post(sim, "/task/openapi/cancel", dict(DOCS["cancel_request"], apiKey=sim.api_key, taskId=task_id))
            == (DOCS["cancel_success"])
        )
        assert (
            post(sim, "/task/openapi/cancel", dict(DOCS["cancel_request"], apiKey=sim.api_key))
            == (DOCS["cancel_unknown_task"])
        )
        assert sim.state()["cancelled"] == [task_id]

    def test_account_status_with_the_lowercase_key_field(self, sim: SimulatorHandle) -> None:
        answer = post(sim, "/uc/openapi/accountStatus", {"apikey": sim.api_key})

        assert shape(answer) == shape(DOCS["account_status"])

    def test_business_errors(self, sim: SimulatorHandle) -> None:
        file_name = upload(sim)["data"]["fileName"]
        wrong_key = run_request(sim, file_name, apiKey="wrong")
        no_image = run_request(sim, file_name)
        no_image["nodeInfoList"] = no_image["nodeInfoList"][:1]

        assert post(sim, "/task/openapi/ai-app/run", wrong_key) == DOCS["error_unauthorized"]
        assert upload(sim, api_key="wrong") == DOCS["error_unauthorized"]
        assert post(sim, "/task/openapi/ai-app/run", no_image) == DOCS["error_invalid_node_info"]
        sim.configure(queue_full=1)
        assert post(sim, "/task/openapi/ai-app/run", run_request(sim, file_name)) == DOCS["error_queue_maxed"]

    def test_webhook_body(self, sim: SimulatorHandle) -> None:
        received: list[bytes] = []
        listener = socket.create_server(("127.0.0.1", 0))

        def accept_one() -> None:
            connection, _ = listener.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(body) < length:
                    body += connection.recv(65536)
                received.append(body)
                connection.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=accept_one, daemon=True)
        thread.start()
        task_id = start(sim, webhookUrl=f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        thread.join(5)
        listener.close()

        webhook = json.loads(received[0])
        assert shape(webhook) == shape(DOCS["webhook"])
        assert webhook["taskId"] == task_id
        event = json.loads(webhook["eventData"])
        assert shape(event) == shape(DOCS["outputs_success"])
        assert event == outputs(sim, task_id)


class TestResults:
    def test_twelve_distinct_pngs_derived_from_the_input(self, sim: SimulatorHandle) -> None:
        answer = finished_outputs(sim, start(sim))
        urls = [item["fileUrl"] for item in answer["data"]]

        assert len(urls) == 12 and all(url.startswith(sim.base_url + "/cdn/") for url in urls)
        images = [requests.get(url, timeout=5) for url in urls]
        assert {image.headers["Content-Type"] for image in images} == {"image/png"}
        assert len({image.content for image in images}) == 12
        sizes = {Image.open(io.BytesIO(image.content)).size for image in images}
        assert (64, 64) in sizes

    def test_results_are_not_served_before_the_task_ends(self, sim: SimulatorHandle) -> None:
        sim.configure(never_finish=True)
        task_id = start(sim)

        assert requests.get(f"{sim.base_url}/cdn/{task_id}/1.png", timeout=5).status_code == 404


class TestFaults:
    def test_http_5xx_counts_down(self, sim: SimulatorHandle) -> None:
        sim.configure(http_5xx=2)

        statuses = [
            requests.post(
                sim.base_url + "/uc/openapi/accountStatus", json={"apikey": sim.api_key}, timeout=5
            ).status_code
            for _ in range(3)
        ]

        assert statuses == [500, 502, 200]
        assert sim.state()["config"]["http_5xx"] == 0

    def test_malformed_answers_are_not_json(self, sim: SimulatorHandle) -> None:
        sim.configure(malformed=1)
        response = requests.post(sim.base_url + "/uc/openapi/accountStatus", json={"apikey": sim.api_key}, timeout=5)

        with pytest.raises(ValueError):
            response.json()

    def test_latency_delays_every_answer(self, sim: SimulatorHandle) -> None:
        sim.configure(latency=0.3)
        started = time.monotonic()

        post(sim, "/uc/openapi/accountStatus", {"apikey": sim.api_key})

        assert time.monotonic() - started >= 0.3

    def test_a_failing_webhook_is_retried_and_recorded(self, sim: SimulatorHandle) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        sim.configure(webhook_retries=1, webhook_retry_interval=0.05)

        start(sim, webhookUrl=f"http://127.0.0.1:{closed_port}/hook")
        deadline = time.monotonic() + 5
        while len(sim.state()["webhooks"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

        deliveries = sim.state()["webhooks"]
        assert [delivery["attempt"] for delivery in deliveries] == [1, 2]
        assert all(delivery["status"] is None and delivery["error"] for delivery in deliveries)

    def test_concurrent_runs_get_unique_ids_and_exact_counters(self, sim: SimulatorHandle) -> None:
        file_name = upload(sim)["data"]["fileName"]
        ids: list[str] = []

        def run() -> None:
            ids.append(post(sim, "/task/openapi/ai-app/run", run_request(sim, file_name))["data"]["taskId"])

        threads = [threading.Thread(target=run) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(set(ids)) == 16
        assert sim.state()["calls"]["/task/openapi/ai-app/run"] == 16


class TestControlApi:
    def test_config_merges_and_rejects_unknown_or_mistyped_settings(self, sim: SimulatorHandle) -> None:
        merged = requests.post(sim.base_url + "/_sim/config", json={"run_time": 1, "fail": True}, timeout=5).json()

        assert merged["run_time"] == 1.0 and merged["fail"] is True and merged["api_key"] == sim.api_key
        for bad in ({"no_such_setting": 1}, {"fail": "yes"}, {"queue_full": -1}, {"fail_tasks": "123"}):
            assert requests.post(sim.base_url + "/_sim/config", json=bad, timeout=5).status_code == 400

    def test_reset_restores_start_up_settings_and_forgets_everything(self, sim: SimulatorHandle) -> None:
        start(sim)
        sim.configure(run_time=9, api_key="another")

        sim.reset()

        state = sim.state()
        assert state["config"]["run_time"] == RUN_TIME and state["config"]["api_key"] == sim.api_key
        assert state["tasks"] == [] and state["uploads"] == [] and state["calls"] == {}

    def test_counters_belong_to_one_simulator(self, sim: SimulatorHandle) -> None:
        post(sim, "/uc/openapi/accountStatus", {"apikey": sim.api_key})
        with running_simulator() as other:
            assert other.state()["calls"] == {}
        assert sim.state()["calls"] == {"/uc/openapi/accountStatus": 1}

    def test_the_command_line_starts_a_configured_simulator(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [sys.executable, "-m", "devtools.runninghub_sim", "--port", str(port), "--api-key", "cli-key"]
        command += ["--run-time", "0.1", "--queue-full", "2", "--fail-tasks", "1", "2"]
        process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[2], env=dict(os.environ))
        try:
            handle = None
            deadline = time.monotonic() + 10
            while handle is None and time.monotonic() < deadline:
                try:
                    handle = SimulatorHandle.connect(f"http://127.0.0.1:{port}")
                except OSError:
                    time.sleep(0.05)
            assert handle is not None
            config = handle.state()["config"]
            assert (config["api_key"], config["run_time"], config["queue_full"]) == ("cli-key", 0.1, 2)
            assert config["fail_tasks"] == ["1", "2"]
        finally:
            process.terminate()
            process.wait(5)


def test_multipart_parsing_keeps_binary_content_intact() -> None:
    payload = b"\r\n--not-the-boundary\r\n\x00\xff" * 50
    prepared = requests.Request(
        "POST", "http://127.0.0.1/", data={"apiKey": "k"}, files={"file": ("a.png", payload, "image/png")}
    ).prepare()
    assert isinstance(prepared.body, bytes)

    parts = parse_multipart(prepared.body, prepared.headers["Content-Type"])

    assert parts["file"].content == payload and parts["file"].filename == "a.png"
    assert parts["apiKey"].content == b"k"


def test_a_third_party_runninghub_client_works_against_the_simulator(sim: SimulatorHandle) -> None:
    file_name = upload(sim)["data"]["fileName"]
    with ThirdPartyClient(api_key=sim.api_key, base_url=sim.base_url, timeout=5) as third_party:
        task = third_party.run_ai_app(
            WEBAPP_ID,
            [
                {"nodeId": "103", "fieldName": "text", "fieldValue": "a model on a street"},
                {"nodeId": "74", "fieldName": "image", "fieldValue": file_name},
            ],
        )
        assert task.task_status is TaskStatus.RUNNING and len(task.task_id) == 19

        results = third_party.wait_for_completion(task.task_id, poll_interval=0.05, timeout=5)
        account = third_party.get_account_status()
        doomed = third_party.run_ai_app(
            WEBAPP_ID,
            [
                {"nodeId": "103", "fieldName": "text", "fieldValue": "x"},
                {"nodeId": "74", "fieldName": "image", "fieldValue": file_name},
            ],
        )
        third_party.cancel(doomed.task_id)

    assert len(results) == 12 and all(result.file_type == "png" for result in results)
    assert requests.get(results[0].file_url, timeout=5).headers["Content-Type"] == "image/png"
    assert account.remain_coins == "99999" and account.api_type == "NORMAL"
    assert sim.state()["cancelled"] == [doomed.task_id]


def test_chaos_faults_a_share_of_calls_and_jobs_reproducibly(sim: SimulatorHandle) -> None:
    def outcomes() -> list[int | str]:
        sim.reset()
        sim.configure(chaos=0.5, chaos_seed=7, chaos_slow=0.0)
        seen: list[int | str] = []
        for _ in range(40):
            response = requests.post(
                sim.base_url + "/task/openapi/outputs", json={"apiKey": sim.api_key, "taskId": "1"}, timeout=5
            )
            try:
                seen.append(response.json()["code"] if response.status_code == 200 else response.status_code)
            except ValueError:
                seen.append("malformed")
        return seen

    first = outcomes()
    assert first == outcomes()  # the same seed, the same faults
    fired = sim.state()["chaos"]
    assert 0 < sum(fired.values()) < 40
    assert {502, "malformed", 807} <= set(first)  # 807: no such task, the call itself went through


def test_chaos_makes_some_jobs_fail_hang_or_lose_their_webhook(sim: SimulatorHandle) -> None:
    file_name = upload(sim)["data"]["fileName"]
    sim.configure(chaos=0.5, chaos_seed=3, chaos_slow=0.0, run_time=0.0)
    jobs = []
    for _ in range(40):
        response = requests.post(
            sim.base_url + "/task/openapi/ai-app/run",
            json={
                "apiKey": sim.api_key,
                "webappId": WEBAPP_ID,
                "nodeInfoList": [
                    {"nodeId": "103", "fieldName": "text", "fieldValue": "p"},
                    {"nodeId": "74", "fieldName": "image", "fieldValue": file_name},
                ],
            },
            timeout=5,
        )
        if response.status_code == 200 and response.text.endswith("}") and response.json()["code"] == 0:
            jobs.append(response.json()["data"]["taskId"])
    sim.configure(chaos=0.0)
    fired = sim.state()["chaos"]
    job_faults = sum(fired.get(kind, 0) for kind in ("fail", "never_finish", "webhook_lost"))
    assert 0 < job_faults < len(jobs)
    assert fired.get("queue_full", 0) > 0  # runs may also be told the queue is full
    codes = Counter(post(sim, "/task/openapi/outputs", {"apiKey": sim.api_key, "taskId": job})["code"] for job in jobs)
    assert codes[805] == fired.get("fail", 0) and codes[804] == fired.get("never_finish", 0)
