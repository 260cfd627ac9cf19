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
