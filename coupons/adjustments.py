"""The coupons' side of billing's invoice hook (`billing.hooks`): the discount of each invoice
about to be issued (C4, C5) and the startup credit it may draw on (CR2), then, in the issuing
transaction, which redemption each invoice used and the ledger draws (CR2).

Batch-shaped: a month close asks for a chunk of 2,000 drafts at once, and the answer costs three
queries (the workspaces' redemptions, the coupons, their grants) however many drafts there are.

Which discount an invoice gets depends only on the redemptions and the invoice's dates, never on
whether the billing clock has ended a coupon yet: a coupon that ran out before the invoice's
date has its follow-up taken into account even when the clock has not written it (it is written
when an invoice uses it, or by the clock's daily step, with the same date). So running the clock
once at the end gives the invoices that running it daily gives.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from billing.bulk_rows import id_in, insert_rows, update_column
from billing.formatting import day, last_day, money
from billing.hooks import Adjustment, DraftInvoice
from billing.models import Interval, Invoice, SetAsideInvoice
from billing.months import month_start, next_month
from billing.pricing import ZERO, Discount
from coupons import selectors
from coupons.errors import CouponError
from coupons.models import Coupon, CreditGrant, CreditLedgerEntry, DiscountApplication, Redemption
from coupons.services import advance_redemptions

# CR2: credits go to invoices of a monthly Team subscription only, of these kinds.
CREDIT_KINDS = (Invoice.Kind.MONTHLY, Invoice.Kind.FINAL)


class RedemptionRow(NamedTuple):
    """A redemption as the invoice rules read it (what `discount_terms` asks of a
    `Redemption`), read as a row: a month close reads thousands."""

    pk: int
    workspace_id: int
    coupon_id: int
    redeemed_on: date
    runs_out_on: date | None
    ended_on: date | None
    status: str


class GrantRow(NamedTuple):
    """A credit grant's balance and validity, read as a row."""

    pk: int
    workspace_id: int
    remaining: Decimal
    valid_from: date
    valid_until: date

    def valid_on(self, day) -> bool:
        return self.valid_from <= day < self.valid_until


@dataclass(frozen=True)
class DiscountTerm:
    """A discount redemption as the invoice rules see it; `redemption_id` is None for a
    follow-up that the billing clock has not written yet."""

    workspace_id: int
    coupon: Coupon
    redeemed_on: date
    redemption_id: int | None
    runs_out_on: date | None
    removed_on: date | None = None
    # Whether running out still has to apply the follow-up (an ended one had it decided).
    follow_up_pending: bool = True

    @property
    def started_month(self) -> date:
        return month_start(self.redeemed_on)

    def applies_to(self, draft: DraftInvoice) -> bool:
        """C5 for one invoice: `once` → the first invoice issued on or after the redemption
        date; `repeating` N → invoices for the N billing months from the redemption's month;
        `forever` → every billing month from it, until removed. Only the intervals the coupon
        covers. A removed discount is not on invoices issued from its removal on, but for a
        billing month held with it that had ended before the removal: the month close, dated
        the 1st, comes after the changes of that day (D1), and a removal or a closure (W1) that
        day must not take the month just ended off its discount (a cancellation that day
        never did: it leaves the discount running)."""
        coupon = self.coupon
        if not coupon.covers(draft.interval):
            return False
        billing_month = month_start(draft.period_start)
        removed = self.removed_on
        if removed is not None and draft.issue_date >= removed:
            held_through_its_month = self.redeemed_on < next_month(billing_month) <= removed
            if not held_through_its_month:
                return False
        if coupon.duration == Coupon.Duration.ONCE:
            return self.runs_out_on is None and draft.issue_date >= self.redeemed_on
        if coupon.duration == Coupon.Duration.REPEATING:
            return self.started_month <= billing_month < self.runs_out_on
        return billing_month >= self.started_month

    def owed_to(self, issue_date: date) -> bool:
        """C5: a `once` coupon belongs to an invoice dated `issue_date` on or after its day
        (one a close set aside, issued later than invoices dated after it)."""
        return (
            self.coupon.duration == Coupon.Duration.ONCE
            and self.runs_out_on is None
            and self.redeemed_on <= issue_date
        )

    def discount(self) -> Discount:
        coupon = self.coupon
        description = f"Coupon {coupon.code}: {coupon.value_display}"
        if coupon.percent_off is not None:
            return Discount(description, percent=coupon.percent_off)
        return Discount(description, amount=coupon.amount_off)


@dataclass(frozen=True)
class DiscountReference:
    """What `record_applied` needs to know about the discount an invoice got."""

    workspace_id: int
    coupon_id: int
    redemption_id: int | None
    once: bool


