"""Redeeming coupons (SPEC C2, C3, C5, C6's condition): who may receive which coupon, the one
discount at a time, removing it, and the daily step that ends the discounts that ran out and
applies their follow-ups.

A redemption locks the workspace's row first (as billing's writes do), so two agents take
turns; the coupon's row is locked while its redemption count is checked and moved, so the last
redemption goes to one."""

import dataclasses
from collections import Counter
from datetime import date, timedelta
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from simple_history.utils import bulk_create_with_history

from billing.audit import record_history, require_reason, save_with_reason
from billing.clock import (
    date_order_problem,
    issued_already,
    out_of_date_order,
    refuse_issued_already,
    refuse_processed,
    take_in_date_order,
)
from billing.closed_workspaces import refuse_closed
from billing.formatting import billed, day
from billing.models import Interval, Invoice, Plan, Subscription, Workspace
from billing.months import month_start
from billing.subscriptions import advance_workspace
from coupons.credits import add_grant, credit_amount_for, lapse_credit_grants
from coupons.errors import CouponError, CouponRefused
from coupons.models import AcceleratorPartner, Coupon, NonprofitProof, Redemption
from coupons.selectors import (
    active_discount,
    active_discounts,
    bills_covered,
    notifying_campaign_id,
    running_discounts,
)
from coupons.workspaces import locked_workspace, note_on_workspaces, note_received

# C2's facts below are read two ways from the same querysets: narrowed by id into
# `RedeemFacts` (objects, for the refusal's message), or as subqueries over a whole audience of
# workspaces (`standing_expressions`, G1: one statement for 100,000).


def team_on(day: date):
    """The Team subscriptions workspaces are on on `day`: of the subscriptions running that
    day, each workspace's latest started (one, as the dated history is kept), with the interval
    it bills that day as `interval_then`. K2, K4: an annual term ending that day, which the
    clock has not ended yet, is Free from then if cancelled, and monthly if so asked (the
    sixth edge-day file: a monthly coupon was refused on the day the workspace turned monthly)."""
    running = Subscription.objects.filter(started_on__lte=day).exclude(ended_on__lte=day)
    later = running.filter(workspace=OuterRef("workspace")).filter(
        Q(started_on__gt=OuterRef("started_on"))
        | Q(started_on=OuterRef("started_on"), pk__gt=OuterRef("pk"))
    )
    term_over = Q(interval=Interval.ANNUAL, term_end__lte=day)
    return (
        running.exclude(Exists(later))
        .filter(plan__code=Plan.Code.TEAM)
        .exclude(term_over & Q(cancel_at_term_end=True))
        .annotate(
            interval_then=Case(
                When(term_over & Q(switch_to_monthly_at_term_end=True), then=Value("monthly")),
                default=F("interval"),
                output_field=CharField(),
            )
        )
    )


def _team_intervals_on(workspace_ids, day: date) -> dict[int, str]:
    """The Team interval each workspace is on on `day`; absent when it is not on Team."""
    return dict(
        team_on(day)
        .filter(workspace_id__in=workspace_ids)
        .values_list("workspace_id", "interval_then")
    )


def _approved_proofs(as_of: date):
    """C6, D3: proofs approved on or before the day (a proof approved later proves nothing
    then)."""
    return NonprofitProof.objects.filter(
        status=NonprofitProof.Status.APPROVED, reviewed_on__lte=as_of
    )


def _issued_already(coupon: Coupon, as_of: date):
    """D4, C5, CR2: the final or annual invoices the coupon could apply to (a credit: monthly
    Team's only) issued already for `as_of` or later: they went without it."""
    could_take = ["monthly"] if coupon.is_credit else coupon.intervals
    return Invoice.objects.filter(issue_date__gte=as_of, interval__in=could_take).exclude(
        status=Invoice.Status.VOID
    )


