"""Prometheus metrics (prometheus-client).

Counters and histograms live in the process that counts them: gunicorn workers and Celery's
prefork children write them to files under PROMETHEUS_MULTIPROC_DIR when it is set (one folder per
service), and one scrape adds them up. `GET /metrics` on the web serves the web's series plus the
gauges read at scrape time (queue depths, tasks pending and processing, the oldest pending task);
a worker serves its own on WORKER_METRICS_PORT (config/celery.py). Without the folder (the embedded
default, the tests) everything stays in the process's default registry."""

from __future__ import annotations

import contextlib
import hmac
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from kombu import Connection
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # The metrics below open their files in this folder as they are created.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# --- HTTP ---------------------------------------------------------------------------------------
HTTP_REQUESTS = Histogram(
    "photo_http_request_duration_seconds",
    "Web requests by method, route (the URL pattern, not the path) and status.",
    ["method", "route", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25),
)

# --- Business -----------------------------------------------------------------------------------
TASKS_CREATED = Counter("photo_tasks_created_total", "Tasks created (charged), by type.", ["type"])
TASKS_STARTED = Counter("photo_tasks_started_total", "Tasks that went from pending to processing.", ["type"])
TASKS_SUCCEEDED = Counter("photo_tasks_succeeded_total", "Tasks that succeeded, by type.", ["type"])
TASKS_FAILED = Counter("photo_tasks_failed_total", "Tasks that failed, by type and failure code.", ["type", "code"])
TASK_DURATION = Histogram(
    "photo_task_duration_seconds",
    "From creation to success, by type.",
    ["type"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
QUOTA_REFUNDS = Counter("photo_quota_refunds_total", "Refunds of a failed task's charge.")
QUOTA_REFUNDED_UNITS = Counter("photo_quota_refunded_units_total", "Quota given back by refunds.")
RUNNINGHUB_REQUESTS = Histogram(
    "photo_runninghub_request_duration_seconds",
    "RunningHub OpenAPI calls by endpoint and answer (its business code, http_<status>, or error).",
    ["endpoint", "code"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
SWEEP_DURATION = Histogram(
    "photo_sweep_duration_seconds", "One sweep run.", buckets=(0.05, 0.1, 0.5, 1, 5, 10, 20, 40, 60)
)
SWEEP_ITEMS = Counter(
    "photo_sweep_items_total",
    "What sweeps did: failed_pending, failed_processing, requeued, quota_expired, idempotency_purged.",
    ["action"],
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_scrape_collectors: list[Collector] = []


def register_scrape_collector(collector: Collector) -> None:
    """Gauges computed when /metrics is read (apps register theirs in AppConfig.ready)."""
    _scrape_collectors.append(collector)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """This process's counters, or every process's under PROMETHEUS_MULTIPROC_DIR."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def clear_multiprocess_dir() -> None:
    """At a server's start: files a previous run left would be added to this run's counters."""
    folder = multiprocess_dir()
    if folder is None:
        return
    os.makedirs(folder, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for name in os.listdir(folder):
        # This process's own files are open already (the metrics created at import).
        if name.endswith(".db") and not name.endswith(own):
            os.remove(os.path.join(folder, name))


def mark_process_dead(pid: int) -> None:
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def serve_worker_metrics() -> None:
    """A Celery worker's metrics endpoint (plain HTTP on WORKER_METRICS_PORT, for the internal
    network only: it holds counters, no secrets). Nothing when the port is unset."""
    if settings.WORKER_METRICS_PORT:
        start_http_server(settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDR, registry=process_registry())


class _Snapshot:
    """A registry that yields the process registry's metrics and the scrape-time gauges."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = list(collectors)

    def collect(self) -> Iterable[object]:
        for collector in self._collectors:
            yield from collector.collect()


class BrokerQueueCollector:
    """`photo_celery_queue_length{queue}`: messages waiting in each Celery queue, read at scrape
    time (LLEN on the Redis broker; a passive declare on RabbitMQ; files in the filesystem broker's
    folder). Steps scheduled with a countdown wait inside a worker, not in the queue."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("photo_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])
        try:
            lengths = self._lengths()
        except Exception:  # an unreachable broker shows as missing series (alert on absent()), not a 500
            lengths = {}
        for queue, length in lengths.items():
            family.add_metric([queue], length)
        yield family

    @staticmethod
    def _lengths() -> dict[str, int]:
        queues = [queue.name for queue in settings.CELERY_TASK_QUEUES]
        url: str = settings.CELERY_BROKER_URL
        if url.startswith("redis"):
            client = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            try:
                return {queue: int(client.llen(queue)) for queue in queues}
            finally:
                client.close()
        if url.startswith("filesystem"):
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
            names = os.listdir(folder)
            return {queue: sum(name.endswith(f".{queue}.msg") for name in names) for queue in queues}
        if url.startswith(("amqp", "pyamqp")):
            # A passive declare counts the ready messages (a queue not declared yet is left out).
            lengths: dict[str, int] = {}
            with Connection(url, connect_timeout=1, transport_options={"read_timeout": 1, "write_timeout": 1}) as conn:
                for queue in queues:
                    channel: Any = conn.channel()  # a refused passive declare closes its channel
                    try:
                        lengths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
                    except conn.channel_errors:
                        pass
                    finally:
                        with contextlib.suppress(Exception):
                            channel.close()
            return lengths
        return {}


register_scrape_collector(BrokerQueueCollector())


def _authorized(request: HttpRequest, token: str) -> bool:
    offered = request.headers.get("Authorization", "")
    scheme, _, credential = offered.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode())


@csrf_exempt
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """SPEC §8: 404 while METRICS_TOKEN is unset, 401 without the right bearer token."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    if not _authorized(request, token):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([process_registry(), *_scrape_collectors]))  # type: ignore[arg-type]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Times every request under its URL pattern (bounded labels: never the raw path)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(method, route or "unmatched", str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response
