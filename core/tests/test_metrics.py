"""GET /metrics (SPEC §8): hidden while METRICS_TOKEN is unset, 401 without the right bearer token,
Prometheus text with the request metrics otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    return str(settings.METRICS_TOKEN)


def test_metrics_is_not_found_while_no_token_is_set(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic c2NyYXBlLXRva2Vu", "scrape-token-0123456789"])
def test_metrics_refuses_a_missing_or_wrong_token(token: str, header: str | None) -> None:
    response = Client().get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert b"photo_" not in response.content


def test_metrics_with_the_token_shows_requests_by_route(token: str) -> None:
    client = Client()
    assert client.get("/health").status_code == 200
    assert client.get("/api/no-such-endpoint").status_code == 404
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'photo_http_request_duration_seconds_count{method="GET",route="health",status="200"}' in text
    # The catch-all is one series, whatever path was asked for.
    assert "no-such-endpoint" not in text
    for family in (
        "photo_tasks_active",
        "photo_oldest_pending_task_age_seconds",
        "photo_celery_queue_length",
    ):
        assert f"# TYPE {family} gauge" in text
    assert 'photo_celery_queue_length{queue="cpu"}' in text and 'photo_celery_queue_length{queue="io"}' in text
