"""Gauges of the task tables, read when /metrics is scraped: two index-only queries on
(status, created_at), so a scrape costs the same with a million finished tasks."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from tasks.models import ACTIVE_STATUSES, Task, TaskStatus


class TaskStateCollector:
    def collect(self) -> Iterable[GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "photo_tasks_active", "Tasks pending or processing now, by status and type.", labels=["status", "type"]
        )
        for row in Task.objects.filter(status__in=ACTIVE_STATUSES).values("status", "type").annotate(n=Count("id")):
            active.add_metric([row["status"], row["type"]], row["n"])
        yield active
        oldest = (
            Task.objects.filter(status=TaskStatus.PENDING).order_by("created_at").values_list("created_at", flat=True)
        ).first()
        age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "photo_oldest_pending_task_age_seconds", "Age of the oldest pending task (0 when none).", value=age
        )
