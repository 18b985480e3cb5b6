"""Issuing invoices (SPEC M, K, I): what each invoice charges, and issuing it exactly once.

Drafts say what to charge; `issue` prices them with the pure core (discount and credit through
the hook, tax from the table), numbers them and writes them in bulk. A draft whose invoice
already exists (the unique constraint's key) is skipped, so a repeated close issues nothing.

A month close issues thousands of invoices per chunk, so its Python work per invoice is a few
tuples: subscriptions are read as rows (`BilledSubscription`), invoices and lines are written as
rows (COPY on PostgreSQL), and the issued invoices become model instances only when a caller
looks at them (`IssuedInvoices`).
"""

from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from billing.audit import acting, record_history, the_why, with_reason
from billing.bulk_rows import copy_rows
from billing.clock import last_processed_day
from billing.errors import BillingError, ClockBehind
from billing.formatting import day as on
from billing.formatting import period_text, unit_price
from billing.hooks import Adjustment, DraftInvoice, invoice_adjustments
from billing.models import (
    Interval,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Plan,
    PlanTerms,
    Subscription,
    Usage,
    Workspace,
)
from billing.months import add_year, days_in_month, month_start, next_month, overlap_days
from billing.pricing import Charge, PricedInvoice, overage_amount, price_invoice, prorated_base
from billing.regions import region_not_a_code
from billing.tax import TaxTable

# The largest amount an invoice's money columns hold (12 digits, 2 of them cents).
MAX_INVOICE_AMOUNT = Decimal("9999999999.99")


class BilledWorkspace(NamedTuple):
    """What pricing reads of a workspace (X1: tax follows the business location)."""

    pk: int
    business_country: str
    business_region: str


@dataclass(slots=True)
class BilledSubscription:
    """A subscription as the month close reads it: one row, not a model instance. It answers
    what an invoice draft asks of a `Subscription` (either may be a draft's subscription)."""

    pk: int
    workspace_id: int
    plan: Plan
    terms: PlanTerms  # the plan's, in force on the month's first day
    interval: str
    paid_from: date
    ended_on: date | None
    end_reason: str
    workspace: BilledWorkspace


@dataclass(slots=True)
class InvoiceDraft:
    subscription: Subscription | BilledSubscription
    kind: str
    period_start: date
    period_end: date
    issue_date: date
    charges: list[Charge]
    overage_mtus: int = 0

    @property
    def key(self):
        return (self.subscription.pk, self.kind, self.period_start)


@dataclass
class InvoicePreview:
    """`preview_invoice`'s answer: Invoice's field names, unsaved, with a list of lines."""

    number: str
    workspace: object
    kind: str
    period_start: date
    period_end: date
    issue_date: date
    status: str
    currency: str
    subtotal: Decimal
    discount: Decimal
    credits: Decimal
    tax: Decimal
    total: Decimal
    tax_country: str
    tax_region: str
    tax_note: str
    plan_code: str
    interval: str
    lines: list = field(default_factory=list)


@cache
def _month_label(month: date) -> str:
    return f"{month:%B %Y}"


def _base_charge(terms: PlanTerms, paid_days: int, month: date) -> Charge:
    dim = days_in_month(month)
    amount = prorated_base(terms.monthly_price, paid_days, dim)
    if paid_days >= dim:
        description = f"Team monthly, {_month_label(month)}"
    else:
        description = f"Team monthly, {_month_label(month)}: {paid_days} of {dim} days"
    return Charge("base", description, amount, paid_days)


def _overage_charge(terms: PlanTerms, mtus: int, month: date) -> Charge:
    rate = terms.overage_rate
    return Charge(
        "overage",
        f"Overage, {_month_label(month)}: {mtus:,} MTU{'' if mtus == 1 else 's'} at "
        f"{_rate_label(rate)}",
        overage_amount(mtus, rate),
        mtus,
    )


@cache
def _rate_label(rate: Decimal) -> str:
    return unit_price(rate)