class Standing(NamedTuple):
    """What C2's workspace rules decide on (`refusal`), for one workspace on a day."""

    received_it: bool  # this coupon, ever
    received_any: bool  # any coupon, ever
    team_interval: str | None  # None when not on Team that day
    discount_running: bool
    approved_proof: bool  # C6
    invoiced_already: bool  # D4
    out_of_date_order: bool  # D4: a change dated later was entered already


@dataclasses.dataclass
class RedeemFacts:
    """What C2's workspace rules read about one workspace on a day, as objects (the refusal's
    message names them), from `redeem_facts`; `standing` is what the rules decide on. A
    campaign's whole audience reads the same facts in SQL (`standing_expressions`)."""

    received: list[Redemption] = dataclasses.field(default_factory=list)  # oldest first
    interval: str | None = None  # the Team interval that day; None when not on Team
    discount: Redemption | None = None  # the discount running that day
    approved_proof: bool = False  # C6
    # D4: (number, date) of the last invoice it could apply to issued for the day or later.
    issued_already: tuple[str, date] | None = None
    # D4: what `clock.date_order_problem` reads: name, created_on, changes_dated_to.
    dated: dict = dataclasses.field(default_factory=dict)

    def standing(self, coupon: Coupon, as_of: date) -> Standing:
        return Standing(
            received_it=any(r.coupon_id == coupon.pk for r in self.received),
            received_any=bool(self.received),
            team_interval=self.interval,
            discount_running=self.discount is not None,
            approved_proof=self.approved_proof,
            invoiced_already=self.issued_already is not None,
            out_of_date_order=date_order_problem(as_of, "", **self.dated) is not None,
        )


def redeem_facts(workspace_ids, coupon: Coupon, *, as_of: date) -> dict[int, RedeemFacts]:
    """C2's facts for many workspaces in a fixed number of queries (five, six for a
    non-profit coupon), whatever their number."""
    workspace_ids = list(workspace_ids)
    facts = {ws: RedeemFacts() for ws in workspace_ids}
    for ws, *dated in Workspace.objects.filter(pk__in=workspace_ids).values_list(
        "pk", "name", "created_on", "changes_dated_to"
    ):
        facts[ws].dated = dict(zip(("name", "created_on", "dated_to"), dated, strict=True))
    received = (
        Redemption.objects.filter(workspace_id__in=workspace_ids)
        .select_related("coupon")
        .order_by("workspace_id", "redeemed_on", "id")
    )
    for redemption in received:
        facts[redemption.workspace_id].received.append(redemption)
    for ws, interval in _team_intervals_on(workspace_ids, as_of).items():
        facts[ws].interval = interval
    if not coupon.is_credit:
        for ws, redemption in active_discounts(workspace_ids, as_of=as_of).items():
            facts[ws].discount = redemption
    if coupon.kind == Coupon.Kind.NONPROFIT:
        for ws in (
            _approved_proofs(as_of)
            .filter(workspace_id__in=workspace_ids)
            .values_list("workspace_id", flat=True)
        ):
            facts[ws].approved_proof = True
    issued = (
        _issued_already(coupon, as_of)
        .filter(workspace_id__in=workspace_ids)
        .order_by("workspace_id", "issue_date", "id")
        .values_list("workspace_id", "number", "issue_date")
    )
    for ws, number, issued_on in issued:  # few such invoices exist
        facts[ws].issued_already = (number, issued_on)  # the last one stays
    return facts


