"""What will this customer pay over the next months? (SPEC FC1) And what will this month's
close issue (`preview_invoice`: the same sandbox, without assumptions)?

The forecast runs the real rules, not a copy: inside a transaction that is always rolled back it
applies the proposed changes through their services, records the assumed usage, then plays the
billing clock for this one workspace (its trial and term ends, and each month's close of its
invoices, in the clock's order, D1) and reads the invoices that came out. Nothing survives:

- every row it writes (invoices, lines, redemptions, credit draws, outbox rows, lock events,
  history) is rolled back with the savepoint, and so are the `on_commit` callbacks that would
  have sent emails or started tasks (Django drops those of a rolled-back savepoint);
- its invoices take placeholder numbers (`invoicing.placeholder_numbers`) instead of numbers
  from the InvoiceSequence row, so the sequence is never read for update, never moves and never
  gaps; the clock position (BillingClock) and month closes are not touched at all, and the
  proposed changes read the clock's row without holding it (`clock.changes_rolled_back`), so
  the clock never waits for a forecast to start its day;
- it never holds a row a month close needs: the only rows it locks or writes are its own
  workspace's (the services lock a workspace FOR NO KEY UPDATE, so a close inserting that
  workspace's invoices meanwhile does not wait), it leaves a month whose close is under way to
  that close, and on PostgreSQL it waits at most LOCK_TIMEOUT_MS for a row the clock holds
  (then gives up with a message) instead of queueing behind it. What is left: a close that
  starts on this very workspace during the forecast's fraction of a second may wait for that
  remainder to draw on the same coupons and credits.

Table ids (PostgreSQL sequences) that its inserts drew are not given back: ids are not numbers
anyone reads, and a gap in them means nothing.
"""

from contextlib import contextmanager
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from billing import invoicing
from billing.clock import changes_rolled_back, first_open_month, refuse_processed
from billing.closed_workspaces import hold_usage_writers, refuse_closed
from billing.errors import BillingError
from billing.invoicing import InvoicePreview
from billing.models import Invoice, MonthClose, Usage, Workspace
from billing.months import EARLIEST_MONTH, LATEST_MONTH, add_months, month_start, next_month
from billing.pricing import Line
from billing.subscriptions import advance_workspace, next_event_day, refuse_set_aside_pending
from billing.tax import TaxTable
from billing.usage import record_usage
from billing.usage_import import MAX_MTUS

MAX_MONTHS = 12
# PostgreSQL: how long the forecast waits for a row someone else holds (a month close working
# on this workspace) before it gives up rather than wait its turn.
LOCK_TIMEOUT_MS = 300
LOCK_NOT_AVAILABLE = "55P03"


class _Discard(Exception):
    """Raised at the end of the sandbox so its transaction always rolls back."""


