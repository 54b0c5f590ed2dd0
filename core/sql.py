"""Statements for the hottest paths (ordering a job, authenticating its request), built once per
model instead of once per call.

`row_insert` writes a model instance as `Model.save(force_insert=True)` does (every field's
`pre_save`, so `auto_now` and defaults apply, then the database's preparation of each value) and
`row_get` reads one by primary key as `Model.objects.get(pk=...)` does (the database's converters
applied to every value). What they skip is the ORM building and compiling the same query again for
every request: about 0.5 ms of CPU per statement, most of a create's statements. Models with
something the plain insert would not reproduce (database defaults, generated fields, custom
placeholders, a save() of their own) are refused when the statement is built, so a later change to
a model cannot make `row_insert` write what the ORM would not."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, models
from django.db.models.fields import NOT_PROVIDED

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class _Insert:
    sql: str
    fields: tuple[models.Field[Any, Any], ...]
    returns_pk: bool


@dataclass(frozen=True)
class _Get:
    sql: str
    names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Converter, ...], Any], ...]


def _plain_fields(model: type[models.Model], *, writing: bool) -> list[models.Field[Any, Any]]:
    if model._meta.parents:
        raise TypeError(f"{model.__name__} inherits a table; use the ORM")
    fields = list(model._meta.local_concrete_fields)
    if writing:
        if model.save is not models.Model.save:
            raise TypeError(f"{model.__name__} overrides save(); use the ORM")
        for field in fields:
            if field.db_default is not NOT_PROVIDED or field.generated or hasattr(field, "get_placeholder"):
                raise TypeError(f"{model.__name__}.{field.name} needs the ORM to be written")
    return fields


def _column(field: models.Field[Any, Any]) -> str:
    assert field.column is not None
    return field.column


@functools.cache
def _insert(model: type[models.Model], alias: str) -> _Insert:
    connection = connections[alias]
    meta = model._meta
    fields = [field for field in _plain_fields(model, writing=True) if field is not meta.auto_field]
    quote = connection.ops.quote_name
    # Names from the model, values as parameters.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_column(f)) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    returns_pk = meta.auto_field is not None
    if returns_pk:
        sql += f" RETURNING {quote(_column(meta.pk))}"
    return _Insert(sql=sql, fields=tuple(fields), returns_pk=returns_pk)


def row_insert(obj: models.Model, *, using: str = "default") -> None:
    """INSERT `obj` (its auto primary key, if any, is set from the database's answer)."""
    connection = connections[using]
    statement = _insert(type(obj), using)
    values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in statement.fields]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, values)
        if statement.returns_pk:
            obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = using


@functools.cache
def _get(model: type[models.Model], alias: str) -> _Get:
    connection = connections[alias]
    meta = model._meta
    fields = _plain_fields(model, writing=False)
    quote = connection.ops.quote_name
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((index, tuple(found), column))
    sql = (
        f"SELECT {', '.join(quote(_column(f)) for f in fields)} FROM {quote(meta.db_table)} "  # noqa: S608
        f"WHERE {quote(_column(meta.pk))} = %s"
    )
    return _Get(sql=sql, names=tuple(f.attname for f in fields), converters=tuple(converters))


def row_get(model: type[M], pk: Any, *, using: str = "default") -> M | None:
    """The row with primary key `pk` as a model instance, or None."""
    connection = connections[using]
    statement = _get(model, using)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [model._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values: Sequence[Any] = row
    if statement.converters:
        values = list(row)
        for index, found, column in statement.converters:
            for converter in found:
                values[index] = converter(values[index], column, connection)
    return model.from_db(using, list(statement.names), values)
