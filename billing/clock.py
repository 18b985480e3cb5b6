"""The billing clock's own record (SPEC D1, D2): the last day it processed.

`run_billing` processes whole days, each once that day has ended, and records each day as it
finishes it; a dated change on or before that day is refused, so nothing can be slipped into a
day whose invoices, strikes and locks are already made (D4: daily runs and a catch-up agree).

The clock and dated changes take turns on the clock's row. A change reads it with a shared lock
held to its commit; the clock, before it processes a day, takes the row for itself (waiting for
the changes in flight, which it then sees) and records the day as being processed, which new
changes dated on or before it are refused. Without that, a cancellation committed while the
close of its month was running was billed twice (a final invoice and the month's).
"""

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Q

from billing.errors import BillingError, ClockBehind, DayAlreadyProcessed
from billing.formatting import day as on
from billing.formatting import month as month_name
from billing.models import BillingClock, Invoice, MonthClose
from billing.months import LAST_DAY, add_months, add_year, month_start, next_month


def last_processed_day() -> date | None:
    return BillingClock.objects.filter(pk=1).values_list("last_processed_day", flat=True).first()


# Set while a forecast runs (FC1): its changes are rolled back, never committed, so they take
# no turn with the clock and must not keep it from starting a day.
_rolled_back = ContextVar("billing_clock_rolled_back", default=False)


@contextmanager
def changes_rolled_back():
    """The block's dated changes read the clock's row without holding it (see `_clock_shared`);
    for a transaction that is always rolled back (the forecast's)."""
    token = _rolled_back.set(True)
    try:
        yield
    finally:
        _rolled_back.reset(token)


def _clock_shared() -> tuple[date | None, date | None]:
    """(last processed day, day being processed), the row held against the clock's turn until
    the caller's transaction ends (PostgreSQL; SQLite has one writer at a time anyway)."""
    held = connection.vendor == "postgresql" and not _rolled_back.get()
    shared = " for share" if held else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"select last_processed_day, processing_day from {BillingClock._meta.db_table} "
            f"where id = 1{shared}"
        )
        row = cursor.fetchone()
    return row if row else (None, None)


def clock_days() -> tuple[date | None, date | None]:
    """(last processed day, day being processed) for a check that words its own refusal, the
    row held as for any dated change (`_clock_shared`)."""
    return _clock_shared()


def hold_every_dated_change() -> None:
    """For a change that every dated change may read (a plan's terms): take the clock's row
    for the caller's transaction, as the clock does before a day. Changes in flight (each holds
    it shared, `_clock_shared`) commit first, so the caller sees them; new ones wait for the
    caller's commit, so they see its change. SQLite has one writer at a time anyway."""
    if connection.vendor != "postgresql":
        return
    BillingClock.objects.get_or_create(pk=1)
    BillingClock.objects.select_for_update().filter(pk=1).exists()


def next_close(today: date) -> dict:
    """D1, M1: the close the clock runs next: the next 1st it processes closes the month before
    it, the day after that 1st ("runs_on"); past that day the close is overdue and "behind_at"
    is the last day the clock processed. Before the clock's first day, from `today`."""
    last = last_processed_day()
    next_day = last + timedelta(days=1) if last else today
    closes_with = next_day if next_day.day == 1 else next_month(month_start(next_day))
    runs_on = closes_with + timedelta(days=1)
    return {
        "month": add_months(closes_with, -1),
        "closes_with": closes_with,
        "runs_on": runs_on,
        "behind_at": last if last and runs_on <= today else None,
    }


def first_open_month() -> date | None:
    """D2 for usage: the earliest month whose close the clock has not reached (processed or
    being processed: a month closes when the clock processes the 1st after it), or None before
    the clock's first day. The clock's row is held shared, as for any dated change, so a close
    starting now waits for the caller's usage and then bills it."""
    reached = max(filter(None, _clock_shared()), default=None)
    return month_start(reached) if reached else None


# The key of the PostgreSQL advisory lock runs hold (any number no other code uses).
RUN_LOCK_KEY = 0x62696C6C  # "bill"


