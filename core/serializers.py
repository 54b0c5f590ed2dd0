"""Helpers every input serializer uses."""

from __future__ import annotations

import datetime
from typing import Any

from rest_framework import serializers

from core import errors


def parse(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    """Validated values of a JSON object body, or 4002 naming the fields."""
    if not isinstance(data, dict):
        raise errors.InvalidParams(fields={"body": ["必须是 JSON 对象"]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class UtcDateTimeField(serializers.DateTimeField):
    """Timestamps in UTC ISO 8601 (`…+00:00`), whatever zone the admin displays in."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=datetime.UTC, **kwargs)

    def to_representation(self, value: datetime.datetime) -> str:
        return value.astimezone(datetime.UTC).isoformat()


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string (a number or a list is refused, not converted)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))
