"""The month close (M1, F1–F3, I4, I6): strikes and locks, then the invoices in chunks that
workers share, each chunk once; a workspace that cannot be billed is set aside with its error
and billed on a later run once fixed.
"""

import logging
import threading
from collections import Counter
from datetime import date

from django.db import connection, transaction
from django.db.models import F, Sum

from billing import invoicing
from billing.bulk_rows import gc_paused
from billing.emails import sending_held
from billing.errors import BillingError
from billing.locks import apply_lock_rules, record_strikes
from billing.models import (
    Invoice,
    MonthClose,
    MonthCloseChunk,
    SetAsideInvoice,
    Subscription,
    Workspace,
)
from billing.months import add_months, next_month
from billing.reports import fold_rollup

logger = logging.getLogger(__name__)


# Workspaces per invoice chunk: large enough to amortise a chunk's fixed cost (its ~30 queries
# and commit: 100,000 workspaces closed in 5,000s took 0.75× the time of 2,000s; bench/
# month_close.py), small enough that its transaction stays short (a second or so) and a month of
# 100,000 workspaces still gives 20 chunks to share among workers.
CLOSE_CHUNK_SIZE = 5_000


def close_due_on(day: date) -> date | None:
    """The month whose close is dated `day`, a 1st, when it has not finished: that day's
    changes come before it (D1), so a change must leave it what it bills (a closure, W1, the
    credit the month's invoices draw on)."""
    if day.day != 1:
        return None
    month = add_months(day, -1)
    return None if MonthClose.objects.filter(month=month, finished=True).exists() else month


def close_month(
    month: date, *, as_of: date, dispatch=None, chunk_size=CLOSE_CHUNK_SIZE, threads: int = 1
) -> Counter:
    """Close `month` once: strikes and locks (F1–F3), then its invoices (M1–M3, K2) in chunks.

    Each step is recorded when done, so a close interrupted anywhere resumes where it stopped
    and a second or concurrent close repeats nothing (I4). With `dispatch`, the pending chunk
    ids are handed to it (Celery workers) and the close finishes with its last chunk; without,
    they run here, on `threads` threads (each with its own database connection: one prices a
    chunk while another writes, as two workers would).
    """
    counts = Counter()
    close, _ = MonthClose.objects.get_or_create(month=month, defaults={"closed_on": as_of})
    if close.finished:
        return counts
    # Its lock emails go to the queue once its chunks are there (a worker takes the chunks
    # first). Should this process stop before then, the sweep sends them.
    with sending_held():
        with transaction.atomic():
            close = MonthClose.objects.select_for_update().get(pk=close.pk)
            if not close.locks_done:
                close.strikes = counts["strikes"] = record_strikes(month)
                counts.update(apply_lock_rules(month, as_of))
                close.locks_done, close.closed_on = True, as_of
            if not close.chunks_planned:
                _plan_chunks(close, chunk_size)
                close.chunks_planned = True
            close.save()
        pending = list(close.chunks.filter(done=False).values_list("pk", flat=True))
        if dispatch is not None and pending:
            dispatch(pending)
            counts["chunks_dispatched"] = len(pending)
            return counts
        if threads > 1 and len(pending) > 1:
            counts["invoices"] += _bill_chunks_on_threads(pending, threads)
        else:
            for chunk_id in pending:
                counts["invoices"] += bill_chunk(chunk_id)
        finish_close_if_complete(close.pk)
    return counts


def _bill_chunks_on_threads(chunk_ids: list[int], threads: int) -> int:
    """`bill_chunk` for each id on `threads` threads; the first error is raised once all have
    stopped (chunks already billed stay billed: I4, the close resumes)."""
    remaining, lock = iter(chunk_ids), threading.Lock()
    issued, errors = [], []

    def work():
        try:
            while True:
                with lock:
                    chunk_id = next(remaining, None)
                if chunk_id is None or errors:
                    return
                issued.append(bill_chunk(chunk_id))
        except BaseException as exc:  # raised in the caller's thread below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    workers = [threading.Thread(target=work, name=f"close-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return sum(issued)


def _plan_chunks(close: MonthClose, chunk_size: int):
    """Split the workspaces with paid Team days in the month into ranges of `chunk_size`. The
    database numbers them and hands back each range's first and last id, so planning holds
    no list of a million ids."""
    workspace_ids = (
        Subscription.objects.paid_overlapping(close.month, next_month(close.month))
        .order_by()
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    sql, params = workspace_ids.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "select min(workspace_id), max(workspace_id) from ("
            "select workspace_id, (row_number() over (order by workspace_id) - 1) / %s as chunk "
            f"from ({sql}) as paid) as numbered group by chunk order by chunk",
            [chunk_size, *params],
        )
        ranges = cursor.fetchall()
    MonthCloseChunk.objects.bulk_create(
        MonthCloseChunk(close=close, first_workspace_id=first, last_workspace_id=last)
        for first, last in ranges
    )


