"""Issuing invoices (SPEC M, K, I): what each invoice charges, and issuing it exactly once.

Drafts say what to charge; `issue` prices them with the pure core (discount and credit through
the hook, tax from the table), numbers them and writes them in bulk. A draft whose invoice
already exists (the unique constraint's key) is skipped, so a repeated close issues nothing.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from billing.errors import BillingError
from billing.hooks import Adjustment, DraftInvoice, invoice_adjustments
from billing.models import (
    Interval,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    Plan,
    Subscription,
    Usage,
)
from billing.months import add_year, days_in_month, month_start, next_month, overlap_days
from billing.pricing import Charge, PricedInvoice, overage_amount, price_invoice, prorated_base
from billing.tax import TaxTable

# The largest amount an invoice's money columns hold (12 digits, 2 of them cents).
MAX_INVOICE_AMOUNT = Decimal("9999999999.99")


@dataclass
class InvoiceDraft:
    subscription: Subscription
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


def _month_label(month: date) -> str:
    return f"{month:%B %Y}"


def _base_charge(plan: Plan, paid_days: int, month: date) -> Charge:
    dim = days_in_month(month)
    amount = prorated_base(plan.monthly_price, paid_days, dim)
    if paid_days >= dim:
        description = f"Team monthly, {_month_label(month)}"
    else:
        description = f"Team monthly, {_month_label(month)}: {paid_days} of {dim} days"
    return Charge("base", description, amount, paid_days)


def _overage_charge(plan: Plan, mtus: int, month: date) -> Charge:
    return Charge(
        "overage",
        f"Overage, {_month_label(month)}: {mtus:,} MTUs at ${plan.overage_rate}",
        overage_amount(mtus, plan.overage_rate),
        mtus,
    )


def _workspace_scope(workspace_ids=None, workspace_range=None) -> Q:
    """Which workspaces a query covers: a month close chunk's id range (cheap for the planner
    and the driver alike) or a list of ids."""
    if workspace_range is not None:
        first, last = workspace_range
        return Q(workspace_id__gte=first, workspace_id__lte=last)
    if workspace_ids is not None:
        return Q(workspace_id__in=workspace_ids)
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


def _unbilled_overage(scope: Q, month: date, plan_by_ws: dict) -> dict[int, int]:
    """M3 and K1: overage MTUs of `month` not already billed by a final invoice."""
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
    for ws_id, plan in plan_by_ws.items():
        if ws_id in trials or not plan.bills_overage:
            result[ws_id] = 0
            continue
        over = max(usage.get(ws_id, 0) - plan.included_mtus, 0)
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
    subs = (
        Subscription.objects.paid_overlapping(month, end).filter(scope).select_related("workspace")
    )
    by_workspace = defaultdict(list)
    for sub in subs.order_by("workspace_id", "paid_from"):
        sub.plan = plans[sub.plan_id]
        ended_inside_month = sub.ended_on is not None and sub.ended_on < end
        if sub.interval == Interval.MONTHLY and ended_inside_month:
            continue  # K1: its final invoice billed these days
        by_workspace[sub.workspace_id].append(sub)

    plan_by_ws = {ws_id: subs_[-1].plan for ws_id, subs_ in by_workspace.items()}
    overage = _unbilled_overage(scope, month, plan_by_ws)
    drafts = []
    for ws_id, ws_subs in by_workspace.items():
        for sub in ws_subs:
            charges = []
            paid_days = overlap_days(sub.paid_from, sub.ended_on, month, end)
            if sub.interval == Interval.MONTHLY:
                charges.append(_base_charge(sub.plan, paid_days, month))
            over = overage[ws_id] if sub is ws_subs[-1] else 0
            if over:
                charges.append(_overage_charge(sub.plan, over, month))
            if not charges:
                continue
            drafts.append(
                InvoiceDraft(
                    subscription=sub,
                    kind=Invoice.Kind.MONTHLY,
                    period_start=max(sub.paid_from, month),
                    period_end=min(sub.ended_on or end, end),
                    issue_date=end,
                    charges=charges,
                    overage_mtus=over,
                )
            )
    return drafts


def final_draft(sub: Subscription, day: date) -> InvoiceDraft | None:
    """K1: the final invoice of a monthly subscription ended on `day`: the month's paid days
    before `day`, plus overage on the MTUs reported so far (none in a month with trial days)."""
    month = month_start(day)
    paid_days = overlap_days(sub.paid_from, day, month, day)
    if paid_days == 0:
        return None
    scope = Q(workspace_id=sub.workspace_id)
    over = _unbilled_overage(scope, month, {sub.workspace_id: sub.plan})
    charges = [_base_charge(sub.plan, paid_days, month)]
    if over[sub.workspace_id]:
        charges.append(_overage_charge(sub.plan, over[sub.workspace_id], month))
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
    """K2: the prepaid annual invoice, dated the term's first day."""
    term_end = add_year(term_start)
    return InvoiceDraft(
        subscription=sub,
        kind=Invoice.Kind.ANNUAL,
        period_start=term_start,
        period_end=term_end,
        issue_date=term_start,
        charges=[
            Charge("base", f"Team annual, {term_start} to {term_end}", sub.plan.annual_price, 1)
        ],
    )


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
            adjustment = adjustment or Adjustment()
            tax = tax_table.decide(draft.subscription.workspace, draft.issue_date)
            priced = price_invoice(
                draft.charges,
                discount=adjustment.discount,
                credit_available=adjustment.credit_available - credit_used[workspace_id],
                tax_rate=tax.rate,
                tax_description=tax.name,
            )
            _check_fits(priced)
        except Exception as exc:
            if set_aside is None:
                raise
            set_aside(draft, exc)
            continue
        credit_used[workspace_id] += priced.credits
        yield draft, priced, tax, adjustment


