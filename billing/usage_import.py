"""Importing usage (SPEC U1, U2, I6, D2): a whole file or nothing, in memory that does not grow
with the file.

Every line goes to a staging table first — on PostgreSQL the file's raw lines by COPY, split and
checked in SQL; on SQLite, and for rows handed over as Python objects, checked in Python in
batches of BATCH_ROWS — and every rule is checked there: unknown workspace, a month that is not
YYYY-MM in 2000-01 … 2099-12, MTUs that are not a whole number or above MAX_MTUS, more fields
than the header names (5,900 unquoted would be read as 5) or too few to hold the three, the same
workspace and month twice, a month whose close has run or that is before the workspace's sign-up
month. Only then, and only when no line is bad, the figures go in (a new report replaces the
month's figure, U1): one UPDATE of the changed figures and one INSERT of the new ones in key
order (on PostgreSQL with the table held against other writers for those two statements), each
writing its rows' history rows too (R4: who imported them, from which file). SQLite needs 3.35
or later for that (RETURNING).

Lines are the file's physical lines and the header is line 1, as `csv.DictReader` counts them. A
quoted field that spans lines — never a valid slug, month or number — is read as the separate
(bad) lines it spans. A page names the first MAX_LISTED_LINES bad lines and counts the rest; past
those it offers every one in a CSV, which the import writes as it reads them (`bad_lines_to`).
The command names every one.

A large file uploaded in the admin is imported by a worker (`start_import_job`), and the page
follows the job's row and its progress in the cache.
"""

import codecs
import csv
import logging
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from itertools import islice
from os import PathLike
from pathlib import Path
from typing import NamedTuple, TextIO

from django.core.cache import cache
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import get_text_list
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing.audit import history_of_rows_sql, record_history
from billing.clock import first_open_month
from billing.documents import stored_until_rollback
from billing.errors import BillingError, UsageImportError, typed
from billing.formatting import count, day, moment
from billing.models import MonthClose, SetAsideInvoice, Usage, UsageImportJob, Workspace
from billing.months import EARLIEST_MONTH, LATEST_MONTH, month_start, parse_month

logger = logging.getLogger(__name__)

# I6: more than this for one month is a typo, refused before it can stop a month close.
MAX_MTUS = 10_000_000_000
COLUMNS = ("workspace", "month", "mtus")
# Bad lines named in the refusal; the rest are counted.
MAX_LISTED_LINES = 1_000
# Rows checked in Python at once (SQLite, rows given as objects, quoted lines on PostgreSQL).
BATCH_ROWS = 5_000
READ_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
# Uploads up to this size are imported while the page waits; larger ones go to a worker.
INLINE_MAX_BYTES = 2 * 1024 * 1024
PROGRESS_TIMEOUT = 24 * 3600
# A job queued this long has no task coming (its hand-over was lost with the broker).
JOB_STUCK_AFTER = timedelta(minutes=15)
# A worker is killed this long after it started a job (the task's hard time limit): a job
# running for longer has no worker left on it (it died, and its message was lost). Under the
# broker's visibility timeout (an hour), after which Redis hands a task not yet acknowledged to
# another worker; 1,050,000 lines import in about 20 s (README).
JOB_TIME_LIMIT = timedelta(minutes=50)
# What str.strip() strips, so SQL trims a field exactly as Python does.
WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
REPLACEMENT = "\ufffd".encode()

STAGED = "usage_import_staged"
RAW = "usage_import_raw"

Progress = Callable[[str, int], None]


def mtus_problem(mtus) -> str | None:
    """I6: what is wrong with a month's MTU figure, or None."""
    if isinstance(mtus, bool) or not isinstance(mtus, int) or mtus < 0:
        return f"MTUs must be a whole number of at least 0, not {mtus!r}"
    if mtus > MAX_MTUS:
        return f"{mtus:,} MTUs is more than the {MAX_MTUS:,} a month can report (a typo?)"
    return None


def before_sign_up(month: str, created_on: date) -> str:
    """U2: a month before the workspace's sign-up month has no usage: a wrong slug or year."""
    return f"{month} is before the workspace signed up ({day(created_on)})"


# --- One line's checks (the messages; SQL finds the same lines bad) ---------------------------


def _month(text: str) -> tuple[date | None, str | None]:
    try:
        return parse_month(text), None
    except ValueError as exc:
        return None, str(exc)


def _mtus(text: str) -> tuple[int | None, str | None]:
    if not (text.isascii() and text.isdigit()):
        return None, f"MTUs must be a whole number of at least 0, not {typed(text)}"
    digits = len(text.lstrip("0"))
    if digits > len(str(MAX_MTUS)):  # and Python reads no more than 4,300 digits as a number
        return None, (
            f"a figure of {digits:,} digits is more than the {MAX_MTUS:,} MTUs a month can "
            "report (a typo?)"
        )
    value = int(text.lstrip("0") or "0")  # 5,000 leading zeros are not a number to Python
    problem = mtus_problem(value)
    return (None, problem) if problem else (value, None)


