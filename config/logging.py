"""Structured logging: structlog renders every line, ours and the standard library's (Django, Celery,
requests), with the context bound for the request or Celery task that wrote it (request_id,
user_id, task_id, celery_task_id). JSON lines in a deployment, readable lines in the embedded
default. The settings call `logging_config` once; Django and the Celery worker apply it."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

import structlog

# Any field named like a credential is masked, whoever logs it: a line must never carry a password,
# a token, an API key, a signature or a cookie.
_SENSITIVE_FIELD = re.compile(r"pass(word)?|secret|token|authorization|api_?key|cookie|signature|credential", re.I)
# Credentials that travel in URLs (our webhook's ?token=, presigned COS and S3 links) are masked in
# any text, including a message or an exception's.
_SECRET_IN_URL = re.compile(
    r"([?&](?:token|access_token|sign|signature|q-signature|q-ak|x-amz-signature|x-amz-credential|apikey|api_key|secret)=)"
    r"[^&\s\"'#]+",
    re.I,
)
_JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    """The text with JWTs and credentials in URLs masked."""
    return _JWT.sub(REDACTED, _SECRET_IN_URL.sub(rf"\1{REDACTED}", text))


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key != "event" and _SENSITIVE_FIELD.search(key):
            event_dict[key] = REDACTED
        elif key.startswith("_"):  # structlog's own bookkeeping (the LogRecord itself)
            continue
        elif not isinstance(value, int | float | bool | list | dict | tuple) and value is not None:
            # Objects (Django's request in its "Bad Request" lines) are rendered as text here, where
            # the text can still be checked.
            event_dict[key] = redact_text(str(value))
    return event_dict


def _shared_processors() -> list[Any]:
    """What every line gets, whether structlog or the standard library wrote it."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_secrets,
    ]


def renderer_processors(*, json: bool) -> list[Any]:
    """The formatter's chain: JSON lines (tracebacks as a string field) or readable console lines."""
    if json:
        return [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ]
    return [structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.dev.ConsoleRenderer(colors=False)]


def formatter(*, json: bool) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: structlog's events and standard-library records alike."""
    return structlog.stdlib.ProcessorFormatter(
        processors=renderer_processors(json=json), foreign_pre_chain=_shared_processors()
    )


def logging_config(*, json: bool, level: str) -> dict[str, Any]:
    """Configure structlog and return Django's LOGGING dict."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "json": json}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # The COS SDK logs request headers (its signed Authorization) at INFO.
            "qcloud_cos": {"level": "WARNING"},
            # Connection-pool chatter; our own lines say what was called.
            "urllib3": {"level": "WARNING"},
        },
    }