def _workspace_scope(workspace_ids=None, workspace_range=None, field="workspace_id") -> Q:
    """Which workspaces a query covers (by `field`, the workspace's id): a month close chunk's
    id range (cheap for the planner and the driver alike) or a list of ids."""
    if workspace_range is not None:
        first, last = workspace_range
        return Q(**{f"{field}__gte": first, f"{field}__lte": last})
    if workspace_ids is not None:
        return Q(**{f"{field}__in": workspace_ids})
    return Q()


def _trial_workspaces(scope: Q, start: date, end: date) -> set[int]:
    """M3: workspaces that had at least one trial day in [start, end)."""
    trials = Subscription.objects.filter(
        scope, trial_end__gt=start, started_on__lt=end
    ).values_list("workspace_id", "started_on", "trial_end", "ended_on")
    return {
        ws_id
        for ws_id, started, trial_end, ended in trials
        if overlap_days(started, min(trial_end, ended or trial_end), start, end) > 0
    }


def _unbilled_overage(scope: Q, month: date, terms_by_ws: dict) -> dict[int, int]:
    """M3 and K1: overage MTUs of `month` not already billed by a final invoice, by the
    workspaces' terms of the month (`terms_by_ws`)."""
    end = next_month(month)
    usage = dict(Usage.objects.filter(scope, month=month).values_list("workspace_id", "mtus"))
    billed = dict(
        Invoice.objects.filter(
            scope,
            kind=Invoice.Kind.FINAL,
            period_start__gte=month,
            period_start__lt=end,
        )
        .values("workspace_id")
        .annotate(billed=Sum("overage_mtus"))
        .values_list("workspace_id", "billed")
    )
    trials = _trial_workspaces(scope, month, end)
    result = {}
    for ws_id, terms in terms_by_ws.items():
        if ws_id in trials or not terms.bills_overage:
            result[ws_id] = 0
            continue
        over = max(usage.get(ws_id, 0) - terms.included_mtus, 0)
        result[ws_id] = max(over - (billed.get(ws_id) or 0), 0)
    return result


def month_close_drafts(month: date, workspace_ids=None, workspace_range=None) -> list[InvoiceDraft]:
    """M1–M3, K1's return and K2's overage: the invoices the close of `month` issues.

    One invoice per paid monthly Team subscription of the month that was not ended by a final
    invoice inside it, even at 0.00; an annual term's month gets an overage-only invoice of
    kind `monthly`, and nothing when there is no overage. A workspace's overage goes on the
    invoice of its latest subscription of the month, once.
    """
    end = next_month(month)
    scope = _workspace_scope(workspace_ids, workspace_range)
    plans = {plan.pk: plan for plan in Plan.objects.all()}
    terms = PlanTerms.objects.on(month)
    rows = list(
        Subscription.objects.paid_overlapping(month, end)
        .filter(scope)
        .order_by("workspace_id", "paid_from")
        .values_list(
            "pk",
            "workspace_id",
            "plan_id",
            "interval",
            "paid_from",
            "ended_on",
            "end_reason",
        )
    )
    # The workspaces' locations by a query of their own: joined to the subscriptions, the
    # planner reads the whole workspace table for each chunk (a range on the subscriptions'
    # workspace_id does not carry over to the workspace's id), a cost that grows with the base.
    if workspace_ids is None and workspace_range is None:
        workspace_ids = {row[1] for row in rows}
    locations = {
        ws_id: BilledWorkspace(ws_id, country, region)
        for ws_id, country, region in Workspace.objects.filter(
            _workspace_scope(workspace_ids, workspace_range, field="pk")
        ).values_list("pk", "business_country", "business_region")
    }
    monthly, closed = Interval.MONTHLY, Subscription.EndReason.CLOSED
    by_workspace = defaultdict(list)
    for pk, ws_id, plan_id, interval, paid_from, ended_on, end_reason in rows:
        ended_inside_month = ended_on is not None and ended_on < end
        if interval == monthly and ended_inside_month:
            continue  # K1: its final invoice billed these days
        if end_reason == closed and ended_inside_month:
            continue  # W1: a term ended by a closure bills no further overage
        by_workspace[ws_id].append(
            BilledSubscription(
                pk,
                ws_id,
                plans[plan_id],
                terms[plan_id],
                interval,
                paid_from,
                ended_on,
                end_reason,
                locations[ws_id],
            )
        )

    terms_by_ws = {ws_id: subs_[-1].terms for ws_id, subs_ in by_workspace.items()}
    overage = _unbilled_overage(scope, month, terms_by_ws)
    drafts = []
    kind = Invoice.Kind.MONTHLY
    base_charges = {}  # most subscriptions of a month share one: the full month's
    for ws_id, ws_subs in by_workspace.items():
        for sub in ws_subs:
            charges = []
            paid_days = overlap_days(sub.paid_from, sub.ended_on, month, end)
            if sub.interval == monthly:
                key = (id(sub.terms), paid_days)  # the rows of `terms`, one instance each
                if key not in base_charges:
                    base_charges[key] = _base_charge(sub.terms, paid_days, month)
                charges.append(base_charges[key])
            over = overage[ws_id] if sub is ws_subs[-1] else 0
            if over:
                charges.append(_overage_charge(sub.terms, over, month))
            if not charges:
                continue
            period_start = sub.paid_from if sub.paid_from > month else month
            period_end = end if sub.ended_on is None or sub.ended_on > end else sub.ended_on
            drafts.append(InvoiceDraft(sub, kind, period_start, period_end, end, charges, over))
    return drafts


