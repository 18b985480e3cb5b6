"""Startup-program credits (SPEC CR1–CR3): a grant per program year, its ledger, and the lapse
of what is left unused at the year's end. The invoice draws on them through the coupons' hook
(`coupons.adjustments`); the startup program asks for the grants."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from billing.amounts import parse_dollars
from billing.audit import record_history, save_with_reason
from billing.bulk_rows import insert_rows
from billing.clock import (
    refuse_before_sign_up,
    refuse_issued_already,
    refuse_processed,
    take_in_date_order,
)
from billing.closed_workspaces import refuse_closed
from billing.errors import refuse_dated_before, refuse_problems
from billing.formatting import day, money
from billing.models import Interval, SetAsideInvoice, Workspace, WorkspaceClosure
from billing.months import add_year
from coupons.errors import CouponError
from coupons.models import AcceleratorPartner, Coupon, CreditGrant, CreditLedgerEntry
from coupons.workspaces import locked_workspace, note_on_workspaces, note_received

# CR3: never more than two program years.
PROGRAM_YEARS = (1, 2)
# C8: the seeded startup-program coupon, whose credit applies where no partner's does.
STARTUP_CODE = "STARTUP"


def credit_amount_for(coupon: Coupon, partner: AcceleratorPartner | None) -> Decimal:
    """C7, CR1: an active partner's own credit amount overrides the coupon's. A partner's own
    coupon sets the amount only while its partner is active: year two of a partner deactivated
    since is the STARTUP coupon's, however its own coupon or the partner's row set it."""
    partners = [
        AcceleratorPartner.objects.get(pk=source.pk)  # its status as of now
        for source in (partner, coupon.partner)
        if source is not None
    ]
    for source in partners:
        if source.status == AcceleratorPartner.Status.ACTIVE and source.credit_amount:
            return source.credit_amount
    if coupon.partner_id is not None and partners[-1].status != AcceleratorPartner.Status.ACTIVE:
        return Coupon.objects.get(code=STARTUP_CODE).credit_amount
    return coupon.credit_amount


def add_grant(
    workspace,
    *,
    amount,
    year,
    valid_from,
    by,
    valid_until=None,
    redemption=None,
    partner=None,
    reason="",
) -> CreditGrant:
    """CR1, CR3: the grant for one program year, with its ledger entry and a line in the
    workspace's history; the caller has locked the workspace (`grant_credits`, a redemption)."""
    problems = []
    amount = parse_dollars(amount, "credit grant", problems, positive=True)
    if amount is None and not problems:
        problems.append("A credit grant needs an amount.")
    if year not in PROGRAM_YEARS:
        problems.append(f"The program runs for two years at most: there is no year {year}.")
    if valid_until is not None and valid_until <= valid_from:
        problems.append(
            f"A grant valid from {day(valid_from)} must end after it, not {day(valid_until)}."
        )
    refuse_problems(problems, CouponError)
    existing = {g.year: g for g in CreditGrant.objects.filter(workspace=workspace)}
    if year in existing:
        raise CouponError(
            f"{workspace.name} already has its year-{year} credit grant "
            f"(from {day(existing[year].valid_from)})."
        )
    if year == 2 and 1 not in existing:
        raise CouponError(f"{workspace.name} has no year-one grant: year two follows year one.")
    if year == 2:
        refuse_dated_before(
            valid_from, existing[1].valid_from, "A year-two grant", "year one's", error=CouponError
        )
    refuse_before_sign_up(workspace, valid_from, "A credit grant's first valid day")
    grant = CreditGrant(
        workspace=workspace,
        year=year,
        amount=amount,
        remaining=amount,
        valid_from=valid_from,
        valid_until=valid_until or add_year(valid_from),
        redemption=redemption,
        partner=partner,
        granted_by=by,
    )
    text = (
        f"Year {year} startup credit of {money(amount)}, valid {day(valid_from)} to "
        f"{day(grant.valid_until)}"
    )
    save_with_reason(grant, reason or text, by=by)
    CreditLedgerEntry.objects.create(
        grant=grant, kind=CreditLedgerEntry.Kind.GRANT, amount=amount, on=valid_from
    )
    note_on_workspaces([(workspace.pk, text)], by=by)
    if redemption is None:  # a coupon's own grant: its redemption told them
        note_received(workspace.pk, f"a credit of {money(amount)} from {day(valid_from)}", by=by)
    return grant