@contextmanager
def one_run_at_a_time():
    """D1: billing runs take turns (the beat's daily run, an operator's catch-up, the run a
    close's last chunk starts). On PostgreSQL a run waits for one in progress, then goes on
    from the day that one stopped at; SQLite has one writer at a time anyway."""
    if connection.vendor != "postgresql":
        yield
        return
    # Held on a connection of its own: closing it lets go, whatever became of the run's
    # transaction (a lock kept by a connection left in an aborted one would stop every run).
    holder = connection.get_new_connection(connection.get_connection_params())
    try:
        holder.autocommit = True
        holder.execute("select pg_advisory_lock(%s)", [RUN_LOCK_KEY])
        yield
    finally:
        holder.close()


def begin_day(day: date) -> bool:
    """The clock's turn: wait for the dated changes in flight, then record `day` as being
    processed, so a change dated on or before it is refused from now on. False when another
    run has processed `day` meanwhile (two runs at once: the beat's and an operator's)."""
    with transaction.atomic():
        clock = BillingClock.objects.select_for_update().filter(pk=1).first()
        if clock is None:
            BillingClock.objects.create(pk=1, processing_day=day)
            return True
        if clock.last_processed_day is not None and day <= clock.last_processed_day:
            return False
        clock.processing_day = day
        clock.save(update_fields=["processing_day"])
        return True


def date_order_problem(day: date, what: str, *, name, created_on, dated_to) -> str | None:
    """D3, D4: the dated changes to one workspace go in date order. A change dated before the
    workspace signed up, or before a change already entered for a later day (both ahead of a
    lagging clock, which D2 allows), is refused: applied behind that change it would rewrite
    what it decided (a withdrawn cancellation, a removed card still on file, a location or a
    discount the later change replaced). `dated_to` is `Workspace.changes_dated_to`."""
    latest = dated_to or created_on
    if day >= latest:
        return None
    if latest == created_on:
        return f"{what} for {name} cannot be dated {on(day)}: it signed up on {on(latest)}."
    return (
        f"{what} for {name} cannot be dated {on(day)}: a change dated {on(latest)} was entered "
        "already, and changes to a workspace are entered in date order."
    )


def refuse_before_sign_up(workspace, day: date, what: str) -> None:
    """D3: a fact about a workspace dated before it signed up (a certificate, a proof, a grant's
    first day) is refused, as a change is; unlike a change, it does not move the workspace's
    latest dated change (`take_in_date_order`): it decides nothing the later changes read."""
    problem = date_order_problem(
        day, what, name=workspace.name, created_on=workspace.created_on, dated_to=None
    )
    if problem:
        raise BillingError(problem)


def out_of_date_order(day: date) -> Q:
    """`date_order_problem` for a set of workspaces: those a change dated `day` is refused for
    (their latest dated change, or their sign-up when none, is later)."""
    return Q(changes_dated_to__gt=day) | Q(changes_dated_to=None, created_on__gt=day)


def take_in_date_order(workspace, day: date, what: str) -> None:
    """Refuse a change out of date order (`date_order_problem`), else record its day.
    `workspace` is the row the service holds locked (`Workspace.objects.for_change`)."""
    problem = date_order_problem(
        day,
        what,
        name=workspace.name,
        created_on=workspace.created_on,
        dated_to=workspace.changes_dated_to,
    )
    if problem:
        raise BillingError(problem)
    if day > (workspace.changes_dated_to or workspace.created_on):
        type(workspace).objects.filter(pk=workspace.pk).update(changes_dated_to=day)
        workspace.changes_dated_to = day