def final_draft(sub: Subscription, day: date) -> InvoiceDraft | None:
    """K1: the final invoice of a monthly subscription ended on `day`: the month's paid days
    before `day`, plus overage on the MTUs reported so far (none in a month with trial days)."""
    month = month_start(day)
    paid_days = overlap_days(sub.paid_from, day, month, day)
    if paid_days == 0:
        return None
    scope = Q(workspace_id=sub.workspace_id)
    terms = PlanTerms.objects.of(month, plan_id=sub.plan_id)
    over = _unbilled_overage(scope, month, {sub.workspace_id: terms})
    charges = [_base_charge(terms, paid_days, month)]
    if over[sub.workspace_id]:
        charges.append(_overage_charge(terms, over[sub.workspace_id], month))
    return InvoiceDraft(
        subscription=sub,
        kind=Invoice.Kind.FINAL,
        period_start=max(sub.paid_from, month),
        period_end=day,
        issue_date=day,
        charges=charges,
        overage_mtus=over[sub.workspace_id],
    )


def annual_draft(sub: Subscription, term_start: date) -> InvoiceDraft:
    """K2: the prepaid annual invoice, dated the term's first day, at its terms then."""
    term_end = add_year(term_start)
    price = PlanTerms.objects.of(term_start, plan_id=sub.plan_id).annual_price
    return InvoiceDraft(
        subscription=sub,
        kind=Invoice.Kind.ANNUAL,
        period_start=term_start,
        period_end=term_end,
        issue_date=term_start,
        charges=[Charge("base", f"Team annual, {period_text(term_start, term_end)}", price, 1)],
    )


# What a draft gets without a discount or credit: one instance for the thousands that do.
NO_ADJUSTMENT = Adjustment()


def _draft_invoice(d: InvoiceDraft) -> DraftInvoice:
    return DraftInvoice(
        workspace_id=d.subscription.workspace_id,
        kind=d.kind,
        interval=d.subscription.interval,
        issue_date=d.issue_date,
        period_start=d.period_start,
    )


def _adjustments(drafts: list[InvoiceDraft], set_aside) -> list:
    """The adjustments of `drafts` in one batch; when that fails and failures are set aside
    (I6), workspace by workspace, so one bad workspace costs only its own invoices."""
    hook = invoice_adjustments()
    try:
        with transaction.atomic():
            return hook.adjustments_for([_draft_invoice(d) for d in drafts])
    except Exception:
        if set_aside is None:
            raise
    by_workspace = defaultdict(list)
    for index, draft in enumerate(drafts):
        by_workspace[draft.subscription.workspace_id].append(index)
    adjustments = [None] * len(drafts)
    for indexes in by_workspace.values():
        try:
            with transaction.atomic():
                found = hook.adjustments_for([_draft_invoice(drafts[i]) for i in indexes])
        except Exception as exc:
            found = [exc] * len(indexes)
        for index, adjustment in zip(indexes, found, strict=True):
            adjustments[index] = adjustment
    return adjustments


