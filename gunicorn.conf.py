"""gunicorn's settings; gunicorn reads this file from the working folder by itself
(`gunicorn config.wsgi` run from the project root)."""

# --- Request size limits (security) --------------------------------------------------------------
# Requests a little over gunicorn's defaults (a 4 KiB request line, 8 KiB per header) should reach
# Django, which refuses them in the API's JSON envelope (4002) instead of gunicorn's HTML 4xx page:
# a long Idempotency-Key, a long query. The bounds stay: 8190 is gunicorn's largest request line,
# and 100 headers of 16 KiB keep a request's headers under 2 MiB.
limit_request_line = 8190
limit_request_field_size = 16384
limit_request_fields = 100

# --- Processes (operations) -----------------------------------------------------------------------
# `gunicorn config.wsgi` in production (see Dockerfile, compose.yaml); every value can be overridden
# from the environment or the command line.
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402

from gunicorn.glogging import Logger  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Requests mostly wait on PostgreSQL and Redis; GET /api/task/{id}?wait=N holds a thread up to 25 s.
# Threads (gthread) keep those waits cheap; processes scale with the cores.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Longer than the longest request (a 25 s long poll, a 20 MB upload on a slow link), so that only a
# stuck worker is killed; on a restart, requests in flight get this long to finish.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (a slow leak never grows unbounded); the jitter keeps them from all
# restarting at the same moment.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))
# Access lines on stdout, like the application's (one JSON object per line, see JsonAccessLogger);
# errors on stderr.
accesslog = "-"
errorlog = "-"


class JsonAccessLogger(Logger):
    """Access lines as JSON objects, with the request id Django answered with. The path is logged
    without its query string (the RunningHub webhook URL carries its secret there)."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        atoms = self.atoms(resp, req, environ, request_time)
        line = {
            "event": "http_access",
            "logger": "gunicorn.access",
            "remote_addr": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "status": int(atoms["s"]),
            "bytes": atoms["B"],
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": atoms.get("{x-request-id}o", "-"),
            "user_agent": atoms["a"],
        }
        self.access_log.info(json.dumps(line, ensure_ascii=False))


logger_class = JsonAccessLogger
access_log_format = "%(message)s"


def on_starting(server: Any) -> None:
    """Counters from a previous run's workers must not be added to this run's (prometheus
    multiprocess mode, PROMETHEUS_MULTIPROC_DIR)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
