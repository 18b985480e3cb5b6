"""Who changed what, when and why (SPEC R4): one way to save with a reason, and one way for a
service to say who acts and why for every history row its work writes.

django-simple-history records the user of a request by itself; a service called from a task or a
command, or a reason that a person typed, is handed over here."""

import functools
import unicodedata
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connection
from django.dispatch import receiver
from django.utils import timezone
from simple_history.signals import pre_create_historical_record

from billing.errors import BillingError

_because: ContextVar[tuple | None] = ContextVar("audit_because", default=None)
# The reason a person typed for the service running (`records_why`), added to the words the
# service gives a row it saves itself: those say what the change does, the person says why.
_asked_why: ContextVar[str] = ContextVar("audit_asked_why", default="")


# Letters and symbols that are drawn as nothing: the Hangul fillers and the braille blank.
BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def shown_text(text: str | None) -> str:
    """`text` stripped, or "" when nothing in it would show: no letter, digit, punctuation or
    symbol that is drawn, only spaces, zero-width, format and control characters, and marks
    with nothing to mark (a reason of one U+200B, or one combining accent, read as given)."""
    text = (text or "").strip()
    shows = any(unicodedata.category(c)[0] in "LNPS" and c not in BLANK_GLYPHS for c in text)
    return text if shows else ""


def require_reason(reason: str, message: str, *, error=None) -> str:
    """R4: the reason, stripped; a missing one, or one with nothing that shows, is refused with
    `message`."""
    reason = shown_text(reason)
    if not reason:
        raise (error or BillingError)(message)
    return reason


def save_with_reason(instance, reason: str, by=None, fields=None):
    """Save `instance`; its history row says why (reasons of any length: the column is text),
    followed by the reason typed for the `records_why` service that saves it, and who, when `by`
    is given (outside a request)."""
    instance._change_reason = with_reason(reason, _asked_why.get())
    if by is not None:
        instance._history_user = by
    instance.save(update_fields=fields)


def keep_first_version(instance, *, reason: str, when) -> None:
    """R4: before the first change to a row written in bulk without a version (the month
    close's invoices), keep the version it was written as, dated `when` and made by the system,
    so the change's entry says what it changed, as every other entry does."""
    if instance.history.exists():
        return
    version = type(instance).history.model
    version.objects.create(
        history_date=when,
        history_user=None,
        history_change_reason=reason,
        history_type="+",
        **{field.attname: getattr(instance, field.attname) for field in version.tracked_fields},
    )


@contextmanager
def because(reason: str = "", by=None):
    """Every history row written inside the block without a reason of its own gets `reason`
    (and `by` as its user when the request has none)."""
    token = _because.set((reason.strip(), by) if (reason and reason.strip()) or by else None)
    try:
        yield
    finally:
        _because.reset(token)


# `_because`'s "who" for the billing clock's own work: no user, whatever request is open.
_THE_CLOCK = object()


@contextmanager
def by_the_clock(reason: str):
    """Every history row written inside the block is the billing clock's: no user and
    `reason`, also inside a staff change that catches its workspace up to the day before it
    (a trial or term end the clock had yet to apply is not the person's, nor their reason)."""
    token, asked = _because.set((reason, _THE_CLOCK)), _asked_why.set("")
    try:
        yield
    finally:
        _asked_why.reset(asked)
        _because.reset(token)


def the_why() -> str:
    """The why every history row written now without its own gets (`because`, `records_why`,
    `by_the_clock`), or "": for rows a service writes in bulk."""
    current = _because.get()
    return current[0] if current is not None else ""


def acting() -> tuple:
    """(who, the reason they typed) for the service running (`records_why`), for rows a
    service writes in bulk, which `_fill_in_why` never sees: (None, "") for the clock's work."""
    current = _because.get()
    by = current[1] if current is not None and current[1] is not _THE_CLOCK else None
    return by, _asked_why.get()


def changed_fields(model, fields, **said) -> str:
    """The words for the fields of `model` a change edits, as the forms label them ("Changed
    contact name, website"; the history read "Changed contact_name"), or as `said` words one."""
    return "Changed " + ", ".join(
        said.get(field) or str(model._meta.get_field(field).verbose_name)
        for field in sorted(fields)
    )


def with_reason(text: str, reason: str) -> str:
    """`text`, followed by the person's reason when there is one."""
    return f"{text}: {reason.strip()}" if reason and reason.strip() else text


def records_why(action: str):
    """A service decorated with this takes `reason` and `by` keywords: every history row it
    writes without a reason of its own says `action: reason`, and `by` when no request does."""

    def decorate(service):
        @functools.wraps(service)
        def audited(*args, reason: str = "", by=None, **kwargs):
            asked = _asked_why.set(shown_text(reason))
            try:
                with because(with_reason(action, reason), by):
                    return service(*args, **kwargs)
            finally:
                _asked_why.reset(asked)

        return audited

    return decorate


@receiver(pre_create_historical_record)
def _fill_in_why(sender, history_instance, **kwargs):
    current = _because.get()
    if current is None:
        return
    reason, by = current
    if reason and not history_instance.history_change_reason:
        history_instance.history_change_reason = reason
    if by is _THE_CLOCK:
        history_instance.history_user = None
    elif by is not None and history_instance.history_user_id is None:
        history_instance.history_user = by


def _history_columns(model) -> tuple[str, list[str]]:
    """The history table's name and the model's columns it copies (minus any excluded field)."""
    history = model.history.model
    quote = connection.ops.quote_name
    kept = {f.column for f in history._meta.concrete_fields}
    copied = [quote(f.column) for f in model._meta.concrete_fields if f.column in kept]
    return quote(history._meta.db_table), copied


HISTORY_FIELDS = "history_date, history_change_reason, history_type, history_user_id"


def record_history(model, reasons: list[tuple[int, str]], *, by=None, when=None, kind="~"):
    """R4 for rows changed by set-based SQL (thousands at once, no instance each): a history
    row per `(pk, reason)`, a copy of the row as it is now with its reason, in one INSERT …
    SELECT per batch. As `bulk_update_with_history` writes them, without reading any row.
    `kind` is the history type: '~' changed, '+' created."""
    if not reasons:
        return
    history_table, copied = _history_columns(model)
    quote = connection.ops.quote_name
    when = connection.ops.adapt_datetimefield_value(when or timezone.now())
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        for start in range(0, len(reasons), 2_000):
            batch = reasons[start : start + 2_000]
            values = ", ".join(["(CAST(%s AS bigint), CAST(%s AS text), %s)"] * len(batch))
            cursor.execute(
                f"insert into {history_table} ({', '.join(copied)}, {HISTORY_FIELDS}) "
                f"select {', '.join(f't.{c}' for c in copied)}, %s, v.column2, %s, %s "
                f"from {table} t join (values {values}) as v on t.{pk} = v.column1 "
                "order by v.column3",
                [
                    when,
                    kind,
                    getattr(by, "pk", None),
                    *(value for n, (row, reason) in enumerate(batch) for value in (row, reason, n)),
                ],
            )


def history_of_rows_sql(model, rows: str) -> str:
    """R4 for a statement that changes rows set-based and names them: an INSERT … SELECT of a
    history row for each row of `rows` (a relation with the model's columns, such as a
    `… returning *` CTE), with four parameters: when, why, the history type ('+' created,
    '~' changed) and who (a user's id or None)."""
    history_table, copied = _history_columns(model)
    return (
        f"insert into {history_table} ({', '.join(copied)}, {HISTORY_FIELDS}) "
        f"select {', '.join(copied)}, %s, %s, %s, %s from {rows}"
    )