def _check_fits(amounts: PricedInvoice):
    """I6: an amount beyond what an invoice row holds would fail the whole write."""
    # The pricing core keeps discount and credits within the subtotal and tax within the total:
    # when those two fit, every amount does.
    if 0 <= amounts.subtotal <= MAX_INVOICE_AMOUNT and 0 <= amounts.total <= MAX_INVOICE_AMOUNT:
        return
    for label in ("subtotal", "discount", "credits", "tax", "total"):
        value = getattr(amounts, label)
        if abs(value) > MAX_INVOICE_AMOUNT:
            raise BillingError(
                f"the invoice's {label} of ${value:,} is beyond what an invoice can hold "
                f"(${MAX_INVOICE_AMOUNT:,}); check the usage reported for the month"
            )


def _price(drafts: list[InvoiceDraft], tax_table: TaxTable, set_aside=None):
    """Price each draft with its discount, credit and tax: (draft, amounts, tax, adjustment).
    With `set_aside(draft, error)`, a draft that cannot be priced is handed to it and left out
    (I6); without, the error propagates."""
    adjustments = _adjustments(drafts, set_aside)
    credit_used = defaultdict(Decimal)  # drafts of one workspace share its balance
    for draft, adjustment in zip(drafts, adjustments, strict=True):
        workspace_id = draft.subscription.workspace_id
        try:
            if isinstance(adjustment, Exception):
                raise adjustment
            adjustment = adjustment or NO_ADJUSTMENT
            credit_available = adjustment.credit_available
            if credit_available:
                credit_available -= credit_used[workspace_id]
            tax = tax_table.decide(draft.subscription.workspace, draft.issue_date)
            priced = price_invoice(
                draft.charges,
                discount=adjustment.discount,
                credit_available=credit_available,
                tax_rate=tax.rate,
                tax_description=tax.name,
            )
            _check_fits(priced)
        except Exception as exc:
            if set_aside is None:
                raise
            set_aside(draft, exc)
            continue
        if priced.credits:
            credit_used[workspace_id] += priced.credits
        yield draft, priced, tax, adjustment


def preview(drafts: list[InvoiceDraft]) -> list[InvoicePreview]:
    workspaces = Workspace.objects.in_bulk({d.subscription.workspace_id for d in drafts})
    return [
        InvoicePreview(
            number="",
            workspace=workspaces[draft.subscription.workspace_id],
            kind=draft.kind,
            period_start=draft.period_start,
            period_end=draft.period_end,
            issue_date=draft.issue_date,
            status=Invoice.Status.ISSUED,
            currency="USD",
            subtotal=priced.subtotal,
            discount=priced.discount,
            credits=priced.credits,
            tax=priced.tax,
            total=priced.total,
            tax_country=tax.country,
            tax_region=tax.region,
            tax_note=tax.note,
            plan_code=draft.subscription.plan.code,
            interval=draft.subscription.interval,
            lines=priced.lines,
        )
        for draft, priced, tax, _ in _price(drafts, TaxTable())
    ]


# FC1: a forecast issues invoices in a transaction it always rolls back. They take placeholder
# numbers from here instead of the InvoiceSequence row, so a forecast never holds the row lock a
# month close needs to number its invoices (and never makes a gap: it never touches the row).
_placeholder_numbers: ContextVar[list | None] = ContextVar("placeholder_numbers", default=None)
_placeholders_wait: ContextVar[bool] = ContextVar("placeholders_wait", default=False)
PLACEHOLDER_PREFIX = "FORECAST"


@contextmanager
def placeholder_numbers(*, wait_for_the_clock: bool = False):
    """Inside the block, `issue` numbers invoices FORECAST-YYYY-NNNNNN without touching the
    invoice sequence (only for invoices that are rolled back). A forecast looks ahead of the
    clock; `wait_for_the_clock` makes `issue` refuse as it refuses a real invoice the clock
    owes another's first (`_refuse_numbers_ahead_of_the_clock`): for a dry run that must
    refuse what the change it tries refuses (a campaign's catch-up, as `redeem_coupon`'s)."""
    token = _placeholder_numbers.set([0])
    wait = _placeholders_wait.set(wait_for_the_clock)
    try:
        yield
    finally:
        _placeholders_wait.reset(wait)
        _placeholder_numbers.reset(token)