def _problem(
    line,
    slug,
    workspace_id,
    workspace_closed_on,
    month_text,
    month,
    mtus_text,
    fields,
    dup_of,
    closed,
    future,
    early=False,
    created_on=None,
    this_month: date | None = None,
    columns: "Columns | None" = None,
) -> str:
    problems = []
    missing = columns.missing(fields) if columns and fields is not None else []
    if fields == 1 and not slug and len(missing) == 2:  # "  ": an empty line is skipped
        return "a line of spaces only: delete it"
    if missing:  # "acme,2026-01": the line was cut short, not given an empty figure
        lacks = get_text_list(missing, "and") + (" is" if len(missing) == 1 else " are")
        problems.append(
            f"{count(fields)} field{'' if fields == 1 else 's'} where the header names "
            f"{count(columns.width)}: {lacks} missing"
        )
    elif fields is not None:  # "acme,2026-01,5,900": 5,900 MTUs would have been read as 5
        named = count(columns.width) if columns else "fewer"
        problems.append(
            f"{count(fields)} fields where the header names {named} (a number with a thousands "
            "separator? write it without one)"
        )
    if "workspace" not in missing:
        if workspace_id is None:
            problems.append(
                f"unknown workspace {typed(slug)}" if slug else "the workspace is missing"
            )
        elif workspace_closed_on is not None:  # W1: its data stopped
            closed_on = day(_as_date(workspace_closed_on))
            problems.append(f"{slug} was closed on {closed_on}: it accepts no usage")
    month_problem = "month" not in missing and _month(month_text)[1]
    if month_problem:
        problems.append(month_problem)
    mtus_problem_ = "mtus" not in missing and _mtus(mtus_text)[1]
    if mtus_problem_:
        problems.append(mtus_problem_)
    month = _as_date(month)
    if dup_of:
        problems.append(f"{slug} {month:%Y-%m} is also on line {dup_of}")
    if closed:  # its close ran
        problems.append(f"{month:%Y-%m} is closed (its invoices are issued)")
    elif closed is not None:  # the clock has reached its close, or passed it before its start
        problems.append(f"{month:%Y-%m} is closed (the billing clock has reached its close)")
    if future:
        problems.append(
            f"{month:%Y-%m} has not started: usage is reported for months up to "
            f"{this_month:%Y-%m} (a typo?)"
        )
    if early and closed is None:  # a closed month says enough
        problems.append(before_sign_up(f"{month:%Y-%m}", _as_date(created_on)))
    return "; ".join(problems or ["cannot be imported"])


def _as_date(value) -> date | None:
    """A date read back by a raw cursor: SQLite hands dates back as text."""
    return date.fromisoformat(value) if isinstance(value, str) else value


# --- Reading a file ---------------------------------------------------------------------------


class _Reader:
    """A file read as bytes (a text file as UTF-8), counting what was read for the progress."""

    def __init__(self, file):
        self._file = file
        self._text = isinstance(file.read(0), str)
        self.done = 0

    def read(self, size=-1) -> bytes:
        data = self._file.read(size)
        if self._text:
            data = data.encode()
        self.done += len(data)
        return data


