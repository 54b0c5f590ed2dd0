"""OpenAPI details: the bearer scheme of our JWT authentication, the error answers each operation
can give, and every 2xx body shown inside the success envelope that the renderer produces."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from core import errors

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer", "description": "SPEC §2 error code"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
        },
    },
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}


# Errors any authenticated operation can give.
AUTHENTICATED = (errors.NotAuthenticated, errors.ServerError)


def error_responses(*kinds: type[errors.ApplicationError]) -> dict[int, OpenApiResponse]:
    """The error answers of an operation, one per HTTP status, each naming its codes."""
    by_status: dict[int, list[type[errors.ApplicationError]]] = defaultdict(list)
    every: tuple[type[errors.ApplicationError], ...] = (*kinds, errors.ServerError)
    for kind in every:
        if kind not in by_status[kind.http_status]:
            by_status[kind.http_status].append(kind)
    return {
        status: OpenApiResponse(
            response=OpenApiTypes.OBJECT,
            description="; ".join(f"{kind.code} {kind.message_en}" for kind in sorted(group, key=lambda k: k.code)),
        )
        for status, group in sorted(by_status.items())
    }


class EnvelopeJWTScheme(SimpleJWTScheme):
    target_class = "core.authentication.EnvelopeJWTAuthentication"
    name = "bearerAuth"


RESPONSE_HEADERS = {
    "429": {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}},
}


def wrap_in_envelope(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Post-processing hook: 2xx JSON bodies become {success: true, data: <payload>} under a named
    component (`<Payload>Envelope`), so generated clients get a typed model for each answer; error
    answers are the error envelope."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status in RESPONSE_HEADERS:
                    response.setdefault("headers", {}).update(RESPONSE_HEADERS[status])
                body = response.get("content", {}).get("application/json")
                if body is None:
                    continue
                if not status.startswith("2"):
                    body["schema"] = ERROR_REF
                    continue
                data = body.get("schema", {})
                envelope = {
                    "type": "object",
                    "required": ["success", "data"],
                    "properties": {"success": {"type": "boolean", "enum": [True]}, "data": data},
                }
                ref = data.get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    name = ref.rsplit("/", 1)[1] + "Envelope"
                    schemas[name] = envelope
                    body["schema"] = {"$ref": f"#/components/schemas/{name}"}
                else:
                    body["schema"] = envelope
    return result
