"""The invoice CSV (DESIGN "Contracts"): one writer behind the finance page's *Export CSV* and
`manage.py export_invoices`, streaming any filtered invoice queryset in constant memory.

Columns, in order: number, workspace (its slug), kind, period_start, period_end (exclusive),
issue_date, status, currency, subtotal, discount, credits, tax, total, tax_country,
tax_region, tax_note. Dates are ISO, money plain decimals with two places.

CSV injection: a text cell that a spreadsheet would read as a formula (it starts with =, +, -,
@, a tab or a carriage return) gets a leading single quote, unless it is a plain decimal
number, which stays as it is.

On PostgreSQL the rows come from `COPY (SELECT …) TO STDOUT WITH (FORMAT csv)` over the
queryset's own SQL, with the neutralising done in that SELECT: about 1M rows/s, where a Python
row loop manages 35–56k (RECIPES). Elsewhere (the SQLite default) a Python loop over
`.iterator()` that quotes as COPY does (csv.writer leaves a lone carriage return unquoted), so
both write the same bytes for the same rows.
"""

import re
from collections.abc import Iterator

from django.db import connections, transaction
from django.db.models import F, Func, QuerySet, TextField

COLUMNS = (
    "number",
    "workspace",
    "kind",
    "period_start",
    "period_end",
    "issue_date",
    "status",
    "currency",
    "subtotal",
    "discount",
    "credits",
    "tax",
    "total",
    "tax_country",
    "tax_region",
    "tax_note",
)
# Where each column comes from, and how it is written.
SOURCES = {"workspace": "workspace__slug"}
MONEY = {"subtotal", "discount", "credits", "tax", "total"}
DATES = {"period_start", "period_end", "issue_date"}
TEXT = set(COLUMNS) - MONEY - DATES

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")
PLAIN_NUMBER_SQL = "^[+-]?[0-9]+([.][0-9]+)?$"
# COPY's CSV quoting: a cell with a comma, a double quote, CR or LF, or one that reads as its
# end-of-data marker, goes in double quotes.
NEEDS_QUOTES = re.compile(r'[,"\r\n]')

CHUNK_BYTES = 256 * 1024  # what one yield carries: few enough yields for 1M rows, small memory
CHUNK_ROWS = 2_000


def header() -> bytes:
    return (",".join(COLUMNS) + "\n").encode()


def neutralise(text: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading quote; numbers stay plain."""
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def export_order(queryset: QuerySet) -> QuerySet:
    """Invoices in issue order: by issue date, then as written (numbers are reserved under one
    lock per year, so within a day that is number order too). The (issue_date, id) index lets
    PostgreSQL stream them without sorting first."""
    return queryset.order_by("issue_date", "id")


class CsvSafeText(Func):
    """PostgreSQL: `neutralise` in SQL. The cheap first-character test runs on every row, the
    regular expression only on the rare cell that starts like a formula. An empty text becomes
    NULL, which COPY writes as an empty cell (as csv.writer does) rather than as ""."""

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        template = (
            "CASE WHEN left({0}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
            f"AND {{0}} !~ '{PLAIN_NUMBER_SQL}' THEN '''' || {{0}} "
            "ELSE NULLIF({0}, '') END"
        )
        return template.format(sql), [*params] * 4


def copy_statement(queryset: QuerySet) -> str:
    """PostgreSQL: `COPY (SELECT …) TO STDOUT` of the export's columns for `queryset`, its
    filters and order included, with the parameters bound (COPY takes none)."""
    columns = {
        f"c{i}": CsvSafeText(F(SOURCES.get(name, name))) if name in TEXT else F(name)
        for i, name in enumerate(COLUMNS)
    }
    select = queryset.values(**columns)
    sql, params = select.query.get_compiler(using=select.db).as_sql()
    return connections[select.db].ops.compose_sql(
        f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", tuple(params)
    )


class InvoiceCsv:
    """The CSV of `queryset`'s invoices as byte chunks; `rows` is how many were written once
    the chunks are exhausted."""

    def __init__(self, queryset: QuerySet):
        self.queryset = export_order(queryset)
        self.rows = 0

    def __iter__(self) -> Iterator[bytes]:
        yield header()
        if connections[self.queryset.db].vendor == "postgresql":
            yield from self._copy_chunks()
        else:
            yield from self._python_chunks()

    def _copy_chunks(self) -> Iterator[bytes]:
        db = self.queryset.db
        connection = connections[db]
        statement = copy_statement(self.queryset)
        # One transaction: SET LOCAL fixes the date format to ISO for this COPY alone, and an
        # abandoned download (the generator closed) cancels the COPY and rolls back.
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute("SET LOCAL datestyle TO 'ISO, YMD'")
            with cursor.copy(statement) as copy:
                buffer = bytearray()
                for block in copy:  # one block per row
                    buffer += block
                    if len(buffer) >= CHUNK_BYTES:
                        yield bytes(buffer)
                        buffer.clear()
                if buffer:
                    yield bytes(buffer)
            self.rows = max(cursor.rowcount, 0)

    def _python_chunks(self) -> Iterator[bytes]:
        fields = [SOURCES.get(name, name) for name in COLUMNS]
        formats = [_formatter(name) for name in COLUMNS]
        lines = []
        rows = self.queryset.values_list(*fields).iterator(chunk_size=CHUNK_ROWS)
        for count, row in enumerate(rows, 1):
            lines.append(",".join(fmt(value) for fmt, value in zip(formats, row, strict=True)))
            self.rows = count
            if len(lines) == CHUNK_ROWS:
                yield ("\n".join(lines) + "\n").encode()
                lines.clear()
        if lines:
            yield ("\n".join(lines) + "\n").encode()


def _quoted(text: str) -> str:
    if NEEDS_QUOTES.search(text) or text == "\\.":
        return '"' + text.replace('"', '""') + '"'
    return text


def _formatter(name: str):
    if name in MONEY:
        return lambda value: f"{value:.2f}"
    if name in DATES:
        return lambda value: value.isoformat()
    return lambda value: _quoted(neutralise(value or ""))