@contextmanager
def _reading(source):
    """A `_Reader` of a path or of a binary or text file (an upload), from its start."""
    if isinstance(source, str | PathLike):
        try:
            file = open(source, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise BillingError(f"Cannot read {source}: {exc.strerror or exc}") from None
        with file:
            yield _Reader(file)
        return
    if hasattr(source, "seek"):
        with suppress(OSError, ValueError):  # a pipe: read from where it is
            source.seek(0)
    yield _Reader(source)


def _header(stream) -> tuple[list[str], bytes]:
    """The header's field names and what was read after its line break."""
    buffer = b""
    while True:
        chunk = stream.read(READ_BYTES)
        buffer += chunk
        found = re.search(rb"\r\n|\r|\n", buffer)
        # A \r last in the buffer may be the first half of \r\n.
        if found and (found.end() < len(buffer) or found.group() != b"\r" or not chunk):
            head, rest = buffer[: found.start()], buffer[found.end() :]
            break
        if not chunk:
            head, rest = buffer, b""
            break
        if len(buffer) > MAX_HEADER_BYTES:
            raise BillingError("The first line is not a CSV header (workspace,month,mtus).")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillingError("The file is not UTF-8 text; export it as CSV.") from None
    # A spreadsheet's export may write "Workspace, Month, MTUs": the names, not their case or
    # the spaces around them, say which column is which.
    fields = [name.strip().lower() for name in next(csv.reader([text]), [])] if text else []
    missing = set(COLUMNS) - set(fields)
    if missing and not _looks_like_text(buffer):  # a spreadsheet or an archive, say
        raise BillingError("The file is not UTF-8 text; export it as CSV.")
    if missing:
        raise BillingError(
            "The header must be workspace,month,mtus; missing: " + ", ".join(sorted(missing))
        )
    # csv.DictReader semantics: a name given twice is the last column of that name.
    return fields, rest


def _looks_like_text(data: bytes) -> bool:
    """Whether what was read of a file is UTF-8 text (a character cut at the end aside): an
    .xlsx or a .zip may happen to have a first line that decodes, but not much more."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


class Columns(NamedTuple):
    """Where the header puts the three fields, and how many fields it names."""

    workspace: int
    month: int
    mtus: int
    width: int

    @property
    def last_read(self) -> int:
        """The number of fields a line needs to hold the three."""
        return max(self[:3]) + 1

    def missing(self, fields: int) -> list[str]:
        """The names a line of `fields` fields lacks, in the header's order."""
        named = sorted(zip(self[:3], COLUMNS, strict=True))
        return [name for index, name in named if index >= fields]


def _columns(fields: list[str]) -> Columns:
    last = {name: index for index, name in enumerate(fields)}
    return Columns(*(last[name] for name in COLUMNS), width=len(fields))


def _clean_chunks(first: bytes, stream: _Reader, progress: Progress | None) -> Iterator[bytes]:
    """The bytes after the header with every line break as \\n (csv's \\r\\n, \\r and \\n), NUL
    replaced, checked to be UTF-8 (a bad byte names its line). Each chunk ends where it
    happens to; lines may straddle chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, held_cr = 2, b""
    chunk = first
    while True:
        if not chunk:
            chunk = stream.read(READ_BYTES)
            if not chunk:
                break
        data, chunk = held_cr + chunk, b""
        held_cr = b"\r" if data.endswith(b"\r") else b""
        if held_cr:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\x00" in data:
            data = data.replace(b"\x00", REPLACEMENT)
        try:
            decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise _not_utf8(line + data.count(b"\n", 0, exc.start)) from None
        line += data.count(b"\n")
        if progress:
            progress("reading", stream.done)
        yield data
    if held_cr:
        yield b"\n"
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _not_utf8(line) from None


def _not_utf8(line: int) -> UsageImportError:
    return UsageImportError(
        [f"Line {line}: the line is not UTF-8 text; export the file as CSV in UTF-8."]
    )


def _split(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    if len(text) > csv.field_size_limit():
        # csv refuses a field longer than its limit (131,072 characters), a guard for reading
        # a stream; this line is in memory already, so its fields may be as long as it is.
        csv.field_size_limit(len(text))
    return next(csv.reader([text]), [])


Row = tuple[int, str, str, str, int | None]


def _file_rows(chunks: Iterable[bytes], columns: Columns) -> Iterator[Row]:
    """`(line, workspace, month, mtus, fields)` of each non-empty line, in bounded memory
    (`_pick`)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, tail = 2, ""
    for chunk in chunks:
        lines = (tail + decoder.decode(chunk)).split("\n")
        tail = lines.pop()
        for text in lines:
            if text:
                yield line, *_pick(_split(text), columns)
            line += 1
    if tail:
        yield line, *_pick(_split(tail), columns)


def _pick(values: list[str], columns: Columns) -> tuple[str, str, str, int | None]:
    """The three texts, and the line's number of fields when it has more than the header names
    or too few to hold the three (a field the import does not read may be left off)."""
    ws, mo, mt = (values[i] if i < len(values) else "" for i in columns[:3])
    odd = not columns.last_read <= len(values) <= columns.width
    return ws, mo, mt, len(values) if odd else None


def _given_rows(rows) -> Iterator[Row]:
    def text(value) -> str:
        return "" if value is None else str(value)

    for line, row in rows:
        yield line, text(row.get("workspace")), text(row.get("month")), text(row.get("mtus")), None


# --- Staging and checks -----------------------------------------------------------------------


def _create_staging(cursor, postgres: bool):
    cursor.execute(f"drop table if exists {STAGED}")
    cursor.execute(
        f"create temp table {STAGED} (line bigint, slug text, workspace_id bigint, "
        "workspace_closed_on date, workspace_created_on date, workspace_first_month date, "
        "month_text text, month date, mtus_text text, mtus bigint, "
        "fields integer)" + (" on commit drop" if postgres else "")
    )


def _stage_in_python(cursor, rows, postgres: bool, progress: Progress | None):
    """Check rows in batches and stage them: slug → id, month and MTUs parsed (None when bad)."""
    rows = iter(rows)
    staged = 0
    while batch := list(islice(rows, BATCH_ROWS)):
        checked = []
        slugs = {slug.strip() for _, slug, *_ in batch}
        found = {
            slug: (pk, closed_on, created_on)
            for slug, pk, closed_on, created_on in Workspace.objects.filter(
                slug__in=slugs
            ).values_list("slug", "pk", "closed_on", "created_on")
        }
        for line, slug, month_text, mtus_text, fields in batch:
            slug, mtus_text = slug.strip(), mtus_text.strip()
            pk, closed_on, created_on = found.get(slug, (None, None, None))
            first_month = created_on and month_start(created_on)
            month = _month(month_text)[0]
            mtus = _mtus(mtus_text)[0]
            workspace = (pk, closed_on, created_on, first_month)
            checked.append((line, slug, *workspace, month_text, month, mtus_text, mtus, fields))
        columns = (
            "line, slug, workspace_id, workspace_closed_on, workspace_created_on, "
            "workspace_first_month, month_text, month, mtus_text, mtus, fields"
        )
        if postgres:
            with cursor.copy(f"COPY {STAGED} ({columns}) FROM STDIN") as copy:
                for row in checked:
                    copy.write_row(row)
        else:
            iso = lambda day: day and day.isoformat()  # noqa: E731 (SQLite stores dates as text)
            cursor.executemany(
                f"insert into {STAGED} ({columns}) values ({', '.join(['%s'] * 11)})",
                [(*row[:3], *map(iso, row[3:6]), row[6], iso(row[7]), *row[8:]) for row in checked],
            )
        staged += len(batch)
        if progress:
            progress("checking", staged)


def _stage_file_postgres(cursor, first: bytes, stream, columns: Columns, progress: Progress | None):
    """COPY the raw lines, then split and check them in SQL; lines with a quote are split by
    Python's csv (rare: a valid line needs none)."""
    cursor.execute(f"drop table if exists {RAW}")
    cursor.execute(
        f"create temp table {RAW} (line bigint generated always as identity (start with 2), "
        "raw text) on commit drop"
    )
    with cursor.copy(f"COPY {RAW} (raw) FROM STDIN") as copy:
        for data in _clean_chunks(first, stream, progress):
            # COPY's text format: a backslash and a tab are escaped; the content stays itself.
            if b"\\" in data:
                data = data.replace(b"\\", b"\\\\")
            if b"\t" in data:
                data = data.replace(b"\t", b"\\t")
            copy.write(data)
    if progress:
        progress("checking", 0)
    cursor.execute(f"analyze {RAW}")  # a temporary table has no statistics until asked
    # Both lookups are hash joins (the planner would sort a million texts for the month's).
    cursor.execute("set local enable_mergejoin = off")
    ws, mo, mt = (index + 1 for index in columns[:3])  # split_part counts from 1
    # `offset 0` keeps the split from being redone for each use of its fields; a month is
    # looked up among the 1,200 the system bills rather than parsed line by line.
    cursor.execute(
        f"""
        insert into {STAGED} (line, slug, workspace_id, workspace_closed_on, workspace_created_on,
            workspace_first_month, month_text, month, mtus_text, mtus, fields)
        select f.line, f.slug, w.id, w.closed_on, w.created_on,
            date_trunc('month', w.created_on)::date, f.month_text, m.month, f.mtus_text,
            -- numeric takes at most 131,072 digits: a longer figure is too large anyway.
            case when f.mtus_text ~ '^[0-9]+$'
                and length(ltrim(f.mtus_text, '0')) <= %(max_digits)s then
                case when f.mtus_text::numeric <= %(max_mtus)s then f.mtus_text::bigint end
            end,
            case when f.fields not between %(last_read)s and %(width)s then f.fields end
        from (
            select line,
                btrim(split_part(raw, ',', {ws}), %(blanks)s) as slug,
                split_part(raw, ',', {mo}) as month_text,
                btrim(split_part(raw, ',', {mt}), %(blanks)s) as mtus_text,
                length(raw) - length(replace(raw, ',', '')) + 1 as fields
            from {RAW}
            where raw <> '' and raw not like '%%"%%'
            offset 0
        ) as f
        left join billing_workspace w on w.slug = f.slug
        left join (
            select to_char(day, 'YYYY-MM') as text, day::date as month
            from generate_series(%(first)s::date, %(last)s::date, interval '1 month') as day
        ) as m on m.text = btrim(f.month_text, %(blanks)s)
        """,
        {
            "blanks": WHITESPACE,
            "max_mtus": MAX_MTUS,
            "max_digits": len(str(MAX_MTUS)),
            "width": columns.width,
            "last_read": columns.last_read,
            "first": EARLIEST_MONTH,
            "last": LATEST_MONTH,
        },
    )
    cursor.execute("set local enable_mergejoin = on")
    quoted = connection.connection.cursor(name="usage_import_quoted")
    try:
        quoted.execute(f"select line, raw from {RAW} where raw like '%\"%' order by line")
        rows = (
            (line, *_pick(_split(raw), columns))
            for batch in iter(lambda: quoted.fetchmany(BATCH_ROWS), [])
            for line, raw in batch
        )
        _stage_in_python(cursor, rows, postgres=True, progress=None)
    finally:
        quoted.close()
    cursor.execute(f"drop table {RAW}")


def _refuse_bad_lines(
    cursor,
    listed: int | None,
    this_month: date | None,
    columns: Columns | None,
    report: TextIO | None,
):
    """U2: refuse the file if any line is bad, naming them (see `_named`).
    A line is bad alone (workspace unknown or closed, month or MTUs), as a repeat of an earlier
    good line for the same workspace and month, for a month already closed (or whose close
    the clock has reached: `first_open_month` holds the clock's row to the import's commit),
    for a month after `this_month` (none has started, U2: a typo of the year) or for one before
    the workspace's sign-up month (U2: it did not exist)."""
    closed = _closed_sql("judged")
    future = "month > coalesce(%(this_month)s, month)"
    early = "month < workspace_first_month"
    ok = (
        "workspace_id is not null and workspace_closed_on is null and month is not null "
        "and mtus is not null and fields is null"
    )
    _refuse(
        cursor,
        f"""
        with repeated as (
            select workspace_id, month from {STAGED} where {ok}
            group by workspace_id, month having count(*) > 1
        ), repeats as (
            select line, lag(line) over (partition by workspace_id, month order by line) as dup_of
            from {STAGED} join repeated using (workspace_id, month)
            where mtus is not null and workspace_closed_on is null and fields is null
        ), judged as (
            select s.line, s.slug, s.workspace_id, s.workspace_closed_on, s.month_text, s.month,
                s.mtus_text, s.fields, r.dup_of, ({ok}) as ok, s.workspace_created_on,
                s.workspace_first_month
            from {STAGED} s left join repeats r on r.line = s.line
        )
        select line, slug, workspace_id, workspace_closed_on, month_text, month, mtus_text,
            fields, dup_of,
            case when ok and dup_of is null and {closed} then
                month in (select month from {MonthClose._meta.db_table})
            end as closed,
            (ok and dup_of is null and {future}) as future,
            (ok and dup_of is null and {early}) as early,
            workspace_created_on,
            count(*) over ()
        from judged
        where not ok or dup_of is not null or {closed} or {future} or {early}
        order by line
        """,
        {"first_open": first_open_month(), "this_month": this_month},
        lambda row: _problem(*row[:13], this_month=this_month, columns=columns),
        listed,
        report,
    )


def _closed_sql(row: str) -> str:
    """D2: `row`'s month is closed (its close has run, or the clock has reached it; the query
    passes `first_open`), unless the close set `row`'s workspace's invoice aside (I6): that
    workspace is not billed for the month yet."""
    return (
        f"(({row}.month in (select month from {MonthClose._meta.db_table}) "
        f"or {row}.month < coalesce(%(first_open)s, {row}.month)) "
        f"and not exists (select 1 from {SetAsideInvoice._meta.db_table} sa "
        f"join {MonthClose._meta.db_table} mc on mc.id = sa.close_id "
        f"where sa.workspace_id = {row}.workspace_id and mc.month = {row}.month "
        "and sa.resolved_on is null))"
    )


def _limit(listed: int | None) -> str:
    return "" if listed is None else f"limit {int(listed)}"


def _named(
    cursor, sql: str, params, problem, listed: int | None, report: TextIO | None
) -> tuple[list[str], int]:
    """The bad lines `sql` selects, in line order (each row's line first, the count of rows
    last): the first `listed` of them named ("Line 7: " and `problem(row)`; every one with
    None), and how many. With `report`, every one is also written to it as a CSV row (line,
    problem), read in batches so the memory does not grow with them (U2: every bad line named,
    however many)."""
    if report is None:
        cursor.execute(f"{sql} {_limit(listed)}", params)
        rows = cursor.fetchall()
        return [f"Line {row[0]}: {problem(row)}." for row in rows], rows[0][-1] if rows else 0
    writer = csv.writer(report)
    named, bad = [], 0
    with connection.chunked_cursor() as every:  # PostgreSQL: a cursor on the server
        every.execute(sql, params)
        for batch in iter(lambda: every.fetchmany(BATCH_ROWS), []):
            if not bad:
                writer.writerow(["line", "problem"])
            for row in batch:
                text = problem(row)
                writer.writerow([row[0], text])
                if listed is None or len(named) < listed:
                    named.append(f"Line {row[0]}: {text}.")
            bad += len(batch)
    return named, bad


def _refuse(cursor, sql: str, params, problem, listed: int | None, report: TextIO | None):
    """Refuse the file (U2) if `sql` selects any line (see `_named`)."""
    named, bad = _named(cursor, sql, params, problem, listed, report)
    if bad:
        raise UsageImportError(named, bad_lines=bad)


def _refuse_billed_meanwhile(cursor, postgres: bool, listed: int | None, report: TextIO | None):
    """I6: the lines of a set-aside month whose invoice the clock's retry has issued since they
    were checked (from the figure before): the month is closed for them now. The retry holds
    the workspace's row while it bills, so the rows are held first: a retry under way is
    waited for and seen, and one that comes later bills the imported figure."""
    held = " for no key update" if postgres else ""  # SQLite has one writer at a time
    cursor.execute(
        f"select id from {Workspace._meta.db_table} where id in (select s.workspace_id "
        f"from {STAGED} s join {SetAsideInvoice._meta.db_table} sa "
        f"on sa.workspace_id = s.workspace_id) order by id{held}"
    )
    if not cursor.fetchall():
        return  # no workspace of the file was ever set aside: nothing to check again
    _refuse(
        cursor,
        f"""
        select s.line, s.month, count(*) over ()
        from {STAGED} s
        where s.workspace_id in (select workspace_id from {SetAsideInvoice._meta.db_table})
            and {_closed_sql("s")}
        order by s.line
        """,
        {"first_open": first_open_month()},
        lambda row: f"{_as_date(row[1]):%Y-%m} is closed (its invoices are issued)",
        listed,
        report,
    )


def _refuse_closed_meanwhile(cursor, listed: int | None, report: TextIO | None):
    """W1: the lines of workspaces closed since they were checked (a closure that committed
    while the file was read and checked; a later one waits for the import's write)."""
    _refuse(
        cursor,
        f"""
        select s.line, w.slug, w.closed_on, count(*) over ()
        from {STAGED} s join {Workspace._meta.db_table} w on w.id = s.workspace_id
        where w.closed_on is not null
        order by s.line
        """,
        None,
        lambda row: f"{row[1]} was closed on {day(_as_date(row[2]))}: it accepts no usage",
        listed,
        report,
    )


def _refuse_reported_since(
    cursor, reported_at: datetime | None, listed: int | None, report: TextIO | None
):
    """U1: the later report wins. A file's figures were reported when it was uploaded; a
    figure on file changed since (by hand, another file) is newer than the file's, and a job
    held up for a while (the broker down at the upload, a worker lost) must not put the older
    one back. Its lines are refused, the whole file with them (U2): the uploader decides."""
    if reported_at is None:
        return
    uploaded = moment(reported_at)
    _refuse(
        cursor,
        f"""
        select s.line, w.slug, s.month, count(*) over ()
        from {STAGED} s
        join {Usage._meta.db_table} u on u.workspace_id = s.workspace_id and u.month = s.month
        join {Workspace._meta.db_table} w on w.id = s.workspace_id
        where coalesce(u.reported_at, u.updated_at) > %s and u.mtus <> s.mtus
        order by s.line
        """,
        [connection.ops.adapt_datetimefield_value(reported_at)],
        lambda row: (
            f"{row[1]}'s {_as_date(row[2]):%Y-%m} figure was reported again after this file "
            f"was uploaded ({uploaded}): this file's is older. Upload it again if its figures "
            "are still the latest"
        ),
        listed,
        report,
    )


def _upsert(
    cursor,
    postgres: bool,
    why: str,
    by,
    listed: int | None,
    reported_at: datetime | None,
    report: TextIO | None,
) -> dict:
    """U1: new figures inserted, reported ones replaced. A figure equal to the one on file is
    left as it is (a file sent twice writes nothing the second time) and counts as unchanged.
    R4: each figure created or changed gets its history row, saying who imported it and why."""
    table = Usage._meta.db_table
    moment = timezone.now()
    now = connection.ops.adapt_datetimefield_value(moment)
    same_figure = "u.workspace_id = s.workspace_id and u.month = s.month"
    reported = connection.ops.adapt_datetimefield_value(reported_at or moment)
    update = (
        f"update {table} as u set mtus = s.mtus, updated_at = %s, reported_at = %s "
        f"from {STAGED} s where {same_figure} and u.mtus <> s.mtus"
    )
    # New figures in key order: the indexes are filled page by page, not at random.
    insert = (
        f"insert into {table} (workspace_id, month, mtus, updated_at, reported_at) "
        f"select s.workspace_id, s.month, s.mtus, %s, %s from {STAGED} s "
        f"where not exists (select 1 from {table} u where {same_figure}) "
        "order by s.workspace_id, s.month"
    )
    by_id = getattr(by, "pk", None)
    if postgres:
        # The checks are done; only now is the table held against other writers (a figure
        # recorded meanwhile would turn an insert below into a duplicate) and closures (W1).
        # Readers go on.
        cursor.execute(f"lock table {table} in share row exclusive mode")
        _refuse_closed_meanwhile(cursor, listed, report)
        _refuse_billed_meanwhile(cursor, postgres, listed, report)
        _refuse_reported_since(cursor, reported_at, listed, report)
        # Each write hands its rows straight to their history rows: nothing comes back here.
        cursor.execute(
            f"with changed as ({update} returning u.*) " + history_of_rows_sql(Usage, "changed"),
            [now, reported, now, why, "~", by_id],
        )
        replaced = cursor.rowcount  # a history row for each figure changed
        cursor.execute(
            f"with created as ({insert} returning *) " + history_of_rows_sql(Usage, "created"),
            [now, reported, now, why, "+", by_id],
        )
        created = cursor.rowcount
    else:
        _refuse_closed_meanwhile(cursor, listed, report)
        _refuse_billed_meanwhile(cursor, postgres, listed, report)
        _refuse_reported_since(cursor, reported_at, listed, report)
        cursor.execute(f"{update} returning id", [now, reported])
        changed = [(pk, why) for (pk,) in cursor.fetchall()]
        cursor.execute(f"{insert} returning id", [now, reported])
        new = [(pk, why) for (pk,) in cursor.fetchall()]
        record_history(Usage, changed, by=by, when=moment)
        record_history(Usage, new, by=by, when=moment, kind="+")
        created, replaced = len(new), len(changed)
    cursor.execute(f"select count(*) from {STAGED}")
    unchanged = cursor.fetchone()[0] - created - replaced
    return {"created": created, "replaced": replaced, "unchanged": unchanged}


def _source_name(source) -> str:
    """How the history names what was imported: the file's own name, when it has one."""
    name = source if isinstance(source, str | PathLike) else getattr(source, "name", None)
    return f"Usage import of {Path(name).name}" if name else "Usage import"


@transaction.atomic
def import_usage(
    source,
    *,
    progress: Progress | None = None,
    by=None,
    reason: str = "",
    listed: int | None = MAX_LISTED_LINES,
    as_of: date | None = None,
    reported_at: datetime | None = None,
    bad_lines_to: TextIO | None = None,
) -> dict:
    """U2: import a usage CSV (a path, or a binary or text file: columns workspace,month,mtus
    with the workspace's slug and the month as YYYY-MM), or `(line_number, {"workspace",
    "month", "mtus"})` rows, all or nothing. U1: a figure replaces the month's figure. I6, D2:
    more than MAX_MTUS, a month outside 2000–2099, a month already closed or one before the
    workspace's sign-up month is a bad line; so is, given `as_of` (the day of the import: the
    screens, the command and the worker pass it), a month after `as_of`'s, which cannot have
    started (a typo of the year).
    R4: every figure it creates or changes is kept in the usage's history, by `by`, saying
    why: `reason`, or the file's name. Given `reported_at` (when the file was uploaded: the
    worker passes its job's), a figure changed since then is newer than the file's: its line is
    refused (U1: the later report wins).

    Returns {"created", "replaced", "unchanged"} (a figure equal to the one on file is left as
    it is); refuses with `UsageImportError` naming the bad lines (the first `listed` of them,
    and how many more; every one with `listed=None`, as the command does; and every one written
    to the text file `bad_lines_to` as CSV, `line,problem`, when it is given), with
    `BillingError` for a missing header or a file without rows. `progress(stage, done)` hears
    how far it got.
    """
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("set local work_mem = '64MB'")
            # Compiling these few statements to machine code costs more than it saves.
            cursor.execute("set local jit = off")
        _create_staging(cursor, postgres)
        columns = None  # rows given as mappings have no header
        if hasattr(source, "read") or isinstance(source, str | PathLike):
            with _reading(source) as stream:
                fields, first = _header(stream)
                columns = _columns(fields)
                if postgres:
                    _stage_file_postgres(cursor, first, stream, columns, progress)
                else:
                    chunks = _clean_chunks(first, stream, progress)
                    _stage_in_python(cursor, _file_rows(chunks, columns), False, progress)
        else:
            _stage_in_python(cursor, _given_rows(source), postgres, progress)

        cursor.execute(f"analyze {STAGED}")  # plans for the checks and the write below
        _refuse_bad_lines(cursor, listed, as_of and month_start(as_of), columns, bad_lines_to)
        cursor.execute(f"select exists (select 1 from {STAGED})")
        if not cursor.fetchone()[0]:
            raise BillingError("The usage file has no rows to import.")
        if progress:
            progress("writing", 0)
        why = reason or _source_name(source)
        result = _upsert(cursor, postgres, why, by, listed, reported_at, bad_lines_to)
        cursor.execute(f"drop table {STAGED}")
    return result


# --- A large file on a worker -----------------------------------------------------------------


def _progress_key(job_id: int) -> str:
    return f"usage-import-progress:{job_id}"


def job_progress(job: UsageImportJob) -> dict | None:
    """How far a running job got: {"stage", "done", "percent"} (the worker writes it to the
    shared cache; None before it starts or with a cache of one process)."""
    progress = cache.get(_progress_key(job.pk))
    if progress and progress["stage"] == "reading" and job.size:
        progress["percent"] = min(100, round(100 * progress["done"] / job.size))
    return progress


@transaction.atomic
def start_import_job(upload, *, by, run_later) -> UsageImportJob:
    """Store an uploaded usage file privately and have a worker import it (U2 as for any
    file); the admin page follows the job. `run_later(job_id)` hands the job to the worker
    (the task's `delay`), once the job is committed; with the broker down the job waits,
    queued, for the sweep (`hand_over_stuck_jobs`)."""
    job = UsageImportJob(file_name=(upload.name or "usage.csv")[-255:], size=upload.size)
    job.created_by = by
    # Stored under a random name, and removed if the job's row is not saved.
    with stored_until_rollback(job.file, upload):
        job.save()
    transaction.on_commit(lambda: _hand_over(job.pk, run_later))
    return job


def _hand_over(job_id: int, run_later) -> bool:
    try:
        run_later(job_id)
    except BrokerUnavailable as exc:
        logger.warning("usage import job %s left queued for the sweep: %s", job_id, exc)
        return False
    return True


def stuck_jobs(now):
    """Jobs no worker is on: queued for JOB_STUCK_AFTER (their hand-over was lost), or running
    for longer than a worker may (JOB_TIME_LIMIT: it died and its message was lost). Nothing
    of either was written (the import commits with its outcome)."""
    Status = UsageImportJob.Status
    return UsageImportJob.objects.filter(
        Q(status=Status.QUEUED, created_at__lt=now - JOB_STUCK_AFTER)
        | Q(status=Status.RUNNING, started_at__lt=now - JOB_TIME_LIMIT)
    )


def hand_over_stuck_jobs(*, now, run_later) -> int:
    """The sweep: hand each stuck job to a worker again; how many were handed over. A job
    handed over twice is imported once (`run_import_job` holds its row)."""
    handed = sum(_hand_over(pk, run_later) for pk in stuck_jobs(now).values_list("pk", flat=True))
    if handed:
        logger.info("sweep: %s stuck usage import job(s) handed over again", handed)
    return handed


def run_import_job(job_id: int) -> UsageImportJob | None:
    """The worker's side: import the job's file and record the outcome (the figures, or every
    bad line) in the import's own transaction, then delete the stored file.

    The import and its outcome commit together, so a task delivered again after its worker
    died (acks_late) finds the job either finished, and does nothing, or with nothing of it
    written, and imports it. A copy delivered while another holds the job's row waits for it:
    the other is importing it (the sweep handed it over again), and the copy then finds it
    finished; or the other's worker was killed and the database has yet to end its session
    (seconds), and the copy imports it. Shown as running, with its progress."""
    # A job handed over again after its worker died is started afresh.
    UsageImportJob.objects.filter(pk=job_id).filter(
        Q(status=UsageImportJob.Status.QUEUED)
        | Q(status=UsageImportJob.Status.RUNNING, started_at__lt=timezone.now() - JOB_TIME_LIMIT)
    ).update(status=UsageImportJob.Status.RUNNING, started_at=timezone.now())
    key = _progress_key(job_id)

    def progress(stage: str, done: int):
        cache.set(key, {"stage": stage, "done": done}, PROGRESS_TIMEOUT)

    with transaction.atomic():
        # Not skip_locked: a copy that skipped a dead worker's lock was acknowledged, and
        # its job read "running" until the sweep, 50 minutes later.
        job = (
            UsageImportJob.objects.select_for_update()
            .filter(pk=job_id, status=UsageImportJob.Status.RUNNING)
            .first()
        )
        if job is None:
            return None
        with bad_lines_report() as report:
            try:
                with job.file.open("rb") as stream:
                    result = import_usage(
                        stream,
                        progress=progress,
                        by=job.created_by,
                        reason=f"Usage import of {job.file_name} (job {job.pk})",
                        as_of=job.created_at.date(),  # the day it was uploaded (UTC)
                        reported_at=job.created_at,
                        bad_lines_to=report,
                    )
            except UsageImportError as exc:
                _refused(job, exc, report)
            except BillingError as exc:
                job.status, job.errors = job.Status.REFUSED, [str(exc)]
            except Exception as exc:
                logger.exception("usage import job %s failed", job.pk)
                job.status, job.errors = job.Status.FAILED, [f"{type(exc).__name__}: {exc}"]
            else:
                job.status = job.Status.DONE
                job.figures_created, job.figures_replaced = result["created"], result["replaced"]
                job.figures_unchanged = result["unchanged"]
            job.finished_at = timezone.now()
            job.save()
        transaction.on_commit(lambda: _forget_file(job))
    cache.delete(key)
    return job


@contextmanager
def bad_lines_report() -> Iterator[TextIO]:
    """A temporary file for `import_usage(bad_lines_to=…)`, gone after the block. Its bytes
    start with a BOM once anything is written (utf-8-sig): the CSV the admin offers is opened
    in Excel, which reads a CSV as UTF-8 only after one (its “quotes” came out as â€œ…â€);
    read back as text, the BOM is skipped."""
    with tempfile.TemporaryFile("w+", encoding="utf-8-sig", newline="") as report:
        yield report


def _refused(job: UsageImportJob, refusal: UsageImportError, report: TextIO):
    """Record the refusal on the job (not saved). U2: when its bad lines are more than the page
    names, every one is kept as a CSV for the page to offer (`report`, as `import_usage`
    wrote it). Stored under a random name; a row never committed leaves an orphan for the
    daily sweep."""
    job.status, job.errors, job.bad_lines = job.Status.REFUSED, refusal.errors, refusal.bad_lines
    if refusal.bad_lines > MAX_LISTED_LINES:
        report.flush()
        report.buffer.seek(0)
        job.bad_lines_file.save("bad-lines.csv", File(report.buffer), save=False)


def keep_refusal(upload, refusal: UsageImportError, report: TextIO, *, by) -> UsageImportJob:
    """U2 for a file imported while the page waited, refused with more bad lines than a page
    names: the refusal kept as a finished job, whose page names the first ones and offers every
    one as a CSV (`report`, as `import_usage` wrote it)."""
    job = UsageImportJob(file_name=(upload.name or "usage.csv")[-255:], size=upload.size)
    job.created_by = by
    job.started_at = job.finished_at = timezone.now()
    _refused(job, refusal, report)
    job.save()
    return job


def _forget_file(job: UsageImportJob):
    """Once its outcome is committed, the stored upload goes (the job keeps its name)."""
    job.file.delete(save=False)
    UsageImportJob.objects.filter(pk=job.pk).update(file="")
