"""Error tracking with sentry-sdk (Django and Celery integrations), started by the settings only
when SENTRY_DSN is set. Nothing personal or secret leaves: no user data, no request bodies (they
hold passwords and tokens), no query strings (the RunningHub webhook URL carries its secret)."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from config.logging import redact_text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    return value


def scrub_event(event: Any, hint: Any) -> Any:
    """Query strings and bodies off the request; JWTs and URL credentials masked everywhere else
    (messages, breadcrumbs, the local variables of stack frames)."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("query_string", None)
        request.pop("data", None)
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
    return _scrubbed(event)


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        before_send=scrub_event,
    )
