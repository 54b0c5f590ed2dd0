"""Error tracking: sentry-sdk only when SENTRY_DSN is set, without personal data, every event
tagged with the request id. Run in a fresh interpreter (Sentry is initialised by the settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core.tests.embedded import ROOT

PROBE = """
import json
import django

django.setup()
from django.urls import resolve
import sys

resolve("/api/task/create")  # the URL conf and every view module imported
loaded_by_the_product = "sentry_sdk" in sys.modules
import sentry_sdk
from sentry_sdk.transport import Transport
from django.test import Client
from core import apis

events = []


class Captured(Transport):
    def capture_envelope(self, envelope):
        events.extend(item.payload.json for item in envelope.items if item.type == "event")


client = sentry_sdk.get_client()
report = {
    "active": client.is_active(),
    "pii": client.options.get("send_default_pii"),
    "loaded": loaded_by_the_product,
}
if client.is_active():
    client.transport = Captured(client.options)

    class Broken:
        @staticmethod
        def now():
            raise RuntimeError("clock broke")

    apis.timezone = Broken
    status = (
        Client(raise_request_exception=False)
        .get("/health?token=query-secret-1", HTTP_X_REQUEST_ID="trace-me-42", HTTP_AUTHORIZATION="Bearer secret-2")
        .status_code
    )
    sentry_sdk.flush()
    report.update(status=status, events=[{"tags": e.get("tags"), "text": json.dumps(e)} for e in events])
print(json.dumps(report))
"""


def probe(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_sentry_is_off_without_a_dsn() -> None:
    report = probe(SENTRY_DSN="")
    assert report["active"] is False
    # Not even imported: sentry-sdk and its HTTP transport would cost every process ~25 MB.
    assert report["loaded"] is False


def test_an_unhandled_error_is_reported_with_the_request_id_and_no_personal_data() -> None:
    report = probe(SENTRY_DSN="http://public@127.0.0.1:9/1")
    assert report["active"] is True and report["pii"] is False and report["loaded"] is True
    assert report["status"] == 500
    (event,) = report["events"]
    tags = event["tags"] if isinstance(event["tags"], dict) else dict(event["tags"])
    assert tags["request_id"] == "trace-me-42"
    assert "query-secret-1" not in event["text"] and "secret-2" not in event["text"]
