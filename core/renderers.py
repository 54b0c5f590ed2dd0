from typing import Any

from rest_framework.renderers import JSONRenderer


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps successful payloads as {"success": true, "data": ...}; errors arrive already wrapped
    by the exception handler."""

    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code < 400:
            data = {"success": True, "data": data}
        return super().render(data, accepted_media_type, renderer_context)
