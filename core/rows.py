"""Model instances from rows a hand-written statement returned, as the ORM would build them (JSON decoded, dates
aware...), for the few reads on every page of the review where compiling a queryset costs more than the query."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connections
from django.db.models import Model


@cache
def _fields(model: type[Model], alias: str) -> tuple[list[str], list[tuple[Any, list]]]:
    connection = connections[alias]
    fields = model._meta.concrete_fields
    loaders = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        loaders.append((column, [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]))
    return [field.attname for field in fields], loaders


def model_columns(model: type[Model], table: str = "") -> str:
    """The model's columns in the order model_from_row reads them, each prefixed by `table` (its table's name or an
    alias), quoted."""
    quote = connections["default"].ops.quote_name
    prefix = f"{quote(table or model._meta.db_table)}."
    return ", ".join(prefix + quote(field.column) for field in model._meta.concrete_fields)


def model_from_row(model: type[Model], row: tuple | list, alias: str = "default") -> Model:
    """An instance of `model` from the values of its model_columns, in that order."""
    connection = connections[alias]
    names, loaders = _fields(model, alias)
    values = []
    for value, (column, converters) in zip(row, loaders, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        values.append(value)
    return model.from_db(alias, names, values)


def rows_insert(model: type[Model], objects: list[Model], *, ignore_conflicts: bool = False) -> None:
    """INSERT the objects (their primary keys left to the database, not read back): what bulk_create does, without
    compiling a queryset, for the writes every review makes. Values are prepared by each field, as the ORM would."""
    if not objects:
        return
    connection = connections["default"]
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"
        f" VALUES {', '.join([row] * len(objects))}" + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
    )
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for obj in objects for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
