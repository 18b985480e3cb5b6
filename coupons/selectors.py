"""Reads about coupons and credits that services, pages and the startup program share."""

from datetime import date
from decimal import Decimal

from django.db.models import F, Q, Sum

from billing.formatting import day, money
from billing.models import OutboundEmail
from billing.months import add_months
from billing.pricing import ZERO
from billing.selectors import workspace_status
from coupons.models import CampaignRecipient, Coupon, CreditGrant, CreditLedgerEntry, Redemption


def ever_received_coupon_or_credit(workspace) -> bool:
    """E4 (asked by the startup program) and C2's startup-program refusal: any coupon ever
    redeemed for the workspace, or any credit granted to it, whatever became of it since."""
    return bool(coupon_or_credit_received(workspace))


def coupon_or_credit_received(workspace) -> str:
    """E4 as the reviewer reads it: the first coupon the workspace received ("SPRING on
    25 Jan 2026"), else its first credit grant, else ""."""
    redemption = (
        Redemption.objects.filter(workspace_id=workspace.pk)
        .select_related("coupon")
        .order_by("redeemed_on", "pk")
        .first()
    )
    if redemption is not None:
        return f"{redemption.coupon.code} on {day(redemption.redeemed_on)}"
    grant = CreditGrant.objects.filter(workspace_id=workspace.pk).order_by("valid_from", "pk")
    grant = grant.first()
    if grant is not None:
        return f"a credit of {money(grant.amount)} from {day(grant.valid_from)}"
    return ""


def running_discounts(as_of: date):
    """C2: the discounts still running on `as_of` (credit coupons are not discounts); a `once`
    coupon not yet used on an invoice is still running. Every workspace's: narrowed to some by
    id, or read as a subquery for a whole audience (G1)."""
    return Redemption.objects.filter(
        status=Redemption.Status.ACTIVE, coupon__credit_amount__isnull=True, redeemed_on__lte=as_of
    ).filter(Q(runs_out_on__isnull=True) | Q(runs_out_on__gt=as_of))


def _running_discounts(workspace_ids, as_of: date):
    """`running_discounts` of `workspace_ids`, earliest redemption first."""
    return (
        running_discounts(as_of)
        .select_related("coupon")
        .filter(workspace_id__in=workspace_ids)
        .order_by("workspace_id", "redeemed_on", "id")
    )


def active_discount(workspace, *, as_of: date) -> Redemption | None:
    """C2: the workspace's discount that is still running on `as_of`, or None."""
    return _running_discounts([workspace.pk], as_of).first()


def active_discounts(workspace_ids, *, as_of: date) -> dict[int, Redemption]:
    """`active_discount` for many workspaces in one query: {workspace id: redemption}."""
    found = {}
    for redemption in _running_discounts(workspace_ids, as_of):
        found.setdefault(redemption.workspace_id, redemption)
    return found


def notifying_campaign_id(workspace, coupon, as_of: date) -> int | None:
    """G3: the latest campaign that emailed the workspace about `coupon` by `as_of`, the
    redemption's day, if any. Only an email the mail server took notified it: one still
    pending (the server down, no worker yet) or failed for good told it nothing, whatever
    becomes of it later. A redemption dated before the campaign reached the workspace was not
    brought by it (`added_on`, the launch's day: `sent_at` is the wall clock's moment, and
    redemptions are dated by the billing clock's days, which a demo or a copy runs apart)."""
    return (
        CampaignRecipient.objects.filter(
            workspace_id=workspace.pk,
            campaign__coupon=coupon,
            email__status=OutboundEmail.Status.SENT,
            added_on__lte=as_of,
        )
        .order_by("-added_on", "-id")
        .values_list("campaign_id", flat=True)
        .first()
    )


def valid_grants(workspace_ids, day: date):
    """CR2: the grants valid on `day` (`CreditGrant.objects.valid_on`)."""
    return CreditGrant.objects.valid_on(day).filter(workspace_id__in=workspace_ids)