def bill_chunk(chunk_id: int) -> int:
    """Issue one chunk's invoices and mark it done, in one transaction; a chunk already done
    (a redelivered task) or gone issues nothing. A workspace whose invoice cannot be made is
    set aside with its error (I6) and every other invoice is issued. Returns how many invoices
    it issued."""
    with transaction.atomic(), gc_paused():
        # The chunk's row only: FOR UPDATE of the join would lock the close's row too, and
        # every chunk would wait for the one before it to commit (workers in single file).
        chunk = (
            MonthCloseChunk.objects.select_for_update(of=("self",))
            .select_related("close")
            .filter(pk=chunk_id)
            .first()
        )
        if chunk is None or chunk.done:
            return 0
        issued, problems = _issue_setting_aside(
            chunk.close.month,
            invoicing.month_close_drafts(
                chunk.close.month,
                workspace_range=(chunk.first_workspace_id, chunk.last_workspace_id),
            ),
        )
        _set_aside(chunk.close, problems, on=chunk.close.closed_on)
        chunk.invoices = len(issued)
        chunk.done = True
        chunk.save(update_fields=["invoices", "done"])
        return chunk.invoices


def _issue_setting_aside(month: date, drafts) -> tuple[list[Invoice], dict[int, str]]:
    """I6: issue what can be issued; the rest comes back as {workspace id: error}. A workspace
    whose invoice of an earlier month is still set aside waits too (I1, C5, CR2): issued
    first, this month's would take the number, the `once` coupon and the credit owed to it."""
    problems = {}

    def set_aside(draft, exc):
        error = str(exc) if isinstance(exc, BillingError) else f"{type(exc).__name__}: {exc}"
        problems.setdefault(draft.subscription.workspace_id, error)

    # Set-aside entries are few: all of the earlier months' open ones, read at once.
    earlier = {}
    for workspace_id, earlier_month in SetAsideInvoice.objects.filter(
        resolved_on=None, close__month__lt=month
    ).values_list("workspace_id", "close__month"):
        earlier[workspace_id] = min(earlier_month, earlier.get(workspace_id, earlier_month))
    ready = []
    for draft in drafts:
        workspace_id = draft.subscription.workspace_id
        if workspace_id in earlier:
            problems[workspace_id] = (
                f"waits for its invoice for {earlier[workspace_id]:%B %Y}, set aside by that "
                "month's close, to be issued first"
            )
        else:
            ready.append(draft)
    return invoicing.issue(ready, set_aside=set_aside, kept_in_history=False), problems


def _set_aside(close: MonthClose, problems: dict[int, str], *, on: date):
    """Keep each workspace's entry. The warning is for news: a workspace set aside, or set
    aside for another reason; a retry that fails as before (the one right after the close,
    each day's after it) says so quietly, check_billing keeps it in view."""
    before = dict(
        SetAsideInvoice.objects.filter(
            close=close, workspace_id__in=problems, resolved_on=None
        ).values_list("workspace_id", "error")
    )
    for workspace_id, error in problems.items():
        if before.get(workspace_id) == error:
            logger.info(
                "month close %s: workspace %s still set aside: %s", close, workspace_id, error
            )
        else:
            logger.warning("month close %s: workspace %s set aside: %s", close, workspace_id, error)
        SetAsideInvoice.objects.update_or_create(
            close=close,
            workspace_id=workspace_id,
            defaults={"error": error, "resolved_on": None},
            create_defaults={"error": error, "first_seen_on": on},
        )


def retry_set_aside(*, as_of: date, close: MonthClose | None = None) -> Counter:
    """I6: try again each workspace a close (`close`, or any) set aside; once its cause is
    fixed its invoice is issued (I4: never a second one) and the entry is resolved. The daily
    run calls it, and finance from a close's page (`as_of` today), so two may meet: each holds
    the workspace and reads the entry again before it bills."""
    counts = Counter()
    waiting = SetAsideInvoice.objects.filter(resolved_on=None).select_related("close")
    if close is not None:
        waiting = waiting.filter(close=close)
    # Oldest month first (I1, C5): its invoice comes before a later month's of the workspace.
    for entry in waiting.order_by("close__month", "workspace_id"):
        with transaction.atomic():
            Workspace.objects.for_change(Workspace(pk=entry.workspace_id))
            if not SetAsideInvoice.objects.filter(pk=entry.pk, resolved_on=None).exists():
                continue  # billed by the other while this one waited for the workspace
            issued, problems = _issue_setting_aside(
                entry.close.month,
                invoicing.month_close_drafts(entry.close.month, workspace_ids=[entry.workspace_id]),
            )
            if problems:
                _set_aside(entry.close, problems, on=as_of)
                continue
            # Never before the day it was set aside: a clock run ahead of the calendar (D1's
            # --allow-future, on a copy) sets aside on days finance's "today" has not reached.
            entry.resolved_on = max(as_of, entry.first_seen_on)
            entry.save(update_fields=["resolved_on"])
            MonthClose.objects.filter(pk=entry.close_id).update(
                invoices=F("invoices") + len(issued)
            )
            counts["set_aside_billed"] += len(issued)
    return counts


def finish_close_if_complete(close_id: int) -> MonthClose | None:
    """Mark the close finished once its last chunk is done; the close when this call did."""
    with transaction.atomic():
        close = MonthClose.objects.select_for_update().get(pk=close_id)
        if close.finished or not close.chunks_planned or close.chunks.filter(done=False).exists():
            return None
        # Added to, not set: finance may have billed a set-aside invoice while chunks ran (I6).
        close.invoices += close.chunks.aggregate(n=Sum("invoices"))["n"] or 0
        close.finished = True
        close.save(update_fields=["invoices", "finished", "updated_at"])
    # The close added a few rows a chunk to the reports' roll-up: one a group is left.
    fold_rollup()
    return close
