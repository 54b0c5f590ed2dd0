"""The API's one body format. Whatever a body holds, reading it either gives values every layer
below can handle (validation, the database, the JSON renderer) or a ParseError (4002)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# PostgreSQL stores no NUL in text or JSON, and UTF-8 cannot encode a lone surrogate (which JSON
# can spell as "\ud800"): either reaching the database or the renderer would be a 500.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# No body of this API nests deeper than a few levels; a cap far below Python's recursion limit
# keeps every recursive walk further down (serializers, json.dumps, the error handler) safe.
MAX_DEPTH = 32


def unstorable(text: str) -> bool:
    return UNSTORABLE.search(text) is not None


def _check(data: Any) -> None:
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if unstorable(value):
                raise ParseError("JSON parse error - text holds NUL or an unpaired surrogate")
        elif isinstance(value, (list, Mapping)):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
            items = [*value.keys(), *value.values()] if isinstance(value, Mapping) else value
            pending.extend((item, depth + 1) for item in items)


class SafeJSONParser(JSONParser):
    """DRF's JSON parser (bad syntax, bad encoding and NaN are already its ParseError), plus bodies
    nested too deep for the decoder or for this API, and text PostgreSQL refuses."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        _check(data)
        return data