def discount_terms(
    redemptions: list[Redemption], coupons: dict[int, Coupon], issue_date: date, used: dict
) -> list[DiscountTerm]:
    """The workspace's discounts as of an invoice dated `issue_date`: its redemptions, plus the
    follow-ups of those that ran out by then which the clock has not written yet (C5). `used`
    maps a `once` coupon used earlier in this batch to that invoice's date."""
    received = {r.coupon_id for r in redemptions}
    terms = []
    for r in redemptions:
        coupon = coupons[r.coupon_id]
        if coupon.is_credit:
            continue
        terms.append(
            DiscountTerm(
                workspace_id=r.workspace_id,
                coupon=coupon,
                redeemed_on=r.redeemed_on,
                redemption_id=r.pk,
                runs_out_on=r.runs_out_on or used.get(r.coupon_id),
                removed_on=r.ended_on if r.status == Redemption.Status.REMOVED else None,
                follow_up_pending=r.status == Redemption.Status.ACTIVE,
            )
        )
    index = 0
    while index < len(terms):
        term = terms[index]
        index += 1
        ran_out = term.runs_out_on
        if not term.follow_up_pending or ran_out is None or ran_out > issue_date:
            continue
        follow = coupons.get(term.coupon.follow_up_id)
        if follow is None or not (follow.active_on(ran_out) and follow.can_follow_up):
            continue
        if follow.pk in received:
            continue
        received.add(follow.pk)
        terms.append(
            DiscountTerm(
                workspace_id=term.workspace_id,
                coupon=follow,
                redeemed_on=ran_out,
                redemption_id=None,
                runs_out_on=used.get(follow.pk) or follow.runs_out_on(ran_out),
            )
        )
    return terms


def discount_for(terms: list[DiscountTerm], draft: DraftInvoice) -> DiscountTerm | None:
    """C2: one discount at a time; should two ever overlap, the earlier redemption wins. One
    removed, kept only for the month it was held through (`applies_to`), yields to the one
    redeemed in its place that day: a `once` coupon's is the first invoice from its day (C5)."""
    applicable = [t for t in terms if t.applies_to(draft)]
    if not applicable:
        return None
    return min(
        applicable, key=lambda t: (t.removed_on is not None, t.redeemed_on, t.redemption_id or 0)
    )


def _takes_credit(draft: DraftInvoice) -> bool:
    """CR2: every invoice of a monthly Team subscription, never an annual term's."""
    return draft.interval == Interval.MONTHLY and draft.kind in CREDIT_KINDS


def _locking(queryset):
    """Inside the issuing transaction, lock what the invoices will consume (a `once` coupon,
    credit balances) so a concurrent issue for the same workspace waits; a preview (outside
    a transaction) only reads."""
    if transaction.get_connection().in_atomic_block:
        return queryset.select_for_update()
    return queryset


def _set_aside_invoice_dates(redemptions: dict, coupons: dict) -> dict[int, date]:
    """I6, C5: for each workspace with a `once` coupon not used yet, the issue date of its
    earliest invoice a close has set aside: that invoice keeps the coupon, though an invoice
    the clock issues meanwhile (an annual renewal) comes first. One query, and only when such
    a coupon is among `redemptions`."""
    waiting_once = [
        ws
        for ws, rows in redemptions.items()
        if any(
            r.runs_out_on is None and coupons[r.coupon_id].duration == Coupon.Duration.ONCE
            for r in rows
        )
    ]
    if not waiting_once:
        return {}
    owed = {}
    for ws, month in (
        SetAsideInvoice.objects.filter(id_in("workspace_id", waiting_once), resolved_on=None)
        .order_by("close__month")
        .values_list("workspace_id", "close__month")
    ):
        owed.setdefault(ws, next_month(month))  # a close's invoices are dated the next 1st
    return owed


