"""Model instances from hand-written SQL, for the few statements every inbound message runs.

Compiling a queryset costs more CPU than running it on this stack (0.5-1 ms against ~0.1 ms of
PostgreSQL time; docs/performance.md, "What limits the ingest path"). The hot path of ingestion
writes its SELECTs by hand and turns rows back into model instances here, with the same database
converters the ORM would apply, so the instances are indistinguishable from the ORM's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Model


@cache
def _plan(model: type[Model], vendor: str) -> tuple[list[str], list[str], list[tuple[Any, list]]]:
    fields = list(model._meta.concrete_fields)
    converters = [
        (f.cached_col, connection.ops.get_db_converters(f.cached_col) + f.get_db_converters(connection))
        for f in fields
    ]
    return [f.column for f in fields], [f.attname for f in fields], converters


def columns(model: type[Model], alias: str) -> str:
    """The select list of `model`'s concrete fields from table alias `alias`, in `instance()` order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(column)}" for column in _plan(model, connection.vendor)[0])


def width(model: type[Model]) -> int:
    return len(_plan(model, connection.vendor)[0])


def instance(model: type[Model], row: tuple | list, start: int = 0) -> Model:
    """A model instance from `row[start:start + width(model)]`, as selected by `columns()`."""
    _columns, attnames, converters = _plan(model, connection.vendor)
    values = []
    for offset, (expression, field_converters) in enumerate(converters):
        value = row[start + offset]
        for convert in field_converters:
            value = convert(value, expression, connection)
        values.append(value)
    return model.from_db(connection.alias, attnames, values)


def insert(instance: Model) -> None:
    """INSERT `instance` (a new row with an automatic primary key) with one statement, as
    `instance.save()` would, without the ORM's compilation: pre_save hooks (auto_now_add) and
    database preparation of every value run as in `save()`. No signals are sent, so this is only
    for models that have no receivers (the timeline's entries)."""
    meta = type(instance)._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    quote = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias


def update(instance: Model, fields: list[str], *, increment: str) -> None:
    """UPDATE `fields` of a saved `instance` and add one to the integer field `increment`, reading
    its new value back (RETURNING), in one statement, as `save(update_fields=...)` with an
    F() expression would. pre_save hooks (auto_now) run; no signals are sent."""
    meta = type(instance)._meta
    quote = connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields if name != increment]
    counter = meta.get_field(increment)
    assignments = [f"{quote(f.column)} = %s" for f in targets]
    assignments.append(f"{quote(counter.column)} = {quote(counter.column)} + 1")
    values = [f.get_db_prep_save(f.pre_save(instance, False), connection) for f in targets]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s RETURNING {quote(counter.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, instance.pk])
        row = cursor.fetchone()
    if row is None:
        raise type(instance).DoesNotExist(f"{meta.label} {instance.pk} no longer exists")
    setattr(instance, counter.attname, row[0])
