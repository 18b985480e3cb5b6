"""The billing clock's run (D1, D4): every day from the one after the last processed through
`as_of`, each in turn and whole, so one run over a range does what one run a day does.
"""

import logging
from collections import Counter
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Min

from billing.clock import begin_day, last_processed_day, mark_processed, one_run_at_a_time
from billing.hooks import daily_steps
from billing.models import BillingClock, Interval, MonthClose, Subscription, Workspace
from billing.month_close import close_month, finish_close_if_complete, retry_set_aside
from billing.months import month_start, next_month
from billing.subscriptions import (
    advance_workspace,
    locks_for_changes_entered_ahead,
    send_trial_reminders,
)
from billing.tax import RegionNotACode

logger = logging.getLogger(__name__)


def _next_month_to_close(as_of: date) -> date | None:
    finished = MonthClose.objects.filter(finished=True)
    last = finished.order_by("-month").values_list("month", flat=True).first()
    if last is not None:
        month = next_month(last)
    else:
        first_day = Workspace.objects.aggregate(first=Min("created_on"))["first"]
        if first_day is None:
            return None
        month = month_start(first_day)
    return month if next_month(month) <= as_of else None


def _next_subscription_event(as_of: date, skipped=()):
    """The earliest trial end or annual term end due by `as_of` among current subscriptions,
    the ones `advance_workspace` applies them to (an ended one has nothing left to apply); on
    one day, workspace by workspace (the order their invoices are numbered in, I1). The
    workspaces `skipped` this day are left out."""
    current = Subscription.objects.filter(ended_on=None).exclude(workspace_id__in=skipped)
    trial = (
        current.filter(trial_outcome=Subscription.TrialOutcome.RUNNING, trial_end__lte=as_of)
        .order_by("trial_end", "workspace_id")
        .values_list("trial_end", "workspace_id")
        .first()
    )
    term = (
        current.filter(interval=Interval.ANNUAL, term_end__lte=as_of)
        .order_by("term_end", "workspace_id")
        .values_list("term_end", "workspace_id")
        .first()
    )
    events = [e for e in (trial, term) if e]
    return min(events) if events else None


def _first_day_to_process() -> date | None:
    last = last_processed_day()
    if last is not None:
        return last + timedelta(days=1)
    return Workspace.objects.aggregate(first=Min("created_on"))["first"]


def run_billing(*, as_of: date, dispatch=None) -> dict:
    """D1, D4: process every day from the day after the last processed one through `as_of`,
    each in turn and whole: the month closes due that day (M1, F1–F3), the trial ends (T4) and
    term ends (K2) dated that day, the daily steps of the apps above (coupon expiries, credit
    lapses, renewal reviews) and the trial reminders (T6). Each day is recorded when done, so
    one call over a range does what one call a day does, and a day already processed is a no-op.

    With `dispatch` (the Celery path) a month close's chunks go to workers and the run stops
    there, before recording that day; the close's last chunk starts the run again.
    """
    with one_run_at_a_time():
        counts = Counter()
        day = _first_day_to_process()
        first = day
        while day is not None and day <= as_of:
            # A month close falls due on a 1st; the first day looks for any left unfinished.
            # After the changes in flight; changes dated `day` are refused now. Another run
            # (without the run lock: SQLite) may have got further: go on from where it stopped.
            if not begin_day(day):
                day = first = _first_day_to_process()
                continue
            counts.update(_process_day(day, dispatch, closes=day.day == 1 or day == first))
            if counts["waiting_for_close"]:
                return dict(counts)
            mark_processed(day)
            day += timedelta(days=1)
        # I6: the set-aside invoices are retried as of the day the clock stands at; a run for
        # a day already passed is a no-op (D1), or they would be billed before they were set
        # aside.
        if as_of >= (last_processed_day() or as_of):
            counts.update(retry_set_aside(as_of=as_of))
    return {key: value for key, value in counts.items() if value}


def _process_day(day: date, dispatch, *, closes: bool) -> Counter:
    counts = Counter()
    while closes and (month := _next_month_to_close(day)):
        result = close_month(month, as_of=day, dispatch=dispatch)
        counts.update(result)
        if result["chunks_dispatched"]:
            counts["waiting_for_close"] = 1
            return counts
        counts["months_closed"] += 1
    skipped = set()
    while event := _next_subscription_event(day, skipped):
        try:
            with transaction.atomic():
                workspace = Workspace.objects.for_change(Workspace(pk=event[1]))
                advance_workspace(workspace, event[0])
        except RegionNotACode as exc:
            # X1: an invoice it cannot tax waits for the region to be corrected (the correction
            # issues it; each day tries again meanwhile); the other workspaces go on.
            logger.warning("billing day %s: workspace %s skipped: %s", day, event[1], exc)
            skipped.add(event[1])
            counts["subscription_events_skipped"] += 1
            continue
        counts["subscription_events"] += 1
    counts.update(locks_for_changes_entered_ahead(day))
    for step in daily_steps():
        counts.update(step(day))
    counts["trial_reminders"] += send_trial_reminders(as_of=day)
    return counts


# --- Going on with a day after its month close (the Celery path) ------------------------------


def day_to_go_on_with(close_id: int) -> date | None:
    """D1, after one of a close's chunks: finish the close if its chunks are all done, and
    return the day the billing run must go on with when the close is finished and the clock
    has not processed the day it closed on (else None). Whether this chunk finished the close
    or an earlier try of it did: the run that chunk handed the day to may have been lost (the
    broker down the moment the close finished, the worker killed before it sent it), and the
    chunk run again (redelivered, retried) hands it over again. A run too many is a no-op."""
    finish_close_if_complete(close_id)
    closed_on = (
        MonthClose.objects.filter(pk=close_id, finished=True)
        .values_list("closed_on", flat=True)
        .first()
    )
    last = last_processed_day()
    if closed_on is None or (last is not None and closed_on <= last):
        return None
    return closed_on


def day_left_after_its_close(*, finished_before: datetime) -> date | None:
    """D1, for the beat's sweep: the day a run began and left for its month close, when that
    close finished before `finished_before` and no other is under way, yet no run has finished
    the day: the close's last chunk could not hand the day over (the broker was down then) and
    nothing will run that chunk again. None when the clock is not stuck so."""
    clock = BillingClock.objects.filter(pk=1).values("last_processed_day", "processing_day")
    clock = clock.first() or {"last_processed_day": None, "processing_day": None}
    day, last = clock["processing_day"], clock["last_processed_day"]
    if day is None or (last is not None and day <= last):
        return None
    if MonthClose.objects.filter(finished=False).exists():
        return None  # its chunks are on the workers; the last one goes on with the day
    finished = MonthClose.objects.filter(
        closed_on=day, finished=True, updated_at__lt=finished_before
    ).exists()
    return day if finished else None