# I1, D4: the invoices issued inside `clock_event()` are the billing clock's own (a trial's or
# a term's end, applied by the clock or ahead of it for a dated change): numbered in the clock's
# order, not ahead of a change of the same day.
_clock_event: ContextVar[bool] = ContextVar("clock_event", default=False)


@contextmanager
def clock_event():
    token = _clock_event.set(True)
    try:
        yield
    finally:
        _clock_event.reset(token)


def _reserve_numbers(year: int, count: int) -> int:
    """I1: the first of `count` consecutive numbers for `year`. The sequence row stays locked
    until the issuing transaction commits, so numbers are gapless even with many workers."""
    InvoiceSequence.objects.get_or_create(year=year)
    InvoiceSequence.objects.filter(year=year).update(last_number=F("last_number") + count)
    last = InvoiceSequence.objects.get(year=year).last_number
    return last - count + 1


class IssuedInvoice(NamedTuple):
    """An invoice as `issue` wrote it, for the adjustments hook (`record_applied`)."""

    pk: int
    number: str
    workspace_id: int
    issue_date: date
    discount: Decimal
    credits: Decimal


# What `issue` writes of each invoice, in this order; every other column takes its default.
ISSUED_FIELDS = (
    "number",
    "workspace_id",
    "subscription_id",
    "kind",
    "period_start",
    "period_end",
    "issue_date",
    "subtotal",
    "discount",
    "credits",
    "tax",
    "total",
    "plan_code",
    "interval",
    "tax_country",
    "tax_region",
    "tax_rate",
    "tax_note",
    "overage_mtus",
)


class IssuedInvoices(Sequence):
    """The invoices `issue` wrote, in issue order. Each becomes an `Invoice` instance (no query)
    when a caller looks at it; a month close only counts them."""

    def __init__(self, attnames: tuple[str, ...], rows: list[tuple]):
        self._attnames, self._rows, self._built = attnames, rows, {}

    def __len__(self):
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        if index not in self._built:
            invoice = Invoice(**dict(zip(self._attnames, self._rows[index], strict=True)))
            invoice._state.adding, invoice._state.db = False, connection.alias
            self._built[index] = invoice
        return self._built[index]

    def __eq__(self, other):
        return isinstance(other, Sequence) and list(self) == list(other)

    @property
    def ids(self) -> list[int]:
        return [row[0] for row in self._rows]  # "id" comes first

    def __repr__(self):
        return f"<IssuedInvoices: {len(self)}>"


def _refuse_numbers_ahead_of_the_clock(day: date, workspace_id: int) -> None:
    """I1, D4: numbers follow issue dates, daily or catch-up alike. A dated change may issue an
    invoice while the clock lags (a cancellation's final invoice, or the trial and term ends of
    its workspace that the clock has not reached); it waits when the clock still owes another
    workspace's invoice that a daily clock would have numbered first: an annual trial's end or
    an annual term's renewal dated before it, or, for a trial or term end (`clock_event`), dated
    the same day for a workspace the clock takes first (it goes by date, then workspace).

    A change dated the day after the clock's last comes before that day's trial and term ends
    (D1), and a month close's invoices are the clock's own; before the clock's first day
    nothing is owed (as `clock.refuse_processed` refuses nothing then: history being entered).
    Nor is anything owed by a workspace whose region tax depends on is no code (X1): the clock
    skips its invoices until the region is corrected."""
    last = last_processed_day()
    event = _clock_event.get()
    if last is None or day <= last or (day == last + timedelta(days=1) and not event):
        return

    def first(field: str, subscriptions):
        before = Q(**{f"{field}__lt": day})
        if event:
            before |= Q(**{field: day, "workspace_id__lt": workspace_id})
        return (
            subscriptions.filter(before)
            .order_by(field, "workspace_id")
            .values_list(field, "workspace__name")
            .first()
        )

    annual = Subscription.objects.filter(ended_on=None, interval=Interval.ANNUAL).exclude(
        region_not_a_code("workspace__")
    )
    owed = [
        row
        for row in (
            first("trial_end", annual.filter(trial_outcome=Subscription.TrialOutcome.RUNNING)),
            first(
                "term_end",
                annual.filter(cancel_at_term_end=False, switch_to_monthly_at_term_end=False),
            ),
        )
        if row
    ]
    if owed:
        due, name = min(owed)
        raise ClockBehind(
            f"An invoice dated {on(day)} must wait: the billing clock has yet to bill "
            f"{name}'s annual Team due on {on(due)}, and invoice numbers follow issue "
            f"dates. Run the clock through {on(day - timedelta(days=1))} first."
        )