@transaction.atomic
def grant_credits(
    workspace: Workspace,
    *,
    amount,
    as_of: date,
    year: int,
    by,
    valid_from: date | None = None,
    valid_until: date | None = None,
    partner: AcceleratorPartner | None = None,
    reason: str = "",
) -> CreditGrant:
    """CR1: a credit grant for one program year, valid from `valid_from` (default `as_of`, never
    before it) up to, not including, `valid_until` (default the same date a year later). CR3: at
    most two years, year two only after year one (the startup program confirms E2 and E3
    before it asks)."""
    refuse_processed(as_of, "A credit grant")
    valid_from = valid_from or as_of
    if valid_from < as_of:
        # D3: what the workspace had on an earlier day stays as it stood; CR3: an invoice
        # already issued is never credited again.
        raise CouponError(
            f"A credit grant made on {day(as_of)} cannot be valid from {day(valid_from)}, "
            "before it is made."
        )
    workspace = locked_workspace(workspace)
    refuse_closed(workspace, "A credit grant")
    take_in_date_order(workspace, as_of, "A credit grant")
    # D4, CR2: a monthly invoice issued already for its first day or later (a final invoice
    # of a cancellation entered first) went without it; in the other order it was credited.
    refuse_issued_already(
        workspace.invoices.filter(interval=Interval.MONTHLY), valid_from, "A credit grant"
    )
    return add_grant(
        workspace,
        amount=amount,
        year=year,
        valid_from=valid_from,
        valid_until=valid_until,
        by=by,
        partner=partner,
        redemption=workspace.coupon_redemptions.filter(
            coupon__kind=Coupon.Kind.STARTUP_PROGRAM
        ).first(),
        reason=reason,
    )


def lapse_credit_grants(*, as_of: date, workspace_ids=None) -> int:
    """CR3: at a grant's end (`valid_until`) its unused balance lapses: a ledger entry takes it
    to zero. Set-based (rows, not instances; one UPDATE per batch); a grant lapses once. Only
    the grants of `workspace_ids` when given (a closure catching up first, as the clock would).
    W1: a closure dated a 1st whose month close had yet to run left the credit that close's
    invoice draws on (`coupons.closures`); it lapses here, after the close, dated the closure.

    I6, CR2: a grant waits while a close has set aside its workspace's invoice of a month
    before the grant's end (or the closure): that invoice, issued late, draws on the balance
    as it stood on its issue date. The lapse then comes on a later day, dated the grant's end
    (or the closure) all the same."""
    scope = {} if workspace_ids is None else {"workspace_id__in": workspace_ids}
    closure = WorkspaceClosure.objects.filter(
        workspace_id=OuterRef("workspace_id"),
        closed_on__lte=as_of,
        closed_on__gte=OuterRef("valid_from"),
        closed_on__lt=OuterRef("valid_until"),
    ).order_by("closed_on")
    with transaction.atomic():
        ended = _lapsing(
            CreditGrant.objects.filter(valid_until__lte=as_of, **scope), F("valid_until")
        )
        closed = _lapsing(
            CreditGrant.objects.filter(Exists(closure), **scope).exclude(
                pk__in=[g[0] for g in ended]
            ),
            Subquery(closure.values("closed_on")[:1]),
        )
        _lapse(ended, "Program year ended: unused credit lapsed", "")
        _lapse(closed, "Workspace closed: unused credit lapsed", ": workspace closed")
    return len(ended) + len(closed)


def _lapsing(grants, on) -> list[tuple]:
    """(pk, workspace, remaining, lapse day) of the unlapsed `grants`, locked, each lapsing
    `on` unless a set-aside invoice of a month before that day still draws on it."""
    owed = SetAsideInvoice.objects.filter(
        workspace_id=OuterRef("workspace_id"), resolved_on=None, close__month__lt=OuterRef("on")
    )
    return list(
        grants.select_for_update()
        .filter(lapsed_on=None)
        .annotate(on=on)
        .exclude(Exists(owed))
        .order_by("id")
        .values_list("pk", "workspace_id", "remaining", "on")
    )


def _lapse(grants: list[tuple], why: str, note: str) -> None:
    lapsing = [(pk, ws, left, on) for pk, ws, left, on in grants if left > 0]
    now = timezone.now()
    insert_rows(
        CreditLedgerEntry,
        ("grant_id", "kind", "amount", "on", "created_at"),
        [(pk, CreditLedgerEntry.Kind.LAPSE, -left, on, now) for pk, _, left, on in lapsing],
    )
    by_day = defaultdict(list)
    for pk, _, _, on in grants:
        by_day[on].append(pk)
    for on, ids in by_day.items():
        for start in range(0, len(ids), 2_000):
            CreditGrant.objects.filter(pk__in=ids[start : start + 2_000]).update(
                remaining=Decimal("0.00"), lapsed_on=on
            )
    record_history(CreditGrant, [(pk, why) for pk, *_ in grants])
    note_on_workspaces(
        [
            (ws, f"Unused startup credit of {money(left)} lapsed on {day(on)}{note}")
            for _, ws, left, on in lapsing
        ]
    )
