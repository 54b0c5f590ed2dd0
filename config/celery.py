import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import (
    after_task_publish,
    before_task_publish,
    celeryd_init,
    setup_logging,
    worker_process_shutdown,
    worker_ready,
)
from django.conf import settings
from django_structlog.celery.steps import DjangoStructLogInitStep

from core.metrics import clear_multiprocess_dir, mark_process_dead, serve_worker_metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("photo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class WorkerLogContext(DjangoStructLogInitStep):
    """django-structlog's worker side: binds the request id carried in each message to the lines
    of that task. Its publishing side is already connected in every process (the app's ready(),
    DJANGO_STRUCTLOG_CELERY_ENABLED), so the step's second copy is taken off (one header, one
    task_enqueued line per message)."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        before_task_publish.disconnect(self.receiver.receiver_before_task_publish)
        after_task_publish.disconnect(self.receiver.receiver_after_task_publish)


app.steps["worker"].add(WorkerLogContext)


@setup_logging.connect
def _django_logging(**kwargs: Any) -> None:
    """Workers and beat log through Django's LOGGING (structured lines), not Celery's own format.
    Connecting at all keeps Celery from configuring logging; the settings are applied here unless
    something (Django's set-up, a test run) already did."""
    if not logging.getLogger().handlers:
        logging.config.dictConfig(settings.LOGGING)


@celeryd_init.connect
def _fresh_metrics(**kwargs: Any) -> None:
    clear_multiprocess_dir()


@worker_ready.connect
def _serve_worker_metrics(**kwargs: Any) -> None:
    """The worker's own metrics on WORKER_METRICS_PORT: its counters (tasks succeeded and failed,
    RunningHub calls, sweeps), added up over its prefork children under PROMETHEUS_MULTIPROC_DIR."""
    serve_worker_metrics()


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **kwargs: Any) -> None:
    mark_process_dead(pid or os.getpid())
