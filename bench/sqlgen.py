"""INSERT statements over every column of a model: the caller gives SQL expressions for the
columns it cares about, the model's defaults fill in the rest (NULL where the field allows it).
Built from the model at run time, so a column added later does not break the bench's raw SQL."""

from __future__ import annotations

import json

from django.db import models


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def column_values(model: type[models.Model], given: dict[str, str]) -> dict[str, str]:
    """Column → SQL expression for every concrete column that is not an auto-increment key."""
    values: dict[str, str] = {}
    for field in model._meta.concrete_fields:
        column = field.column
        assert column is not None
        if column in given:
            values[column] = given[column]
        elif isinstance(field, models.AutoField | models.BigAutoField):
            continue
        elif field.null:
            values[column] = "NULL"
        elif isinstance(field, models.JSONField):
            values[column] = _literal(json.dumps(field.get_default())) + "::jsonb"
        elif field.has_default() or isinstance(field, models.CharField | models.TextField):
            values[column] = _literal(field.get_default())
        else:
            raise ValueError(f"{model.__name__}.{field.name} needs a value")
    return values


def insert_select(model: type[models.Model], given: dict[str, str], source: str) -> str:
    values = column_values(model, given)
    columns = ", ".join(values)
    return f"INSERT INTO {model._meta.db_table} ({columns}) SELECT {', '.join(values.values())} FROM {source}"


def insert_values(model: type[models.Model], given: dict[str, str]) -> str:
    values = column_values(model, given)
    return f"INSERT INTO {model._meta.db_table} ({', '.join(values)}) VALUES ({', '.join(values.values())})"