def issue(
    drafts: list[InvoiceDraft],
    tax_table: TaxTable | None = None,
    set_aside=None,
    *,
    kept_in_history: bool = True,
) -> Sequence[Invoice]:
    """I1, I4: write the invoices of `drafts` that do not exist yet, numbered in issue order.
    I6: with `set_aside(draft, error)`, a draft that cannot be made is handed to it and every
    other is issued.

    R4: each invoice's first version is kept in its history, by whoever made the change that
    issued it (a cancellation, a closure, the clock's trial or term end) and why; except the
    month close's (`kept_in_history=False`: thousands per chunk, issue 12), whose invoice gets
    its first version when it is first changed (`audit.keep_first_version`).

    Callers hold the workspaces' row locks, so no other transaction is issuing the same ones.
    Returns the issued invoices (`IssuedInvoices`).
    """
    if not drafts:
        return []
    assert transaction.get_connection().in_atomic_block, "issue() must run in a transaction"
    workspace_ids = [d.subscription.workspace_id for d in drafts]
    existing = set(
        Invoice.objects.filter(
            _workspace_scope(workspace_range=(min(workspace_ids), max(workspace_ids))),
            kind__in={d.kind for d in drafts},
            period_start__in={d.period_start for d in drafts},
        ).values_list("subscription_id", "kind", "period_start")
    )
    drafts = sorted(
        (d for d in drafts if d.key not in existing),
        key=lambda d: (d.issue_date, d.subscription.workspace_id, d.kind, d.period_start),
    )
    if not drafts:
        return []
    if _placeholder_numbers.get() is None or _placeholders_wait.get():
        _refuse_numbers_ahead_of_the_clock(
            drafts[0].issue_date, drafts[0].subscription.workspace_id
        )
    priced = list(_price(drafts, tax_table or TaxTable(), set_aside))
    if not priced:
        return []
    drafts = [draft for draft, *_ in priced]
    lines = [amounts.lines for _, amounts, _, _ in priced]
    postgres = connection.vendor == "postgresql"
    if postgres:
        # Ids and lines before the numbers: from the moment numbers are reserved, every other
        # transaction issuing invoices (another chunk's worker) waits for this one's commit,
        # so what needs no number is written first. The lines' key to their invoice is
        # checked at commit, when the invoices are there.
        ids = _new_invoice_ids(len(priced))
        _copy_lines(ids, lines)

    next_number = {}
    placeholders = _placeholder_numbers.get()
    for year in sorted({d.issue_date.year for d in drafts}):
        count = sum(1 for d in drafts if d.issue_date.year == year)
        if placeholders is not None:
            next_number[year] = placeholders[0] + 1
            placeholders[0] += count
        else:
            next_number[year] = _reserve_numbers(year, count)

    prefix = "INV" if placeholders is None else PLACEHOLDER_PREFIX
    rows = []
    for draft, amounts, tax, _ in priced:
        year = draft.issue_date.year
        # I1: six digits up to 999,999, then a seventh (INV-2026-1000000): never wrapped or
        # refused; lists order numbers as numbers (`models.number_order`), not as text.
        number = f"{prefix}-{year}-{next_number[year]:06d}"
        next_number[year] += 1
        sub = draft.subscription
        rows.append(
            (
                number,
                sub.workspace_id,
                sub.pk,
                draft.kind,
                draft.period_start,
                draft.period_end,
                draft.issue_date,
                amounts.subtotal,
                amounts.discount,
                amounts.credits,
                amounts.tax,
                amounts.total,
                sub.plan.code,
                sub.interval,
                tax.country,
                tax.region,
                tax.rate,
                tax.note,
                draft.overage_mtus,
            )
        )
    if postgres:
        issued = _copy_invoices(ids, rows)
    else:
        issued = _create_invoices(rows, lines)
    invoice_adjustments().record_applied(
        [
            (IssuedInvoice(pk, row[0], row[1], row[6], row[8], row[9]), adjustment)
            for pk, row, (*_, adjustment) in zip(issued.ids, rows, priced, strict=True)
            if adjustment is not NO_ADJUSTMENT  # most invoices: nothing to record
        ]
    )
    if kept_in_history:
        by, _ = acting()
        why = with_reason("Issued", the_why())
        # Dated when written, as `keep_first_version` dates the close's (`created_at`).
        when = issued[0].created_at
        record_history(Invoice, [(pk, why) for pk in issued.ids], by=by, when=when, kind="+")
    return issued