class CouponAdjustments:
    """Registered with `billing.hooks.register_invoice_adjustments` in `CouponsConfig.ready`."""

    def adjustments_for(self, drafts: list[DraftInvoice]) -> list[Adjustment | None]:
        if not drafts:
            return []
        workspace_ids = sorted({d.workspace_id for d in drafts})
        redemptions = defaultdict(list)
        rows = Redemption.objects.filter(id_in("workspace_id", workspace_ids)).order_by(
            "workspace_id", "redeemed_on", "id"
        )
        for row in _locking(rows).values_list(*RedemptionRow._fields):
            redemptions[row[1]].append(RedemptionRow(*row))
        coupons = Coupon.objects.in_bulk() if redemptions else {}
        owed_first = _set_aside_invoice_dates(redemptions, coupons)
        grants = self._grants([d for d in drafts if _takes_credit(d)])
        discounts = {}  # coupon id → its Discount: thousands of invoices share a few coupons

        used = defaultdict(dict)  # workspace → {once coupon id: date of the invoice it went to}
        result = []
        for draft in drafts:
            ws = draft.workspace_id
            term = None
            # `get`, not the defaultdicts' []: most workspaces have neither, and a chunk's
            # thousands of empty lists would cost more than the lookups.
            if own := redemptions.get(ws):
                terms = discount_terms(own, coupons, draft.issue_date, used[ws])
                if (owed := owed_first.get(ws)) and owed < draft.issue_date:
                    terms = [t for t in terms if not t.owed_to(owed)]
                term = discount_for(terms, draft)
            credit = ZERO
            if (own_grants := grants.get(ws)) and _takes_credit(draft):
                credit = sum(
                    (g.remaining for g in own_grants if g.valid_on(draft.issue_date)), ZERO
                )
            if term is None and not credit:
                result.append(None)
                continue
            once = term is not None and term.coupon.duration == Coupon.Duration.ONCE
            if once:
                used[ws][term.coupon.pk] = draft.issue_date
            if term is not None and term.coupon.pk not in discounts:
                discounts[term.coupon.pk] = term.discount()
            result.append(
                Adjustment(
                    discount=discounts[term.coupon.pk] if term else None,
                    credit_available=credit,
                    reference=DiscountReference(ws, term.coupon.pk, term.redemption_id, once)
                    if term
                    else None,
                )
            )
        return result

    def _grants(self, drafts: list[DraftInvoice]) -> dict[int, list[GrantRow]]:
        by_workspace = defaultdict(list)
        if not drafts:
            return by_workspace
        days = [d.issue_date for d in drafts]
        rows = CreditGrant.objects.filter(
            id_in("workspace_id", {d.workspace_id for d in drafts}),
            remaining__gt=0,
            valid_from__lte=max(days),
            valid_until__gt=min(days),
        ).order_by("workspace_id", "valid_until", "id")
        for row in _locking(rows).values_list(*GrantRow._fields):
            by_workspace[row[1]].append(GrantRow(*row))
        return by_workspace

    def record_applied(self, applied: list[tuple[object, Adjustment]]) -> None:
        """In the issuing transaction: which redemption each discounted invoice used (a `once`
        coupon is then used up) and the ledger draws for the credits each invoice took. Each
        invoice is an `Invoice` or billing's `IssuedInvoice` row (pk, number, workspace_id,
        issue_date, discount, credits)."""
        # C5: a `once` coupon is used on its first invoice even where it takes 0.00 off (0.01 %
        # of 46.45): otherwise it moved on and took a cent off the next one.
        discounted = [
            (invoice, reference)
            for invoice, adjustment in applied
            if isinstance(reference := adjustment.reference, DiscountReference)
            and (invoice.discount > 0 or reference.once)
        ]
        self._record_discounts(discounted)
        draw_credits([invoice for invoice, _ in applied if invoice.credits > 0])

    def _record_discounts(self, discounted):
        if not discounted:
            return
        written = [(i, ref) for i, ref in discounted if ref.redemption_id is not None]
        now = timezone.now()
        insert_rows(
            DiscountApplication,
            ("invoice_id", "redemption_id", "amount", "created_at"),
            ((i.pk, ref.redemption_id, i.discount, now) for i, ref in written if i.discount > 0),
        )
        _use_up([(i, ref.redemption_id) for i, ref in written if ref.once])
        # Rare: a follow-up the clock has not written yet (it ran late). Write it as the clock
        # would have, dated the day its predecessor ran out, then record its use.
        pending = [(i, ref) for i, ref in discounted if ref.redemption_id is None]
        for invoice, ref in sorted(pending, key=lambda p: (p[0].issue_date, p[0].pk)):
            advance_redemptions(as_of=invoice.issue_date, workspace_ids=[ref.workspace_id])
            redemption = Redemption.objects.get(
                workspace_id=ref.workspace_id, coupon_id=ref.coupon_id
            )
            if invoice.discount > 0:
                DiscountApplication.objects.create(
                    invoice_id=invoice.pk, redemption=redemption, amount=invoice.discount
                )
            if ref.once:
                _use_up([(invoice, redemption.pk)])

    def void_effects(self, invoice, as_of: date) -> list[str]:
        return [sentence for _, _, sentence in _credit_given_back(invoice, as_of)]

    def record_void(self, invoice, as_of: date) -> None:
        """I3, CR2: each draw of the voided invoice goes back to its grant, if the grant is
        still valid on the void's day (one lapsed or ended meanwhile keeps nothing: its year's
        unused credit lapsed already, CR3, W1). A `once` coupon the invoice used stays used."""
        given_back = _credit_given_back(invoice, as_of, lock=True)
        insert_rows(
            CreditLedgerEntry,
            ("grant_id", "invoice_id", "kind", "amount", "on", "created_at"),
            (
                (grant.pk, invoice.pk, CreditLedgerEntry.Kind.RETURN, amount, as_of, timezone.now())
                for grant, amount, _ in given_back
                if amount
            ),
        )
        update_column(
            CreditGrant,
            "remaining",
            {grant.pk: grant.remaining + amount for grant, amount, _ in given_back if amount},
        )

    def credit_balance(self, workspace_id: int, as_of: date) -> Decimal:
        return selectors.credit_balance(workspace_id, as_of)

    def program_member(self, workspace_id: int, as_of: date) -> bool:
        return selectors.program_member(workspace_id, as_of)