def standing_expressions(coupon: Coupon, *, as_of: date) -> dict:
    """`RedeemFacts.standing` in SQL: annotations (named as `Standing`'s fields) for a queryset
    of workspaces, so that a whole audience is judged in one statement (G1). Each reads the
    queryset `redeem_facts` narrows by id; a fact the coupon's rules never read is False."""

    def among(rows):
        return ExpressionWrapper(Q(pk__in=rows.values("workspace_id")), BooleanField())

    # True or False, never NULL (a workspace with no dated change has no `changes_dated_to`).
    later_change = Case(
        When(out_of_date_order(as_of), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )

    # Uncorrelated subqueries each: the database reads each once (a hashed set), not once a
    # workspace.
    team = team_on(as_of)
    team_interval = Case(
        *(
            When(
                pk__in=team.filter(interval_then=interval).values("workspace_id"),
                then=Value(interval),
            )
            for interval in Interval.values
        ),
        output_field=CharField(),
    )
    unread = Value(False)
    return {
        "received_it": among(Redemption.objects.filter(coupon=coupon)),
        "received_any": among(Redemption.objects.all())
        if coupon.kind == Coupon.Kind.STARTUP_PROGRAM
        else unread,
        "team_interval": team_interval,
        "discount_running": unread if coupon.is_credit else among(running_discounts(as_of)),
        "approved_proof": among(_approved_proofs(as_of))
        if coupon.kind == Coupon.Kind.NONPROFIT
        else unread,
        "invoiced_already": among(_issued_already(coupon, as_of)),
        "out_of_date_order": later_change,
    }


def check_coupon(coupon: Coupon, *, as_of: date):
    """C2's refusals that depend on the coupon alone: inactive, past redeem-by, maximum."""
    code = coupon.code
    if not coupon.active:
        raise CouponRefused(CouponRefused.INACTIVE, f"The coupon {code} is inactive.")
    if coupon.redeem_by is not None and as_of > coupon.redeem_by:
        raise CouponRefused(
            CouponRefused.PAST_REDEEM_BY,
            f"The coupon {code} could be applied until {day(coupon.redeem_by)}; it is past that "
            "date.",
        )
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponRefused(
            CouponRefused.MAXIMUM_REACHED,
            f"The coupon {code} has reached its maximum of {coupon.max_redemptions} redemption(s).",
        )


def refusal(coupon: Coupon, standing: Standing, *, override_reason: str = "") -> str | None:
    """C2's workspace refusals in the order the rule lists them, then C6's, then D4's (an
    invoice it would have gone to was issued already for its day or later; a change dated
    later was entered): the reason (`CouponRefused`) of the first that applies, or None. No
    database: one workspace's standing (`redeem_coupon`) or a whole audience's, a group of
    workspaces standing alike at a time (a campaign, G1)."""
    if standing.received_it:
        return CouponRefused.ALREADY_RECEIVED
    if (
        coupon.kind == Coupon.Kind.STARTUP_PROGRAM
        and standing.received_any
        and not override_reason.strip()
    ):
        return CouponRefused.STARTUP_AFTER_COUPON
    if standing.team_interval is not None and not coupon.covers(standing.team_interval):
        return CouponRefused.INTERVAL_NOT_COVERED
    if not coupon.is_credit and standing.discount_running:
        return CouponRefused.DISCOUNT_ACTIVE
    if coupon.kind == Coupon.Kind.NONPROFIT and not standing.approved_proof:
        return CouponRefused.NO_NONPROFIT_PROOF
    if standing.invoiced_already:
        return CouponRefused.INVOICED_ALREADY
    if standing.out_of_date_order:
        return CouponRefused.OUT_OF_DATE_ORDER
    return None


def check_redeemable(workspace, coupon: Coupon, *, as_of: date, override_reason: str):
    """C2's refusals (`check_coupon`, then `refusal`), each with its own message naming what
    it found. A dry run is this call with nothing written."""
    check_coupon(coupon, as_of=as_of)
    facts = redeem_facts([workspace.pk], coupon, as_of=as_of)[workspace.pk]
    reason = refusal(coupon, facts.standing(coupon, as_of), override_reason=override_reason)
    if reason is not None:
        raise CouponRefused(reason, _refusal_message(reason, workspace, coupon, facts, as_of))


def _refusal_message(reason: str, workspace, coupon: Coupon, facts: RedeemFacts, as_of: date):
    code, name = coupon.code, workspace.name
    if reason == CouponRefused.ALREADY_RECEIVED:
        same = next(r for r in facts.received if r.coupon_id == coupon.pk)
        return (
            f"{name} already received the coupon {code} on {day(same.redeemed_on)}: a workspace "
            "receives each coupon once, ever."
        )
    if reason == CouponRefused.STARTUP_AFTER_COUPON:
        first = facts.received[0]
        return (
            f"{name} already received a coupon ({first.coupon.code} on {day(first.redeemed_on)}): "
            "the startup program is only for workspaces that never received one."
        )
    if reason == CouponRefused.INTERVAL_NOT_COVERED:
        return (
            f"{name} is on Team {billed(facts.interval)}, and the coupon {code} applies to "
            f"{' and '.join(coupon.intervals)} bills only."
        )
    if reason == CouponRefused.DISCOUNT_ACTIVE:
        current = facts.discount
        return (
            f"{name} already has an active discount ({current.coupon.code}, from "
            f"{day(current.redeemed_on)}{bills_covered(current)}): one discount at a time. "
            "Remove it first."
        )
    if reason == CouponRefused.NO_NONPROFIT_PROOF:
        return (
            f"{name} has no approved proof of non-profit status: upload the proof and have "
            "support approve it first."
        )
    if reason == CouponRefused.INVOICED_ALREADY:
        return (
            f"{issued_already(f'The coupon {code}', as_of, *facts.issued_already)} A coupon "
            "meant for an invoice a change issues is applied before that change (a move to "
            "annual billing, a cancellation), the same day."
        )
    return date_order_problem(as_of, f"The coupon {code}", **facts.dated)


def catch_up(workspace: Workspace, as_of: date):
    """D4: what the clock owes the (locked) workspace before `as_of`, as a plan change has it
    (trial and term ends: an annual invoice may use up a `once` coupon, a trial may have left
    Team), then every discount that ran out by `as_of` gives way to its follow-up (C5). A
    campaign's audience (G1) catches up the workspaces the clock owes the same way, rolled
    back."""
    advance_workspace(workspace, as_of - timedelta(days=1))
    advance_redemptions(as_of=as_of, workspace_ids=[workspace.pk])


@transaction.atomic
def redeem_coupon(
    workspace: Workspace,
    code,
    *,
    by,
    as_of: date,
    override_reason: str = "",
    partner: AcceleratorPartner | None = None,
    reason: str = "",
) -> Redemption:
    """C2: staff (or the system, `by=None`, on an approval) apply a coupon to a workspace.

    Each refusal names its reason (`CouponRefused.reason` says which). C3: non-profit and
    accelerator coupons go to new and long-standing customers alike. C6: a non-profit coupon
    needs an approved proof. A startup-program (credit) coupon makes the year-one credit grant
    (CR1), of the active `partner`'s amount when it has one (C7); `override_reason` (S3's E4
    override) lifts the refusal for a workspace that received a coupon before.
    """
    refuse_processed(as_of, "A coupon")
    workspace = locked_workspace(workspace)
    refuse_closed(workspace, "A coupon")
    catch_up(workspace, as_of)
    text = code.code if isinstance(code, Coupon) else str(code or "").strip().upper()
    coupon = (
        Coupon.objects.select_for_update(of=("self",)).select_related("partner").filter(code=text)
    ).first()
    if coupon is None:
        raise CouponRefused(CouponRefused.UNKNOWN, f"There is no coupon with the code “{text}”.")
    check_redeemable(workspace, coupon, as_of=as_of, override_reason=override_reason)
    take_in_date_order(workspace, as_of, "A coupon")

    redemption = Redemption(
        workspace=workspace,
        coupon=coupon,
        redeemed_on=as_of,
        started_month=month_start(as_of),
        runs_out_on=coupon.runs_out_on(as_of),
        by=by,
        reason=reason.strip(),
        override_reason=override_reason.strip(),
        partner=partner,
        campaign_id=notifying_campaign_id(workspace, coupon, as_of),  # G3
    )
    who = "the system" if by is None else str(by)
    note = f"Coupon {coupon.code} ({coupon.value_display}) applied by {who}"
    if override_reason.strip():
        note += f"; E4 overridden: {override_reason.strip()}"
    try:
        with transaction.atomic():
            save_with_reason(redemption, reason.strip() or note, by=by)
    except IntegrityError:  # a concurrent redemption of the same coupon for the same workspace
        raise CouponRefused(
            CouponRefused.ALREADY_RECEIVED,
            f"{workspace.name} already received the coupon {coupon.code}: a workspace receives "
            "each coupon once, ever.",
        ) from None
    # C2: the count moves under the row lock taken above, so the maximum holds under load.
    Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=F("times_redeemed") + 1)
    note_on_workspaces([(workspace.pk, note)], by=by)
    note_received(workspace.pk, f"{coupon.code} on {day(as_of)}", by=by)
    if coupon.is_credit:
        add_grant(
            workspace,
            amount=credit_amount_for(coupon, partner),
            year=1,
            valid_from=as_of,
            by=by,
            redemption=redemption,
            partner=partner,
        )
    return redemption


