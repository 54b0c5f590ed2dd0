"""OpenAPI details: the bearer scheme of our JWT authentication, and every answer shown inside the
success/error envelope that the renderer and the exception handler actually produce."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme

ERROR_SCHEMA = {
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


class EnvelopeJWTScheme(SimpleJWTScheme):
    target_class = "core.authentication.EnvelopeJWTAuthentication"
    name = "bearerAuth"


def wrap_in_envelope(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Post-processing hook: 2xx JSON bodies become {success: true, data: ...}; every operation
    documents the error envelope."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                body = response.get("content", {}).get("application/json")
                if status.startswith("2") and body is not None:
                    data = body.get("schema", {})
                    body["schema"] = {
                        "type": "object",
                        "required": ["success", "data"],
                        "properties": {"success": {"type": "boolean", "enum": [True]}, "data": data},
                    }
            responses.setdefault(
                "default",
                {"description": "Error (see the code table)", "content": {"application/json": {"schema": error_ref}}},
            )
    return result