def refuse_processed(day: date, what: str, *, past_a_close: bool = False) -> None:
    """D2: refuse `what`, dated `day`, when the clock has already processed that day.

    D4: also refuse it when a month close the clock has not yet run falls due before `day`
    (the clock lags by more than a day across a 1st): the change would otherwise act on the
    state before that close (no lock yet to lift, a once coupon landing on the closing month's
    invoice), where a daily clock would have closed the month first. `past_a_close` lets a
    change that only looks forward (a tax rate from a future day) be entered ahead anyway.
    """
    last, processing = _clock_shared()
    if processing is not None and day <= processing and (last is None or processing > last):
        raise DayAlreadyProcessed(
            f"{what} dated {on(day)} is refused: the billing clock is processing "
            f"{on(processing)} now. Date it {on(processing + timedelta(days=1))} or later."
        )
    closed = (
        MonthClose.objects.filter(month__gte=month_start(day))
        .order_by("-month")
        .values_list("month", flat=True)
        .first()
    )
    if closed is not None and (last is None or last < next_month(closed)):
        # A month closed without the clock (`close_month` called on its own): its invoices
        # are issued, so its days are as processed as the clock's (I3, I4).
        raise DayAlreadyProcessed(
            f"{what} dated {on(day)} is refused: {month_name(closed)} is closed (its invoices are "
            f"issued). Date it {on(next_month(closed))} or later."
        )
    if last is None:
        return
    if day <= last:
        raise DayAlreadyProcessed(
            f"{what} dated {on(day)} is refused: the billing clock has already processed every day "
            f"through {on(last)}. Date it {on(last + timedelta(days=1))} or later."
        )
    next_close = next_month(last)
    if next_close < day and not past_a_close:
        raise ClockBehind(
            f"{what} dated {on(day)} must wait: the billing clock has processed every day "
            f"through {on(last)} and has not yet run the month close due on {on(next_close)}. "
            f"Run the clock through {on(day - timedelta(days=1))} first, or date it "
            f"{on(next_close)} at the latest."
        )


def refuse_too_far_ahead(day: date, what: str, *, things: str, them: str = "it") -> None:
    """Refuse `what`, dated `day`, when `day` is more than two years after the clock's next
    day (before the clock's first day there is no next day to count from). Prices and tax
    rates are announced months ahead, an annual customer's at most a year before the renewal
    they apply to: two years leave room for both, while a year typed wrong (2062 for 2026,
    2099) is refused rather than waiting unseen. `things` are what is entered ("terms"),
    `them` what the message asks to date again."""
    last = last_processed_day()
    if last is None:
        return
    next_day = last + timedelta(days=1)
    latest = min(add_year(add_year(next_day)), LAST_DAY)
    if day > latest:
        raise BillingError(
            f"{what}: {things} are entered at most two years ahead of the billing clock's next "
            f"day, {on(next_day)}: date {them} {on(latest)} at the latest."
        )


def refuse_issued_already(invoices, day: date, what: str) -> None:
    """D4, I3: `what`, dated `day`, would change invoices among `invoices` dated `day` or later
    that a dated change has issued already (a final or an annual invoice, ahead of the clock):
    an issued invoice is never edited, so it is refused; the same changes in the other order
    would have made those invoices its way (taxed, discounted, credited). Dated the day after
    the last of them, it applies to what follows."""
    latest = latest_issued(invoices, day)
    if latest is not None:
        raise BillingError(issued_already(what, day, *latest))


def latest_issued(invoices, day: date) -> tuple[str, date] | None:
    """(number, issue date) of the last invoice among `invoices` dated `day` or later, not
    void: the one `refuse_issued_already` names."""
    return (
        invoices.filter(issue_date__gte=day)
        .exclude(status=Invoice.Status.VOID)
        .order_by("-issue_date", "-id")
        .values_list("number", "issue_date")
        .first()
    )


def issued_already(what: str, day: date, number: str, issued_on: date) -> str:
    return (
        f"{what} dated {on(day)} is refused: invoice {number}, dated {on(issued_on)}, was issued "
        "already as things stood, and an issued invoice is never changed. Date it "
        f"{on(issued_on + timedelta(days=1))} or later, or request a credit note on {number} "
        "to change what it bills (K3)."
    )


def mark_processed(day: date) -> None:
    """Record `day` as processed; the record only moves forward (a run that finishes after a
    longer one leaves it where that one put it)."""
    moved = (
        BillingClock.objects.filter(pk=1)
        .filter(Q(last_processed_day=None) | Q(last_processed_day__lt=day))
        .update(last_processed_day=day)
    )
    if not moved and not BillingClock.objects.filter(pk=1).exists():
        BillingClock.objects.create(pk=1, last_processed_day=day)