@transaction.atomic
def remove_discount(
    workspace: Workspace, *, by, reason: str, as_of: date, redemption: Redemption | None = None
) -> Redemption:
    """C5 `forever … until removed` (any discount, really): invoices issued from `as_of` on
    are billed at the normal rate, but for a month that ended with the discount before
    `as_of` (its close is dated the 1st: `DiscountTerm.applies_to`). No follow-up: it did not
    run out. `redemption`: the discount the person chose to remove (a page opened earlier);
    refused, removing nothing, when another one is running now."""
    refuse_processed(as_of, "Removing a discount")
    reason = require_reason(
        reason, "Say why the discount is removed: the reason is kept.", error=CouponError
    )
    workspace = locked_workspace(workspace)
    refuse_closed(workspace, "Removing a discount")
    take_in_date_order(workspace, as_of, "Removing a discount")
    catch_up(workspace, as_of)
    current = active_discount(workspace, as_of=as_of)
    if current is None:
        raise CouponError(f"{workspace.name} has no active discount to remove.")
    refuse_issued_already(  # D4: an invoice issued for this day or later had it
        workspace.invoices.filter(interval__in=current.coupon.intervals),
        as_of,
        "Removing a discount",
    )
    if redemption is not None and redemption.pk != current.pk:
        raise CouponError(
            f"{redemption.coupon.code} is no longer {workspace.name}'s running discount "
            f"({current.coupon.code} is): nothing was removed."
        )
    current = Redemption.objects.select_for_update().get(pk=current.pk)
    current.status, current.ended_on, current.reason = Redemption.Status.REMOVED, as_of, reason
    save_with_reason(current, f"Removed: {reason}", by=by)
    note_on_workspaces([(workspace.pk, f"Discount {current.coupon.code} removed: {reason}")], by=by)
    return current


