"""The business metrics after real tasks (API, Celery worker, simulator): created, succeeded and
failed counters by type and failure code, refunds, RunningHub calls by endpoint and code; the
scrape-time gauges of pending work, with the oldest pending task's age."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from celery import current_app
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from devtools.testing import SimulatorHandle
from media.tests.factories import upload_photo
from tasks.models import Task
from tasks.tests.conftest import task_status, wait_for
from tasks.tests.factories import post_create


def scrape(settings: Any) -> dict[str, float]:
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert response.status_code == 200
    samples = {}
    for line in response.content.decode().splitlines():
        match = re.fullmatch(r"(\S+?(?:\{.*\})?) (\S+)", line)
        if match and not line.startswith("#"):
            samples[match.group(1)] = float(match.group(2))
    return samples


def delta(before: dict[str, float], after: dict[str, float], series: str) -> float:
    return after.get(series, 0.0) - before.get(series, 0.0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_counters_after_a_successful_and_a_failed_task(
    worker: None, sim: SimulatorHandle, settings: Any, pose12_client: APIClient
) -> None:
    sim.configure(run_time=0.3)
    client = pose12_client
    before = scrape(settings)
    ok = post_create(client, {"type": "model_pose12", "inputImageUrl": upload_photo(client)}).json()["data"]
    wait_for(task_status(client, ok["id"], "success"), timeout=60)
    cleaned = post_create(client, {"type": "basic_clean", "inputImageUrl": upload_photo(client)}).json()["data"]
    wait_for(task_status(client, cleaned["id"], "success"), timeout=60)
    cancelled = post_create(client, {"type": "model_pose12", "inputImageUrl": upload_photo(client)}).json()["data"]
    client.post(f"/api/task/{cancelled['id']}/cancel")
    after = scrape(settings)

    assert delta(before, after, 'photo_tasks_created_total{type="model_pose12"}') == 2
    assert delta(before, after, 'photo_tasks_created_total{type="basic_clean"}') == 1
    assert delta(before, after, 'photo_tasks_succeeded_total{type="model_pose12"}') == 1
    assert delta(before, after, 'photo_tasks_succeeded_total{type="basic_clean"}') == 1
    assert delta(before, after, 'photo_tasks_failed_total{code="cancelled",type="model_pose12"}') == 1
    assert delta(before, after, "photo_quota_refunds_total") == 1
    assert delta(before, after, 'photo_task_duration_seconds_count{type="model_pose12"}') == 1
    calls = "photo_runninghub_request_duration_seconds_count"
    assert delta(before, after, f'{calls}{{code="0",endpoint="/task/openapi/ai-app/run"}}') >= 1
    assert delta(before, after, f'{calls}{{code="0",endpoint="/task/openapi/outputs"}}') >= 1


@pytest.mark.django_db
def test_gauges_of_pending_work(settings: Any, member: User) -> None:
    now = timezone.now()
    old = Task.objects.create(
        user=member, type="basic_clean", input_image_url="https://images.example.com/a.jpg", cost=1
    )
    Task.objects.filter(pk=old.pk).update(created_at=now - timedelta(minutes=7))
    Task.objects.create(user=member, type="model_pose12", input_image_url="https://images.example.com/b.jpg", cost=1)
    Task.objects.create(
        user=member,
        type="model_pose12",
        input_image_url="https://images.example.com/c.jpg",
        cost=1,
        status="processing",
    )
    samples = scrape(settings)
    assert samples['photo_tasks_active{status="pending",type="basic_clean"}'] == 1
    assert samples['photo_tasks_active{status="pending",type="model_pose12"}'] == 1
    assert samples['photo_tasks_active{status="processing",type="model_pose12"}'] == 1
    assert 7 * 60 <= samples["photo_oldest_pending_task_age_seconds"] < 8 * 60


@pytest.mark.django_db
def test_scrape_time_gauges_cost_two_queries(settings: Any, member: User, django_assert_max_num_queries: Any) -> None:
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    with django_assert_max_num_queries(2):
        Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")


@pytest.mark.django_db
def test_queue_depth_is_read_from_the_broker(settings: Any) -> None:
    current_app.control.purge()
    with current_app.connection_for_write() as connection:
        producer = connection.Producer()
        for _ in range(3):
            producer.publish({"probe": True}, routing_key="cpu", exchange="", declare=[])
    try:
        samples = scrape(settings)
        assert samples['photo_celery_queue_length{queue="cpu"}'] == 3
        assert samples['photo_celery_queue_length{queue="io"}'] == 0
    finally:
        current_app.control.purge()
