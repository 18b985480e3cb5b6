"""Writing many rows given as tuples, for the steps that touch thousands of rows at once (a month
close's invoices and their discount and credit records): COPY on PostgreSQL, with no model
instance per row; the ORM's bulk statements on other databases (SQLite, the laptop default).

Fields are named by their attribute names (`invoice_id`, not `invoice`); the caller gives every
value, `auto_now_add` times included: COPY fills in nothing but database defaults.
"""

import gc
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from psycopg.postgres import types as postgres_types

BATCH = 2_000


def copy_rows(cursor, model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
    """PostgreSQL: COPY `rows` (tuples in the order of `fields`) into `model`'s table, with the
    columns' types told to the driver first (it then adapts each value without looking its
    type up: about twice as fast per row)."""
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    names = ", ".join(quote(field.column) for field in columns)
    with cursor.copy(f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN") as copy:
        copy.set_types([_type_oid(field) for field in columns])
        for row in rows:
            copy.write_row(row)


def _type_oid(field) -> int:
    """The PostgreSQL type of `field`'s column, from the driver's table of built-in types (no
    query, so a COPY costs the same number of queries the first time as every other time):
    `numeric(12, 2)` is `numeric`, `varchar(20)` is `varchar`."""
    return postgres_types[field.db_type(connection).split("(")[0].strip()].oid


def insert_rows(model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert `rows` (tuples in the order of `fields`) into `model`'s table."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_rows(cursor, model, fields, rows)
        return
    model.objects.bulk_create(
        (model(**dict(zip(fields, row, strict=True))) for row in rows), batch_size=BATCH
    )


def update_column(model, field: str, values: dict) -> None:
    """Set `field` of each row whose pk is a key of `values` to its value, in one statement per
    BATCH rows (PostgreSQL: UPDATE … FROM VALUES)."""
    if not values:
        return
    if connection.vendor != "postgresql":
        rows = list(model.objects.filter(pk__in=list(values)).only("pk"))
        for row in rows:
            setattr(row, field, values[row.pk])
        model.objects.bulk_update(rows, [field], batch_size=BATCH)
        return
    quote = connection.ops.quote_name
    model_field = model._meta.get_field(field)
    column, db_type = quote(model_field.column), model_field.db_type(connection)
    pk_column = quote(model._meta.pk.column)
    items = list(values.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            placeholders = ", ".join(["(%s::bigint, %s::" + db_type + ")"] * len(batch))
            cursor.execute(
                f"UPDATE {quote(model._meta.db_table)} AS t SET {column} = v.value "
                f"FROM (VALUES {placeholders}) AS v (pk, value) WHERE t.{pk_column} = v.pk",
                [value for pair in batch for value in pair],
            )


def id_in(field: str, ids) -> Q:
    """`Q(<field>__in=ids)` for thousands of ids: on PostgreSQL one array parameter, so neither
    the driver nor the server parses thousands of placeholders on every chunk."""
    if connection.vendor == "postgresql":
        # An array literal: the driver would otherwise dump the list element by element.
        literal = "{" + ",".join(map(str, map(int, ids))) + "}"
        return Q(**{f"{field}__in": RawSQL("select unnest(%s::bigint[])", [literal])})
    return Q(**{f"{field}__in": list(ids)})


@contextmanager
def gc_paused():
    """Python's cyclic garbage collector off for a bounded batch of work (a month close chunk):
    its thousands of short-lived rows would otherwise trigger collections that scan every
    object of the process, a quarter of a chunk's CPU. What the batch leaves is collected
    after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