# Redemptions ended per pass of the daily step: bounds memory and the size of each IN list; the
# queries of a pass do not depend on how many redemptions it ends.
EXPIRY_BATCH = 2_000


class _DueRedemption(NamedTuple):
    """A redemption that ran out, as the daily step reads it: a row, not an instance."""

    pk: int
    workspace_id: int
    coupon_id: int
    runs_out_on: date


def ran_out(as_of: date):
    """C5: the redemptions that ran out on or before `as_of` and are not ended yet: none once
    the clock has processed the day before."""
    return Redemption.objects.filter(status=Redemption.Status.ACTIVE, runs_out_on__lte=as_of)


def advance_redemptions(*, as_of: date, workspace_ids=None) -> Counter:
    """C5 by the billing clock: end every discount that ran out on or before `as_of` and apply
    its follow-up at once, by the system, dated the day it ran out (so a clock run late gives
    what a clock run daily gives). The follow-up's redeem-by date and maximum do not apply, but
    a workspace still never receives it twice. Chains are followed to `as_of`.

    Set-based, like billing's lock changes: a pass costs the same few queries for five
    redemptions or thousands (the coupons' daily step runs for every workspace at once)."""
    counts = Counter()
    while True:
        due = ran_out(as_of).order_by("runs_out_on", "id")
        if workspace_ids is not None:
            due = due.filter(workspace_id__in=workspace_ids)
        due = [
            _DueRedemption(*row)
            for row in due.select_for_update()[:EXPIRY_BATCH].values_list(*_DueRedemption._fields)
        ]
        if not due:
            return counts
        counts.update(_run_out(due))