def _use_up(uses: list[tuple[object, int]]):
    """C5: a `once` coupon runs out on the date of the invoice it went to."""
    if not uses:
        return
    redemptions = Redemption.objects.in_bulk([redemption_id for _, redemption_id in uses])
    changed = []
    for invoice, redemption_id in uses:
        redemption = redemptions[redemption_id]
        if redemption.runs_out_on is None:
            redemption.runs_out_on = invoice.issue_date
            redemption._change_reason = f"Used on invoice {invoice.number}"
            changed.append(redemption)
    bulk_update_with_history(changed, Redemption, ["runs_out_on"], batch_size=2_000)


def _credit_given_back(invoice, as_of: date, *, lock: bool = False):
    """(grant, amount given back, sentence) for each grant the invoice drew on: the draw if the
    grant is valid on `as_of`, else 0.00."""
    draws = CreditLedgerEntry.objects.filter(
        invoice_id=invoice.pk, kind=CreditLedgerEntry.Kind.DRAW
    )
    grants = CreditGrant.objects.filter(pk__in=draws.values("grant_id")).order_by("valid_until")
    grants = grants.select_for_update() if lock else grants
    drawn = dict(draws.values_list("grant_id", "amount"))
    valid = set(
        CreditGrant.objects.valid_on(as_of).filter(pk__in=drawn).values_list("pk", flat=True)
    )
    result = []
    for grant in grants:
        amount = -drawn[grant.pk]
        if grant.pk in valid:
            sentence = (
                f"{money(amount)} of startup credit goes back to its year-{grant.year} grant, "
                f"valid to {last_day(grant.valid_until)} (CR2)."
            )
            result.append((grant, amount, sentence))
        else:
            ended = (
                f"it lapsed on {day(grant.lapsed_on)}"
                if grant.lapsed_on
                else f"it was valid to {last_day(grant.valid_until)}"
            )
            sentence = (
                f"The {money(amount)} of startup credit it drew from the year-{grant.year} grant "
                f"is not given back: {ended} (CR3)."
            )
            result.append((grant, ZERO, sentence))
    return result


def draw_credits(invoices: list):
    """CR2: each invoice's credits are drawn from the workspace's grants valid on its issue
    date, earliest-expiring first; one ledger entry per grant drawn. The grants are locked, and
    a balance never goes below zero (a constraint too): an invoice that would need more than
    is left is refused, and its issuing transaction with it. Set-based: the grants are read as
    rows, the draws written in one go and the balances moved in one statement."""
    if not invoices:
        return
    days = [i.issue_date for i in invoices]
    grants = defaultdict(list)
    rows = (
        CreditGrant.objects.select_for_update()
        .filter(
            id_in("workspace_id", {i.workspace_id for i in invoices}),
            remaining__gt=0,
            valid_from__lte=max(days),
            valid_until__gt=min(days),
        )
        .order_by("workspace_id", "valid_until", "id")
        .values_list(*GrantRow._fields)
    )
    for row in rows:
        grants[row[1]].append(GrantRow(*row))
    remaining = {grant.pk: grant.remaining for found in grants.values() for grant in found}
    entries, touched = [], set()
    now = timezone.now()
    for invoice in sorted(invoices, key=lambda i: (i.issue_date, i.pk)):
        need = invoice.credits
        for grant in grants[invoice.workspace_id]:
            if need <= 0:
                break
            if not grant.valid_on(invoice.issue_date) or remaining[grant.pk] <= 0:
                continue
            take = min(need, remaining[grant.pk])
            remaining[grant.pk] -= take
            need -= take
            touched.add(grant.pk)
            entries.append(
                (grant.pk, invoice.pk, CreditLedgerEntry.Kind.DRAW, -take, invoice.issue_date, now)
            )
        if need > 0:
            raise CouponError(
                f"Invoice {invoice.number} takes {invoice.credits} of startup credit but only "
                f"{invoice.credits - need} is left on the workspace's grants: not issued."
            )
    insert_rows(
        CreditLedgerEntry, ("grant_id", "invoice_id", "kind", "amount", "on", "created_at"), entries
    )
    update_column(CreditGrant, "remaining", {pk: remaining[pk] for pk in touched})
