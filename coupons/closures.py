"""The coupons' part in closing a workspace (SPEC W1), registered with billing in
`CouponsConfig.ready` (`billing.hooks.register_closure_step`): the active discount ends and the
unused startup credit lapses, both dated the closure's day and kept as history (D3)."""

from datetime import date, timedelta
from decimal import Decimal

from simple_history.utils import bulk_update_with_history

from billing.formatting import day, money
from billing.hooks import ClosureStep
from billing.month_close import close_due_on
from billing.pricing import ZERO, round_cents
from coupons.credits import lapse_credit_grants
from coupons.models import CreditGrant, CreditLedgerEntry, Redemption
from coupons.redemptions import advance_redemptions
from coupons.selectors import active_discount, credit_balance
from coupons.workspaces import note_on_workspaces


def _unused(grants) -> Decimal:
    return sum((g.remaining for g in grants), ZERO)


def describe(workspace, *, as_of: date, final_invoice=None) -> list[str]:
    """What closing on `as_of` would end (read only)."""
    sentences = []
    due = close_due_on(as_of)
    discount = active_discount(workspace, as_of=as_of)
    if discount is not None:
        coupon = discount.coupon
        if final_invoice is not None:
            after = " after the final invoice."
        elif due and discount.redeemed_on < as_of:
            after = f"; {due:%B}'s invoice, at its month close that day, keeps it."
        else:
            after = "."
        sentences.append(
            f"The discount {coupon.code} ({coupon.value_display}, "
            f"{coupon.duration_display.lower()}) ends{after}"
        )
    drawn = final_invoice.credits if final_invoice is not None else ZERO
    left = round_cents(max(credit_balance(workspace.pk, as_of) - drawn, ZERO))
    later = _unused(
        CreditGrant.objects.filter(workspace=workspace, lapsed_on=None, valid_from__gt=as_of)
    )
    if due and left > 0:
        sentences.append(_left_to_the_close(left, due, as_of))
        left = ZERO
    unused = round_cents(left + later)
    if unused > 0:
        sentences.append(f"{money(unused)} of unused startup credit lapses (no refund).")
    return sentences


def _left_to_the_close(unused: Decimal, month: date, as_of: date) -> str:
    return (
        f"Of {money(unused)} unused startup credit, what {month:%B}'s invoice (its month close "
        f"is dated {day(as_of)}) does not draw lapses after it (no refund)."
    )


def apply(workspace, *, as_of: date, by, reason: str) -> list[str]:
    """End the workspace's running discounts and lapse its unused credit on `as_of`, in the
    closure's transaction (after the final invoice, which used both)."""
    sentences = []
    # What ended before the closure ends first, as the clock would have ended it (D4): coupons
    # that ran out get their follow-ups, grants past their year lapse on their own end date
    # (one ending on `as_of` was last valid the day before: not the closure's to lapse).
    advance_redemptions(as_of=as_of - timedelta(days=1), workspace_ids=[workspace.pk])
    lapse_credit_grants(as_of=as_of, workspace_ids=[workspace.pk])
    running = list(
        Redemption.objects.select_for_update()
        .select_related("coupon")
        .filter(
            workspace=workspace,
            status=Redemption.Status.ACTIVE,
            coupon__credit_amount__isnull=True,
        )
        .order_by("id")
    )
    notes = []
    for redemption in running:
        coupon = redemption.coupon
        if redemption.runs_out_on is not None and redemption.runs_out_on <= as_of:
            # C5: it ran out on the closure's day, every billing month it covers done: it ends
            # as the clock would end it, not removed (its last month's invoice, dated that day
            # too, keeps it), and with no follow-up (the closure ends discounts).
            redemption.status, redemption.ended_on = Redemption.Status.ENDED, redemption.runs_out_on
            redemption._change_reason = f"Ran out on {day(redemption.runs_out_on)}"
            continue
        redemption.status, redemption.ended_on = Redemption.Status.REMOVED, as_of
        redemption._change_reason = f"Workspace closed: {reason}"
        sentences.append(f"The discount {coupon.code} ({coupon.value_display}) ended.")
        notes.append((workspace.pk, f"Discount {coupon.code} ended: workspace closed"))
    bulk_update_with_history(running, Redemption, ["status", "ended_on"], default_user=by)

    grants = list(
        CreditGrant.objects.select_for_update()
        .filter(workspace=workspace, lapsed_on=None)
        .order_by("id")
    )
    if month := close_due_on(as_of):
        # The month close dated today bills the month just ended after this (D1): its invoice
        # draws on today's credit first; the clock lapses the rest after it, dated today.
        valid = [grant for grant in grants if grant.valid_from <= as_of < grant.valid_until]
        grants = [grant for grant in grants if grant not in valid]
        if _unused(valid) > 0:
            sentences.append(_left_to_the_close(_unused(valid), month, as_of))
    # A grant not valid yet (year two confirmed before its anniversary) lapses as it starts:
    # its own entry is dated then, and the ledger never reads below zero (CR2) nor the credit
    # report more lapsed than granted.
    entries = [
        CreditLedgerEntry(
            grant=grant,
            kind=CreditLedgerEntry.Kind.LAPSE,
            amount=-grant.remaining,
            on=max(as_of, grant.valid_from),
        )
        for grant in grants
        if grant.remaining > 0
    ]
    lapsed = _unused(grants)
    for grant in grants:
        grant.remaining, grant.lapsed_on = ZERO, max(as_of, grant.valid_from)
        grant._change_reason = f"Workspace closed: unused credit lapsed ({reason})"
    CreditLedgerEntry.objects.bulk_create(entries)
    bulk_update_with_history(grants, CreditGrant, ["remaining", "lapsed_on"], default_user=by)
    if lapsed > 0:
        sentences.append(f"{money(lapsed)} of unused startup credit lapsed.")
        lapse = f"Unused startup credit of {money(lapsed)} lapsed: workspace closed"
        notes.append((workspace.pk, lapse))
    note_on_workspaces(notes, by=by)
    return sentences


CLOSURE_STEP = ClosureStep(describe=describe, apply=apply)