def _run_out(due: list[Redemption]) -> Counter:
    """End the redemptions in `due` (locked, in the order they ran out; read as rows) in one
    UPDATE, write their follow-ups in one insert and note both on each workspace's history."""
    coupons = Coupon.objects.select_related("follow_up").in_bulk({r.coupon_id for r in due})
    Redemption.objects.filter(pk__in=[r.pk for r in due]).update(
        status=Redemption.Status.ENDED, ended_on=F("runs_out_on")
    )
    record_history(Redemption, [(r.pk, f"Ran out on {day(r.runs_out_on)}") for r in due])

    follow_up_ids = {c.follow_up_id for c in coupons.values() if c.follow_up_id is not None}
    # C5: never twice to one workspace — neither received before nor twice in this batch.
    taken = set()
    if follow_up_ids:
        taken = set(
            Redemption.objects.filter(
                workspace_id__in={r.workspace_id for r in due}, coupon_id__in=follow_up_ids
            ).values_list("workspace_id", "coupon_id")
        )
    follow_ups, notes = [], []
    for redemption in due:
        coupon, ran_out = coupons[redemption.coupon_id], redemption.runs_out_on
        note = f"Coupon {coupon.code} ran out on {day(ran_out)}"
        follow = coupon.follow_up
        if follow is None:
            note += ": back to the normal rate"
        elif (redemption.workspace_id, follow.pk) in taken:
            note += f"; follow-up {follow.code} not applied: received before"
        elif not follow.active_on(ran_out):
            note += f"; follow-up {follow.code} not applied: inactive"
        elif not follow.can_follow_up:
            note += f"; follow-up {follow.code} not applied: " + (
                "a credit is no discount"
                if follow.is_credit
                else "non-profit discounts need a proof (C6)"
            )
        else:
            taken.add((redemption.workspace_id, follow.pk))
            follow_up = Redemption(
                workspace_id=redemption.workspace_id,
                coupon=follow,
                redeemed_on=ran_out,
                started_month=month_start(ran_out),
                runs_out_on=follow.runs_out_on(ran_out),
                reason=f"Follow-up of {coupon.code}, which ran out on {day(ran_out)}",
                is_follow_up=True,
                follows_id=redemption.pk,
            )
            follow_up._change_reason = f"Applied by the system as the follow-up of {coupon.code}"
            follow_ups.append(follow_up)
            note += f"; follow-up {follow.code} ({follow.value_display}) applied by the system"
        notes.append((redemption.workspace_id, note))
    # The follow-up's redeem-by date and maximum do not apply (C5): no check, no count.
    bulk_create_with_history(follow_ups, Redemption, batch_size=EXPIRY_BATCH)
    note_on_workspaces(notes)
    counts = Counter(coupons_ran_out=len(due))
    if follow_ups:
        counts["follow_ups_applied"] = len(follow_ups)
    return counts


def run_coupon_clock(as_of: date) -> dict:
    """The coupons' daily step of the billing clock (registered in `CouponsConfig.ready`): C5
    expiries and follow-ups, then CR3 lapses."""
    with transaction.atomic():
        counts = advance_redemptions(as_of=as_of)
    counts["credit_grants_lapsed"] = lapse_credit_grants(as_of=as_of)
    return dict(counts)