def credit_balance(workspace_id: int, as_of: date) -> Decimal:
    """D3: the startup credit left on `as_of` on the grants valid that day, from the ledger as
    it stood then (draws and lapses after `as_of` not yet counted)."""
    total = CreditLedgerEntry.objects.filter(
        grant__in=valid_grants([workspace_id], as_of), on__lte=as_of
    ).aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO


def program_member(workspace_id: int, as_of: date) -> bool:
    """S4, D3: a workspace is a startup-program member on the days one of its grants is
    valid (CR1, CR3), and no longer after."""
    return valid_grants([workspace_id], as_of).exists()


def coupon_status(coupon: Coupon, *, as_of: date) -> str:
    """What staff see in the coupon list: why it can or cannot be applied today."""
    if not coupon.active:
        return "Inactive"
    if coupon.redeem_by is not None and as_of > coupon.redeem_by:
        return "Expired"
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        return "Used up"
    return "Active"


def coupons_on_offer(*, as_of: date):
    """The coupons staff can apply on `as_of` (C2): active, not past redeem-by, not used up.
    The rest are still refused by the service with their reason; the picker leaves them out."""
    return (
        Coupon.objects.filter(active=True)
        .filter(Q(redeem_by=None) | Q(redeem_by__gte=as_of))
        .filter(Q(max_redemptions=None) | Q(times_redeemed__lt=F("max_redemptions")))
    )


def redemption_summary(redemption: Redemption) -> str:
    """A line for the workspace page: what it is, since when, which bills it covers."""
    coupon = redemption.coupon
    text = f"{coupon.code}: {coupon.value_display}, {coupon.duration_display.lower()}"
    text += f", from {day(redemption.redeemed_on)}"
    if redemption.status != Redemption.Status.ACTIVE:
        text += f" ({redemption.get_status_display().lower()} {day(redemption.ended_on)})"
    else:
        text += bills_covered(redemption)
    return text


def bills_covered(redemption: Redemption) -> str:
    """C5: a repeating discount's reach as the bills it covers (", the bills for October –
    December 2026"), "" for any other. Said as the day it runs out ("until 1 Jan 2027"), it
    read as if the invoice of that day were full price, though it bills December, covered."""
    if redemption.coupon.duration != Coupon.Duration.REPEATING or not redemption.runs_out_on:
        return ""
    first, last = redemption.started_month, add_months(redemption.runs_out_on, -1)
    if first == last:
        return f", the bills for {first:%B %Y}"
    if first.year == last.year:
        return f", the bills for {first:%B} – {last:%B %Y}"
    return f", the bills for {first:%B %Y} – {last:%B %Y}"


def coupon_standing(workspace, *, as_of: date) -> str:
    """C2: what "Apply a coupon" needs to know of the workspace before support picks one: the
    plan and interval (a coupon covers some intervals), the discount running (one at a time)
    and every coupon it ever received (each once per workspace); or that it is closed (W1)."""
    status = workspace_status(workspace, as_of=as_of)
    if status["closed"]:  # W1
        return (
            f"{workspace.name} was closed on {day(status['closed_on'])}: "
            "it takes no coupon until it is reopened."
        )
    plan = status["plan"].title()
    if status["plan"] != "free":
        plan += f" ({status['interval']})"
    if status["trialing"]:
        plan += f", trial ends {day(status['trial_end'])}"
    running = active_discount(workspace, as_of=as_of)
    received = sorted(
        set(
            Redemption.objects.filter(workspace_id=workspace.pk).values_list(
                "coupon__code", flat=True
            )
        )
    )
    return (
        f"{workspace.name} now: {plan}; "
        f"running discount: {redemption_summary(running) if running else 'none'}; "
        + (
            f"coupons received before: {', '.join(received)} (each once per workspace)."
            if received
            else "no coupon received before."
        )
    )