@contextmanager
def nothing_survives(what: str = "the forecast"):
    """Run the block in a transaction (a savepoint inside an outer one) that is rolled back
    whatever happens; see the module docstring for what that covers. `what` is named in the
    refusal when the clock holds the workspace."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # SET LOCAL ends with the (sub)transaction: rolled back with it.
                    cursor.execute(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}")
            with invoicing.placeholder_numbers(), changes_rolled_back():
                yield
            raise _Discard
    except _Discard:
        pass
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise BillingError(
                f"The billing clock is working on this workspace right now; try {what} again "
                "in a minute."
            ) from None
        raise


def assumed_mtus(workspace: Workspace, *, as_of: date, mtus) -> int:
    """FC1: the MTUs each forecast month is assumed to report: `"last"` (last month's),
    `"average3"` (the last three months', rounded half up; only those from the workspace's
    sign-up month on) or a given whole number."""
    if isinstance(mtus, int) and not isinstance(mtus, bool):
        if not 0 <= mtus <= MAX_MTUS:
            raise BillingError(f"Assume between 0 and {MAX_MTUS:,} MTUs a month, not {mtus:,}.")
        return mtus
    this_month = month_start(as_of)
    if mtus == "last":
        months = [add_months(this_month, -1)]
    elif mtus == "average3":
        months = [add_months(this_month, -n) for n in (1, 2, 3)]
    else:
        raise BillingError(f"“{mtus}” is not an MTU assumption: use last, average3 or a number.")
    # A month before the sign-up reported nothing because the workspace did not exist: counted
    # as 0, it took a third off the average of a customer two months old.
    months = [m for m in months if m >= month_start(workspace.created_on)]
    if not months:
        return 0
    reported = dict(
        Usage.objects.filter(workspace_id=workspace.pk, month__in=months).values_list(
            "month", "mtus"
        )
    )
    average = Decimal(sum(reported.get(m, 0) for m in months)) / len(months)
    return int(average.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _months_to_close(workspace: Workspace, last: date) -> list[date]:
    """The months whose close is still to come, through `last`: from the month after the
    last close that has started (or the workspace's first month). A close under way is issuing
    its invoices itself: the forecast does not write the same ones beside it."""
    done = MonthClose.objects.order_by("-month").values_list("month", flat=True).first()
    month = next_month(done) if done else month_start(workspace.created_on)
    months = []
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def _record_assumed_usage(workspace: Workspace, figures: dict[date, int]) -> None:
    """U1: each month's figure, as `record_usage` would leave it (a new figure, or the one on
    file replaced), written at once: its checks are taken once for all the months (the usage
    writers held, the workspace's row, W1) instead of once a month. A month those checks could
    refuse (one whose close the clock has reached, D2, or outside the months billed) goes
    through `record_usage` itself, which refuses it as it would any month (or takes it, I6).
    No history rows: nothing here survives, and nothing in the sandbox reads them."""
    reached = first_open_month()
    open_months = {}
    for month, mtus in sorted(figures.items()):
        if (reached is not None and month < reached) or not (
            EARLIEST_MONTH <= month <= LATEST_MONTH
        ):
            record_usage(workspace, month=month, mtus=mtus)
        else:
            open_months[month] = mtus
    if not open_months:
        return
    hold_usage_writers()
    Workspace.objects.select_for_update(no_key=True).filter(pk=workspace.pk).first()
    refuse_closed(workspace, "Recording usage")
    now = timezone.now()
    on_file = {
        usage.month: usage
        for usage in Usage.objects.filter(workspace_id=workspace.pk, month__in=list(open_months))
    }
    replaced = []
    for month, usage in on_file.items():
        if usage.mtus != open_months[month]:
            usage.mtus, usage.reported_at, usage.updated_at = open_months[month], now, now
            replaced.append(usage)
    if replaced:
        Usage.objects.bulk_update(replaced, ["mtus", "reported_at", "updated_at"])
    Usage.objects.bulk_create(
        Usage(workspace_id=workspace.pk, month=month, mtus=mtus, reported_at=now)
        for month, mtus in open_months.items()
        if month not in on_file
    )


def _fresh(workspace: Workspace) -> Workspace:
    """The workspace row as the sandbox sees it now (not locked: the forecast takes as few
    row locks as it can)."""
    return Workspace.objects.get(pk=workspace.pk)


def _preview(invoice: Invoice, workspace: Workspace) -> InvoicePreview:
    return InvoicePreview(
        number="",
        workspace=workspace,
        kind=invoice.kind,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        issue_date=invoice.issue_date,
        status=invoice.status,
        currency=invoice.currency,
        subtotal=invoice.subtotal,
        discount=invoice.discount,
        credits=invoice.credits,
        tax=invoice.tax,
        total=invoice.total,
        tax_country=invoice.tax_country,
        tax_region=invoice.tax_region,
        tax_note=invoice.tax_note,
        plan_code=invoice.plan_code,
        interval=invoice.interval,
        lines=[
            Line(line.kind, line.description, line.amount, line.quantity)
            for line in invoice.lines.all()
        ],
    )


def preview_invoice(workspace: Workspace, *, month: date, as_of: date) -> InvoicePreview | None:
    """The invoice the close of `month` would issue for the workspace if nothing changed before
    it, from what is recorded when asked (`as_of`: the usage so far); nothing is written. None
    when the close would issue none.

    D1: the trial and term ends dated before the close come first, as the clock applies them
    (in the sandbox): a trial without a card goes back to Free and the close bills nothing, an
    annual term switched to monthly bills its monthly days, a renewal's invoice takes the coupon
    the close would otherwise have used."""
    month = month_start(month)
    close_day = next_month(month)
    event_day = next_event_day(workspace)
    if event_day is None or event_day >= close_day:
        return _close_preview(workspace, month)
    with nothing_survives("the invoice preview"):
        advance_workspace(_fresh(workspace), close_day - timedelta(days=1))
        preview = _close_preview(workspace, month)
    return preview


def _close_preview(workspace: Workspace, month: date) -> InvoicePreview | None:
    drafts = invoicing.month_close_drafts(month, workspace_ids=[workspace.pk])
    previews = invoicing.preview(drafts)
    return previews[-1] if previews else None


def forecast_invoices(
    workspace: Workspace, *, as_of: date, months: int = MAX_MONTHS, mtus="last", changes=()
) -> list[InvoicePreview]:
    """FC1: the invoices the billing clock would issue for the workspace through the close of
    the `months`-th month from `as_of`'s month (1–12), oldest first, unsaved (as
    `preview_invoice`), from today's state or after `changes`: callables `change(workspace,
    as_of)` that call services (a plan or interval change, a cancellation, a coupon, a closure),
    applied on `as_of` first; a service's refusal comes back as it is. Each month from `as_of`'s
    on is assumed to report `assumed_mtus(mtus)` (the current month at least what it reported
    so far). Nothing it does survives the call (see the module docstring)."""
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise BillingError(f"Forecast 1 to {MAX_MONTHS} months, not {months}.")
    # D2: from a day the clock has processed, its months' usage and invoices are facts, not a
    # forecast (a caller's past `as_of` forecast nothing, or failed on a closed month's usage).
    refuse_processed(as_of, "A forecast", past_a_close=True)
    # I6: the clock issues nothing more for it until the set-aside invoice is issued.
    refuse_set_aside_pending(workspace, as_of, "A forecast")
    figure = assumed_mtus(workspace, as_of=as_of, mtus=mtus)
    first = month_start(as_of)
    last = add_months(first, months - 1)
    result = []
    with nothing_survives():
        existing = set(
            Invoice.objects.filter(workspace_id=workspace.pk).values_list("pk", flat=True)
        )
        for change in changes:
            change(Workspace.objects.get(pk=workspace.pk), as_of)
        ws = Workspace.objects.get(pk=workspace.pk)
        if ws.closed_on is None:  # W1: a closed workspace's data has stopped
            reported = dict(
                Usage.objects.filter(workspace=ws, month__gte=first, month__lte=last).values_list(
                    "month", "mtus"
                )
            )
            # A month whose close has run keeps its usage (D2); the others get the assumption.
            closed = set(
                MonthClose.objects.filter(month__gte=first, month__lte=last).values_list(
                    "month", flat=True
                )
            )
            figures = {}
            month = first
            while month <= last:
                if month not in closed:
                    assumed = max(figure, reported.get(month, 0)) if month == first else figure
                    figures[month] = assumed
                month = next_month(month)
            _record_assumed_usage(ws, figures)
        # Read once for every month: the tax rates (the forecast changes none), and the day of
        # the next trial or term end, read again only after one is applied.
        tax_table = TaxTable()
        event_day = next_event_day(ws)
        for month in _months_to_close(ws, last):
            close_day = next_month(month)
            # D1: a day's month closes come before its trial and term ends.
            if event_day is not None and event_day < close_day:
                advance_workspace(_fresh(ws), close_day - timedelta(days=1))
                event_day = next_event_day(ws)
            drafts = invoicing.month_close_drafts(month, workspace_ids=[ws.pk])
            invoicing.issue(drafts, tax_table)
        if event_day is not None and event_day <= next_month(last):
            advance_workspace(_fresh(ws), next_month(last))
        issued = (
            Invoice.objects.filter(workspace_id=ws.pk)
            .exclude(pk__in=existing)
            .prefetch_related("lines")
            .order_by("issue_date", "pk")
        )
        result = [_preview(invoice, workspace) for invoice in issued]
    return result


def side_by_side(today: list[InvoicePreview], proposed: list[InvoicePreview] | None = None):
    """FC1's page: the two forecasts by issue month, each month's invoices and totals, and bar
    heights (0–100) for the chart. Returns (rows, totals)."""
    proposed = proposed or []
    zero = Decimal("0.00")
    by_month: dict[date, dict] = {}
    for side, invoices in (("today", today), ("proposed", proposed)):
        for invoice in invoices:
            row = by_month.setdefault(
                month_start(invoice.issue_date),
                {"today": [], "proposed": [], "today_total": zero, "proposed_total": zero},
            )
            row[side].append(invoice)
            row[f"{side}_total"] += invoice.total
    peak = max(
        [r["today_total"] for r in by_month.values()]
        + [r["proposed_total"] for r in by_month.values()]
        + [Decimal(1)]
    )
    rows = []
    for month in sorted(by_month):
        row = by_month[month]
        row["month"] = month
        row["today_height"] = round(100 * row["today_total"] / peak)
        row["proposed_height"] = round(100 * row["proposed_total"] / peak)
        rows.append(row)
    totals = {
        "today": sum((i.total for i in today), zero),
        "proposed": sum((i.total for i in proposed), zero),
    }
    totals["difference"] = totals["proposed"] - totals["today"]
    return rows, totals