def _numbered(lines) -> list[tuple]:
    """An invoice's lines as rows of (position from 1, kind, description, quantity, amount)."""
    return [
        (p, line.kind, line.description, line.quantity, line.amount)
        for p, line in enumerate(lines, 1)
    ]


def _other_columns(now) -> tuple[tuple[str, ...], tuple]:
    """The invoice fields `issue` does not compute and their values: defaults, and the time."""
    others = [f for f in Invoice._meta.concrete_fields if f.attname not in {"id", *ISSUED_FIELDS}]
    values = tuple(now if getattr(f, "auto_now_add", False) else f.get_default() for f in others)
    return tuple(f.attname for f in others), values


def _new_invoice_ids(count: int) -> list[int]:
    """PostgreSQL: `count` ids from the invoice table's sequence, taken before the rows are
    written so their lines can be written first."""
    with connection.cursor() as cursor:
        # The sequence is looked up once, in a subquery: as nextval's argument it would be
        # looked up for every id (a chunk's 5,000 ids took 15 ms instead of 2).
        cursor.execute(
            "select nextval((select pg_get_serial_sequence(%s, 'id')::regclass)) "
            "from generate_series(1, %s)",
            [Invoice._meta.db_table, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _copy_lines(ids: list[int], lines_per_invoice: list[list]):
    """PostgreSQL: the lines of the invoices that will have `ids`, with COPY."""
    with connection.cursor() as cursor:
        copy_rows(
            cursor,
            InvoiceLine,
            ("invoice_id", "position", "kind", "description", "quantity", "amount"),
            (
                (pk, *numbered)
                for pk, lines in zip(ids, lines_per_invoice, strict=True)
                for numbered in _numbered(lines)
            ),
        )


def _copy_invoices(ids: list[int], rows: list[tuple]) -> IssuedInvoices:
    """PostgreSQL: write with COPY, rows as tuples (RECIPES: COPY 120k rows/s against
    bulk_create's 18k, and no model instance per row)."""
    other_names, other_values = _other_columns(timezone.now())
    attnames = ("id", *ISSUED_FIELDS, *other_names)
    rows = [(pk, *row, *other_values) for pk, row in zip(ids, rows, strict=True)]
    with connection.cursor() as cursor:
        copy_rows(cursor, Invoice, attnames, rows)
    return IssuedInvoices(attnames, rows)


def _create_invoices(rows: list[tuple], lines_per_invoice: list[list]) -> IssuedInvoices:
    """Other databases (SQLite, the laptop default): the same rows through the ORM."""
    other_names, other_values = _other_columns(timezone.now())
    attnames = (*ISSUED_FIELDS, *other_names)
    invoices = Invoice.objects.bulk_create(
        Invoice(**dict(zip(attnames, (*row, *other_values), strict=True))) for row in rows
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice_id=invoice.pk, position=p, kind=k, description=d, quantity=q, amount=a)
        for invoice, lines in zip(invoices, lines_per_invoice, strict=True)
        for p, k, d, q, a in _numbered(lines)
    )
    issued = IssuedInvoices(
        ("id", *attnames),
        [(i.pk, *row, *other_values) for i, row in zip(invoices, rows, strict=True)],
    )
    issued._built = dict(enumerate(invoices))
    return issued