def preview(drafts: list[InvoiceDraft]) -> list[InvoicePreview]:
    return [
        InvoicePreview(
            number="",
            workspace=draft.subscription.workspace,
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


def _reserve_numbers(year: int, count: int) -> int:
    """I1: the first of `count` consecutive numbers for `year`. The sequence row stays locked
    until the issuing transaction commits, so numbers are gapless even with many workers."""
    InvoiceSequence.objects.get_or_create(year=year)
    InvoiceSequence.objects.filter(year=year).update(last_number=F("last_number") + count)
    last = InvoiceSequence.objects.get(year=year).last_number
    return last - count + 1


def issue(
    drafts: list[InvoiceDraft], tax_table: TaxTable | None = None, set_aside=None
) -> list[Invoice]:
    """I1, I4: write the invoices of `drafts` that do not exist yet, numbered in issue order.
    I6: with `set_aside(draft, error)`, a draft that cannot be made is handed to it and every
    other is issued.

    Callers hold the workspaces' row locks, so no other transaction is issuing the same ones.
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
    priced = list(_price(drafts, tax_table or TaxTable(), set_aside))
    if not priced:
        return []
    drafts = [draft for draft, *_ in priced]

    next_number = {}
    for year in sorted({d.issue_date.year for d in drafts}):
        count = sum(1 for d in drafts if d.issue_date.year == year)
        next_number[year] = _reserve_numbers(year, count)

    invoices = []
    for draft, amounts, tax, _ in priced:
        year = draft.issue_date.year
        number = f"INV-{year}-{next_number[year]:06d}"
        next_number[year] += 1
        invoices.append(_invoice(draft, amounts, tax, number))
    if connection.vendor == "postgresql":
        _copy_invoices(invoices, [amounts.lines for _, amounts, _, _ in priced])
    else:
        Invoice.objects.bulk_create(invoices)
        InvoiceLine.objects.bulk_create(
            InvoiceLine(invoice=invoice, position=p, kind=k, description=d, quantity=q, amount=a)
            for invoice, (_, amounts, _, _) in zip(invoices, priced, strict=True)
            for p, k, d, q, a in _numbered(amounts.lines)
        )
    invoice_adjustments().record_applied(
        [(invoice, adjustment) for invoice, (*_, adjustment) in zip(invoices, priced, strict=True)]
    )
    return invoices


def _numbered(lines):
    return [
        (p, line.kind, line.description, line.quantity, line.amount)
        for p, line in enumerate(lines, 1)
    ]


def _copy_invoices(invoices: list[Invoice], lines_per_invoice: list[list]):
    """PostgreSQL: write with COPY, about ten times faster than bulk_create for a month close
    (RECIPES: 120k rows/s against 18k), with ids taken from the table's sequence first."""
    quote = connection.ops.quote_name
    now = timezone.now()
    fields = list(Invoice._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "select nextval(pg_get_serial_sequence(%s, 'id')) from generate_series(1, %s)",
            [Invoice._meta.db_table, len(invoices)],
        )
        for invoice, (pk,) in zip(invoices, cursor.fetchall(), strict=True):
            invoice.pk, invoice.created_at = pk, now
        columns = ", ".join(quote(f.column) for f in fields)
        with cursor.copy(f"COPY {quote(Invoice._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for invoice in invoices:
                copy.write_row([getattr(invoice, f.attname) for f in fields])
        line_columns = "invoice_id, position, kind, description, quantity, amount"
        with cursor.copy(
            f"COPY {quote(InvoiceLine._meta.db_table)} ({line_columns}) FROM STDIN"
        ) as copy:
            for invoice, lines in zip(invoices, lines_per_invoice, strict=True):
                for row in _numbered(lines):
                    copy.write_row((invoice.pk, *row))


def _invoice(draft: InvoiceDraft, amounts: PricedInvoice, tax, number: str) -> Invoice:
    sub = draft.subscription
    return Invoice(
        number=number,
        workspace_id=sub.workspace_id,
        subscription=sub,
        kind=draft.kind,
        period_start=draft.period_start,
        period_end=draft.period_end,
        issue_date=draft.issue_date,
        subtotal=amounts.subtotal,
        discount=amounts.discount,
        credits=amounts.credits,
        tax=amounts.tax,
        total=amounts.total,
        plan_code=sub.plan.code,
        interval=sub.interval,
        tax_country=tax.country,
        tax_region=tax.region,
        tax_rate=tax.rate,
        tax_note=tax.note,
        overage_mtus=draft.overage_mtus,
    )
