"""Every write with a coupon or credit rule (SPEC C1–C8, CR1–CR3).

Services take the date they act on (`as_of`) and never read the clock. Those that act on one
workspace lock its row first (as billing's do), so two agents take turns; a coupon's row is
locked while its redemption count is checked and moved, so the last redemption goes to one.
"""

import dataclasses
import re
from collections import Counter
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from billing.audit import record_history, require_reason, save_with_reason
from billing.bulk_rows import insert_rows
from billing.clock import refuse_processed
from billing.closed_workspaces import refuse_closed
from billing.documents import document_type, stored_until_rollback
from billing.emails import queue_email
from billing.models import Plan, Subscription, Workspace
from billing.months import add_year, month_start
from coupons.errors import CouponError, CouponRefused
from coupons.models import (
    AcceleratorPartner,
    Coupon,
    CreditGrant,
    CreditLedgerEntry,
    NonprofitProof,
    Redemption,
)
from coupons.selectors import active_discount, active_discounts, notifying_campaign_id

__all__ = [
    "advance_redemptions",
    "campaign_audience",  # noqa: F822 (from coupons.campaigns, see __getattr__)
    "create_campaign",  # noqa: F822
    "launch_campaign",  # noqa: F822
    "update_partner",
    "apply_as_partner",
    "approve_nonprofit_proof",
    "approve_partner",
    "create_coupon",
    "deactivate_partner",
    "decline_partner",
    "grant_credits",
    "lapse_credit_grants",
    "redeem_coupon",
    "reject_nonprofit_proof",
    "remove_discount",
    "run_coupon_clock",
    "submit_nonprofit_proof",
    "update_coupon",
]

NONPROFIT_CODE = "NONPROFIT"
STARTUP_CODE = "STARTUP"
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,39}$")
CENT = Decimal("0.01")
# CR3: never more than two program years.
PROGRAM_YEARS = (1, 2)


def _note_on_workspaces(notes: list[tuple[int, str]], by=None):
    """R4: a line in each workspace's own history (no field changes), so its history page says
    what happened to its coupons and credits."""
    record_history(Workspace, notes, by=by)  # set-based: the daily step notes thousands


def _locked_workspace(workspace) -> Workspace:
    # As billing's `_locked`: rows pointing at the workspace are still inserted meanwhile.
    return Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)


def _money(value, label: str, problems: list[str]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"The {label} “{value}” is not an amount.")
        return None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        problems.append(f"The {label} must be in dollars and cents, not “{value}”.")
        return None
    return amount


def _coupon_by_code(code) -> Coupon | None:
    if isinstance(code, Coupon):
        return code
    return Coupon.objects.filter(code=str(code or "").strip().upper()).first()


# --- Coupons (C1, C8) -----------------------------------------------------------------------


def _check_values(kind, percent_off, amount_off, credit_amount, problems):
    before = len(problems)
    percent = _money(percent_off, "percent off", problems)
    amount = _money(amount_off, "amount off", problems)
    credit = _money(credit_amount, "credit amount", problems)
    given = [v for v in (percent, amount, credit) if v is not None]
    if len(given) != 1 and len(problems) == before:
        problems.append(
            "A coupon has exactly one of percent off, amount off or (startup program only) "
            "a yearly credit amount."
        )
    if percent is not None and not (0 < percent <= 100):
        problems.append(f"Percent off must be more than 0 and at most 100, not {percent}.")
    if amount is not None and amount <= 0:
        problems.append(f"The amount off must be more than 0, not {amount}.")
    if credit is not None:
        if kind != Coupon.Kind.STARTUP_PROGRAM:
            problems.append("Only a startup-program coupon can grant a yearly credit amount.")
        if credit <= 0:
            problems.append(f"The credit amount must be more than 0, not {credit}.")
    return percent, amount, credit


def _check_duration(duration, duration_months, problems):
    if duration not in Coupon.Duration.values:
        problems.append(f"“{duration}” is not a duration: use once, repeating or forever.")
        return None
    if duration == Coupon.Duration.REPEATING:
        if not isinstance(duration_months, int) or isinstance(duration_months, bool):
            problems.append("A repeating coupon needs its number of months (1 or more).")
        elif duration_months < 1:
            problems.append(f"A repeating coupon runs for 1 month or more, not {duration_months}.")
        return duration_months
    if duration_months not in (None, ""):
        problems.append("Only a repeating coupon has a number of months.")
    return None


def _check_follow_up(coupon: Coupon | None, follow_up, problems) -> Coupon | None:
    if follow_up in (None, ""):
        return None
    target = _coupon_by_code(follow_up)
    if target is None:
        problems.append(f"There is no coupon “{follow_up}” to follow up with.")
        return None
    if target.is_credit or (coupon is not None and coupon.credit_amount is not None):
        problems.append("Follow-ups are discounts: a credit coupon neither has nor is one.")
    seen, step = set(), target
    while step is not None and coupon is not None and coupon.pk is not None:
        if step.pk == coupon.pk:
            problems.append(f"{target.code} leads back to {coupon.code}: follow-ups cannot loop.")
            break
        if step.pk in seen:
            break
        seen.add(step.pk)
        step = step.follow_up
    return target


def _new_coupon(
    code,
    name,
    kind,
    *,
    percent_off,
    amount_off,
    credit_amount,
    duration,
    duration_months,
    redeem_by,
    max_redemptions,
    intervals,
    follow_up,
    partner,
    active,
) -> tuple[list[str], dict]:
    """C1's checks on a new coupon: every problem named, and the cleaned field values."""
    problems = []
    code = (code or "").strip().upper()
    if not CODE_PATTERN.match(code):
        problems.append(
            f"“{code}” is not a coupon code: 2 to 40 letters, digits, - or _, starting with a "
            "letter or digit."
        )
    elif Coupon.objects.filter(code=code).exists():
        problems.append(f"The code {code} is already used by another coupon.")
    if not name or not name.strip():
        problems.append("The coupon needs a name.")
    if kind not in Coupon.Kind.values:
        problems.append(
            f"“{kind}” is not a coupon kind: use startup_program, nonprofit, accelerator or "
            "promotion."
        )
    percent, amount, credit = _check_values(kind, percent_off, amount_off, credit_amount, problems)
    months = _check_duration(duration, duration_months, problems)
    intervals = set(intervals or ())
    if not intervals or not intervals <= {"monthly", "annual"}:
        problems.append("Choose the intervals it applies to: monthly, annual or both.")
    if max_redemptions is not None and (
        not isinstance(max_redemptions, int) or max_redemptions < 1
    ):
        problems.append(f"The maximum redemptions must be 1 or more, not {max_redemptions}.")
    follow = _check_follow_up(Coupon(credit_amount=credit), follow_up, problems)
    if partner is not None and not isinstance(partner, AcceleratorPartner):
        problems.append("The partner must be an accelerator partner.")
    values = {
        "code": code,
        "name": (name or "").strip(),
        "kind": kind,
        "percent_off": percent,
        "amount_off": amount,
        "credit_amount": credit,
        "duration": duration,
        "duration_months": months,
        "redeem_by": redeem_by,
        "max_redemptions": max_redemptions,
        "applies_monthly": "monthly" in intervals,
        "applies_annual": "annual" in intervals,
        "follow_up": follow,
        "partner": partner,
        "active": active,
    }
    return problems, values


def new_coupon_problems(code, name, kind, **fields) -> list[str]:
    """What `create_coupon` would refuse, without creating anything (for forms)."""
    return _new_coupon(code, name, kind, **{**_COUPON_DEFAULTS, **fields})[0]


_COUPON_DEFAULTS = {
    "percent_off": None,
    "amount_off": None,
    "credit_amount": None,
    "duration": "once",
    "duration_months": None,
    "redeem_by": None,
    "max_redemptions": None,
    "intervals": ("monthly", "annual"),
    "follow_up": None,
    "partner": None,
    "active": True,
}


@transaction.atomic
def create_coupon(
    code: str,
    name: str,
    kind: str,
    *,
    percent_off=None,
    amount_off=None,
    credit_amount=None,
    duration: str = "once",
    duration_months: int | None = None,
    redeem_by: date | None = None,
    max_redemptions: int | None = None,
    intervals=("monthly", "annual"),
    follow_up=None,
    partner: AcceleratorPartner | None = None,
    active: bool = True,
    by=None,
) -> Coupon:
    """C1: a new coupon, every problem with the input named at once. `follow_up` is a coupon
    or its code. The database constraints hold the same rules (C1) as a last line."""
    problems, values = _new_coupon(
        code,
        name,
        kind,
        percent_off=percent_off,
        amount_off=amount_off,
        credit_amount=credit_amount,
        duration=duration,
        duration_months=duration_months,
        redeem_by=redeem_by,
        max_redemptions=max_redemptions,
        intervals=intervals,
        follow_up=follow_up,
        partner=partner,
        active=active,
    )
    if problems:
        raise CouponError(" ".join(problems))
    coupon = Coupon(**values)
    save_with_reason(coupon, "Created", by=by)
    return coupon


# What may change once a coupon has been redeemed: never its discount (what workspaces got).
EDITABLE_AFTER_REDEMPTION = {"name", "active", "redeem_by", "max_redemptions", "partner"}
COUPON_EDITABLE = EDITABLE_AFTER_REDEMPTION | {
    "kind",
    "percent_off",
    "amount_off",
    "credit_amount",
    "duration",
    "duration_months",
    "applies_monthly",
    "applies_annual",
    "follow_up",
}


def coupon_change_problems(coupon: Coupon, changes: dict) -> list[str]:
    """What `update_coupon` would refuse. Once redeemed, a coupon's discount (value, duration,
    intervals, kind and follow-up) is fixed: workspaces hold what they were given."""
    unknown = set(changes) - COUPON_EDITABLE
    if unknown:
        return [f"These coupon fields cannot be changed: {', '.join(sorted(unknown))}."]
    changed = {k: v for k, v in changes.items() if getattr(coupon, k) != v}
    if not changed:
        return []
    if coupon.pk and coupon.redemptions.exists():
        fixed = sorted(set(changed) - EDITABLE_AFTER_REDEMPTION)
        if fixed:
            return [
                f"{coupon.code} has been redeemed: its discount cannot change "
                f"({', '.join(fixed)}). Create a new coupon instead."
            ]
    problems = []
    merged = {f: changed.get(f, getattr(coupon, f)) for f in COUPON_EDITABLE}
    if not (merged["name"] or "").strip():
        problems.append("The coupon needs a name.")
    _check_values(
        merged["kind"],
        merged["percent_off"],
        merged["amount_off"],
        merged["credit_amount"],
        problems,
    )
    _check_duration(merged["duration"], merged["duration_months"], problems)
    if not (merged["applies_monthly"] or merged["applies_annual"]):
        problems.append("Choose the intervals it applies to: monthly, annual or both.")
    if "follow_up" in changed:
        _check_follow_up(coupon, changed["follow_up"], problems)
    maximum = merged["max_redemptions"]
    if maximum is not None and maximum < max(coupon.times_redeemed, 1):
        problems.append(
            f"{coupon.code} has been redeemed {coupon.times_redeemed} time(s): the maximum "
            f"cannot be {maximum}."
        )
    return problems


@transaction.atomic
def update_coupon(coupon: Coupon, *, by, reason: str = "", **changes) -> Coupon:
    """Change a coupon (see `coupon_change_problems` for what may change)."""
    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    problems = coupon_change_problems(coupon, changes)
    if problems:
        raise CouponError(" ".join(problems))
    changed = {k: v for k, v in changes.items() if getattr(coupon, k) != v}
    if not changed:
        return coupon
    for field, value in changed.items():
        setattr(coupon, field, value)
    text = "Changed " + ", ".join(sorted(changed))
    save_with_reason(coupon, f"{text}: {reason.strip()}" if reason.strip() else text, by=by)
    return coupon


# --- Redemption (C2, C3, C5, C6) ------------------------------------------------------------


def _team_intervals_on(workspace_ids, day: date) -> dict[int, str]:
    """The Team interval each workspace is on on `day`; absent when it is not on Team."""
    subs = (
        Subscription.objects.filter(workspace_id__in=workspace_ids, started_on__lte=day)
        .exclude(ended_on__lte=day)
        .order_by("workspace_id", "-started_on", "-id")
        .values_list("workspace_id", "plan__code", "interval")
    )
    current = {}
    for workspace_id, plan, interval in subs:
        current.setdefault(workspace_id, (plan, interval))
    return {ws: interval for ws, (plan, interval) in current.items() if plan == Plan.Code.TEAM}


@dataclasses.dataclass
class RedeemFacts:
    """What C2's workspace rules read about one workspace on a day: fetched for one by
    `redeem_coupon`, for a campaign's whole audience at once (G1) by `redeem_facts`."""

    received: list[Redemption] = dataclasses.field(default_factory=list)  # oldest first
    interval: str | None = None  # the Team interval that day; None when not on Team
    discount: Redemption | None = None  # the discount running that day
    approved_proof: bool = False  # C6


def redeem_facts(workspace_ids, coupon: Coupon, *, as_of: date) -> dict[int, RedeemFacts]:
    """C2's facts for many workspaces in a fixed number of queries (three, four for a
    non-profit coupon), whatever their number."""
    workspace_ids = list(workspace_ids)
    facts = {ws: RedeemFacts() for ws in workspace_ids}
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
        for ws in NonprofitProof.objects.filter(
            workspace_id__in=workspace_ids, status=NonprofitProof.Status.APPROVED
        ).values_list("workspace_id", flat=True):
            facts[ws].approved_proof = True
    return facts


def check_coupon(coupon: Coupon, *, as_of: date):
    """C2's refusals that depend on the coupon alone: inactive, past redeem-by, maximum."""
    code = coupon.code
    if not coupon.active:
        raise CouponRefused(CouponRefused.INACTIVE, f"The coupon {code} is inactive.")
    if coupon.redeem_by is not None and as_of > coupon.redeem_by:
        raise CouponRefused(
            CouponRefused.PAST_REDEEM_BY,
            f"The coupon {code} could be applied until {coupon.redeem_by}; it is past that date.",
        )
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise CouponRefused(
            CouponRefused.MAXIMUM_REACHED,
            f"The coupon {code} has reached its maximum of {coupon.max_redemptions} redemption(s).",
        )


def _check_redeemable(
    workspace, coupon: Coupon, *, as_of: date, override_reason: str, facts: RedeemFacts = None
):
    """C2's refusals, each with its own message, in the order the rule lists them; then C6.
    `facts` (from `redeem_facts`) spares the queries when many workspaces are checked; a
    dry run is this call with nothing written (G1)."""
    code = coupon.code
    check_coupon(coupon, as_of=as_of)
    if facts is None:
        facts = redeem_facts([workspace.pk], coupon, as_of=as_of)[workspace.pk]
    received = facts.received
    same = next((r for r in received if r.coupon_id == coupon.pk), None)
    if same is not None:
        raise CouponRefused(
            CouponRefused.ALREADY_RECEIVED,
            f"{workspace.name} already received the coupon {code} on {same.redeemed_on}: a "
            "workspace receives each coupon once, ever.",
        )
    if coupon.kind == Coupon.Kind.STARTUP_PROGRAM and received and not override_reason.strip():
        first = received[0]
        raise CouponRefused(
            CouponRefused.STARTUP_AFTER_COUPON,
            f"{workspace.name} already received a coupon ({first.coupon.code} on "
            f"{first.redeemed_on}): the startup program is only for workspaces that never "
            "received one.",
        )
    interval = facts.interval
    if interval is not None and not coupon.covers(interval):
        covered = " and ".join(coupon.intervals)
        raise CouponRefused(
            CouponRefused.INTERVAL_NOT_COVERED,
            f"{workspace.name} is on Team billed {'annually' if interval == 'annual' else interval}"
            f", and the coupon {code} applies to {covered} bills only.",
        )
    if not coupon.is_credit:
        current = facts.discount
        if current is not None:
            until = f" until {current.runs_out_on}" if current.runs_out_on else ""
            raise CouponRefused(
                CouponRefused.DISCOUNT_ACTIVE,
                f"{workspace.name} already has an active discount ({current.coupon.code}, from "
                f"{current.redeemed_on}{until}): one discount at a time. Remove it first.",
            )
    if coupon.kind == Coupon.Kind.NONPROFIT and not facts.approved_proof:
        raise CouponRefused(
            CouponRefused.NO_NONPROFIT_PROOF,
            f"{workspace.name} has no approved proof of non-profit status: upload the proof and "
            "have support approve it first.",
        )


def _credit_amount_for(coupon: Coupon, partner: AcceleratorPartner | None) -> Decimal:
    """C7, CR1: an active partner's own credit amount overrides the coupon's."""
    if partner is not None:
        partner = AcceleratorPartner.objects.get(pk=partner.pk)  # its status as of now
    for source in (partner, coupon.partner):
        if (
            source is not None
            and source.status == AcceleratorPartner.Status.ACTIVE
            and source.credit_amount
        ):
            return source.credit_amount
    return coupon.credit_amount


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
    workspace = _locked_workspace(workspace)
    refuse_closed(workspace, "A coupon")
    # A coupon that ran out before today has been followed up already (C5) by now.
    advance_redemptions(as_of=as_of, workspace_ids=[workspace.pk])
    text = code.code if isinstance(code, Coupon) else str(code or "").strip().upper()
    coupon = (
        Coupon.objects.select_for_update(of=("self",)).select_related("partner").filter(code=text)
    ).first()
    if coupon is None:
        raise CouponRefused(CouponRefused.UNKNOWN, f"There is no coupon with the code “{text}”.")
    _check_redeemable(workspace, coupon, as_of=as_of, override_reason=override_reason)

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
        campaign_id=notifying_campaign_id(workspace, coupon),  # G3
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
    _note_on_workspaces([(workspace.pk, note)], by=by)
    if coupon.is_credit:
        _grant(
            workspace,
            amount=_credit_amount_for(coupon, partner),
            year=1,
            valid_from=as_of,
            by=by,
            redemption=redemption,
            partner=partner,
        )
    return redemption


@transaction.atomic
def remove_discount(workspace: Workspace, *, by, reason: str, as_of: date) -> Redemption:
    """C5 `forever … until removed` (any discount, really): invoices issued from `as_of` on
    are billed at the normal rate. No follow-up: it did not run out."""
    refuse_processed(as_of, "Removing a discount")
    require_reason(
        reason, "Say why the discount is removed: the reason is kept.", error=CouponError
    )
    workspace = _locked_workspace(workspace)
    refuse_closed(workspace, "Removing a discount")
    advance_redemptions(as_of=as_of, workspace_ids=[workspace.pk])
    current = active_discount(workspace, as_of=as_of)
    if current is None:
        raise CouponError(f"{workspace.name} has no active discount to remove.")
    current = Redemption.objects.select_for_update().get(pk=current.pk)
    current.status, current.ended_on = Redemption.Status.REMOVED, as_of
    current.reason = reason.strip()
    save_with_reason(current, f"Removed: {reason.strip()}", by=by)
    _note_on_workspaces(
        [(workspace.pk, f"Discount {current.coupon.code} removed: {reason.strip()}")], by=by
    )
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


def advance_redemptions(*, as_of: date, workspace_ids=None) -> Counter:
    """C5 by the billing clock: end every discount that ran out on or before `as_of` and apply
    its follow-up at once, by the system, dated the day it ran out (so a clock run late gives
    what a clock run daily gives). The follow-up's redeem-by date and maximum do not apply, but
    a workspace still never receives it twice. Chains are followed to `as_of`.

    Set-based, like billing's lock changes: a pass costs the same few queries for five
    redemptions or thousands (the coupons' daily step runs for every workspace at once)."""
    counts = Counter()
    while True:
        due = Redemption.objects.filter(
            status=Redemption.Status.ACTIVE, runs_out_on__lte=as_of
        ).order_by("runs_out_on", "id")
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
    record_history(Redemption, [(r.pk, f"Ran out on {r.runs_out_on}") for r in due])

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
        coupon, day = coupons[redemption.coupon_id], redemption.runs_out_on
        note = f"Coupon {coupon.code} ran out on {day}"
        follow = coupon.follow_up
        if follow is None:
            note += ": back to the normal rate"
        elif (redemption.workspace_id, follow.pk) in taken:
            note += f"; follow-up {follow.code} not applied: received before"
        elif not follow.active:
            note += f"; follow-up {follow.code} not applied: inactive"
        else:
            taken.add((redemption.workspace_id, follow.pk))
            follow_up = Redemption(
                workspace_id=redemption.workspace_id,
                coupon=follow,
                redeemed_on=day,
                started_month=month_start(day),
                runs_out_on=follow.runs_out_on(day),
                reason=f"Follow-up of {coupon.code}, which ran out on {day}",
                is_follow_up=True,
                follows_id=redemption.pk,
            )
            follow_up._change_reason = f"Applied by the system as the follow-up of {coupon.code}"
            follow_ups.append(follow_up)
            note += f"; follow-up {follow.code} ({follow.value_display}) applied by the system"
        notes.append((redemption.workspace_id, note))
    # The follow-up's redeem-by date and maximum do not apply (C5): no check, no count.
    bulk_create_with_history(follow_ups, Redemption, batch_size=EXPIRY_BATCH)
    _note_on_workspaces(notes)
    counts = Counter(coupons_ran_out=len(due))
    if follow_ups:
        counts["follow_ups_applied"] = len(follow_ups)
    return counts


# --- Startup credits (CR1–CR3) --------------------------------------------------------------


def _grant(
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
):
    problems = []
    amount = _money(amount, "credit amount", problems)
    if amount is not None and amount <= 0:
        problems.append(f"A credit grant is more than 0, not {amount}.")
    if year not in PROGRAM_YEARS:
        problems.append(f"The program runs for two years at most: there is no year {year}.")
    if problems:
        raise CouponError(" ".join(problems))
    existing = {g.year: g for g in CreditGrant.objects.filter(workspace=workspace)}
    if year in existing:
        raise CouponError(
            f"{workspace.name} already has its year-{year} credit grant "
            f"(from {existing[year].valid_from})."
        )
    if year == 2 and 1 not in existing:
        raise CouponError(f"{workspace.name} has no year-one grant: year two follows year one.")
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
    text = f"Year {year} startup credit of {amount}, valid {valid_from} to {grant.valid_until}"
    save_with_reason(grant, reason or text, by=by)
    CreditLedgerEntry.objects.create(
        grant=grant, kind=CreditLedgerEntry.Kind.GRANT, amount=amount, on=valid_from
    )
    _note_on_workspaces([(workspace.pk, text)], by=by)
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
    """CR1: a credit grant for one program year, valid from `valid_from` (default `as_of`) up
    to, not including, `valid_until` (default the same date a year later). CR3: at most two
    years, year two only after year one (the startup program confirms E2 and E3 before it
    asks)."""
    refuse_processed(as_of, "A credit grant")
    workspace = _locked_workspace(workspace)
    refuse_closed(workspace, "A credit grant")
    return _grant(
        workspace,
        amount=amount,
        year=year,
        valid_from=valid_from or as_of,
        valid_until=valid_until,
        by=by,
        partner=partner,
        redemption=workspace.coupon_redemptions.filter(
            coupon__kind=Coupon.Kind.STARTUP_PROGRAM
        ).first(),
        reason=reason,
    )


def lapse_credit_grants(*, as_of: date) -> int:
    """CR3: at a grant's end (`valid_until`) its unused balance lapses: a ledger entry takes it
    to zero. Set-based (rows, not instances; one UPDATE per batch); a grant lapses once."""
    with transaction.atomic():
        grants = list(
            CreditGrant.objects.select_for_update()
            .filter(lapsed_on=None, valid_until__lte=as_of)
            .order_by("id")
            .values_list("pk", "workspace_id", "remaining", "valid_until")
        )
        lapsing = [(pk, ws, left, until) for pk, ws, left, until in grants if left > 0]
        now = timezone.now()
        insert_rows(
            CreditLedgerEntry,
            ("grant_id", "kind", "amount", "on", "created_at"),
            [
                (pk, CreditLedgerEntry.Kind.LAPSE, -left, until, now)
                for pk, _, left, until in lapsing
            ],
        )
        ids = [pk for pk, *_ in grants]
        for start in range(0, len(ids), 2_000):
            CreditGrant.objects.filter(pk__in=ids[start : start + 2_000]).update(
                remaining=Decimal("0.00"), lapsed_on=F("valid_until")
            )
        record_history(
            CreditGrant, [(pk, "Program year ended: unused credit lapsed") for pk in ids]
        )
        _note_on_workspaces(
            [
                (ws, f"Unused startup credit of {left} lapsed on {until}")
                for _, ws, left, until in lapsing
            ]
        )
    return len(grants)


def run_coupon_clock(as_of: date) -> dict:
    """The coupons' daily step of the billing clock (registered in `CouponsConfig.ready`): C5
    expiries and follow-ups, then CR3 lapses."""
    with transaction.atomic():
        counts = advance_redemptions(as_of=as_of)
    counts["credit_grants_lapsed"] = lapse_credit_grants(as_of=as_of)
    return dict(counts)


# --- Non-profit proofs (C6) -----------------------------------------------------------------


def submit_nonprofit_proof(workspace: Workspace, *, document, by, as_of: date) -> NonprofitProof:
    """C6: a proof document (PDF, PNG or JPEG by its content, not empty, at most 10 MB) is
    stored privately under a random name, for support to review (transactional: the file goes
    again if the row is not committed)."""
    refuse_closed(workspace, "A non-profit proof")
    content_type = document_type(document, what="proof")
    proof = NonprofitProof(
        workspace=workspace,
        content_type=content_type,
        original_name=PurePath(getattr(document, "name", "") or "").name[:255],
        size=document.size,
        submitted_on=as_of,
        submitted_by=by,
    )
    with stored_until_rollback(proof.document, document):
        save_with_reason(proof, "Submitted", by=by)
    return proof


def _locked_proof(proof) -> NonprofitProof:
    proof = NonprofitProof.objects.select_for_update().select_related("workspace").get(pk=proof.pk)
    if proof.status != NonprofitProof.Status.SUBMITTED:
        raise CouponError(
            f"This proof was already {proof.get_status_display().lower()} on {proof.reviewed_on}."
        )
    return proof


@transaction.atomic
def approve_nonprofit_proof(
    proof: NonprofitProof, *, by, as_of: date, apply_discount: bool = True
) -> Redemption | None:
    """C6: support approves the proof and, by default, the system applies the NONPROFIT
    discount at once, in the same transaction: if C2 refuses it, nothing is approved and the
    refusal says why (approve without the discount to apply it later)."""
    proof = _locked_proof(proof)
    refuse_closed(proof.workspace, "Approving a non-profit proof")
    proof.status, proof.reviewed_by, proof.reviewed_on = NonprofitProof.Status.APPROVED, by, as_of
    save_with_reason(proof, "Approved", by=by)
    if not apply_discount:
        return None
    try:
        return redeem_coupon(
            proof.workspace,
            NONPROFIT_CODE,
            by=by,
            as_of=as_of,
            reason=f"Non-profit proof {proof.pk} approved",
        )
    except CouponRefused as exc:
        raise CouponRefused(
            exc.reason,
            f"The proof was not approved: {exc} Approve it without the discount to apply the "
            "discount later.",
        ) from None


@transaction.atomic
def reject_nonprofit_proof(proof: NonprofitProof, *, by, reason: str, as_of: date):
    """C6: support rejects a proof, with a reason that is kept."""
    require_reason(reason, "Say why the proof is rejected: the reason is kept.", error=CouponError)
    proof = _locked_proof(proof)
    proof.status, proof.reviewed_by, proof.reviewed_on = NonprofitProof.Status.REJECTED, by, as_of
    proof.reason = reason.strip()
    save_with_reason(proof, f"Rejected: {reason.strip()}", by=by)
    return proof


# --- Accelerator partners (C7) --------------------------------------------------------------


@transaction.atomic
def apply_as_partner(
    name: str,
    *,
    contact_name: str,
    contact_email: str,
    website: str = "",
    description: str = "",
    as_of: date,
) -> AcceleratorPartner:
    """C7: a program applies through the public form; staff review it."""
    problems = []
    name, contact_name = (name or "").strip(), (contact_name or "").strip()
    for label, value, limit in [("program name", name, 200), ("contact name", contact_name, 200)]:
        if not value:
            problems.append(f"The {label} is required.")
        elif len(value) > limit:
            problems.append(f"The {label} is longer than {limit} characters.")
    try:
        validate_email(contact_email)
    except ValidationError:
        problems.append(f"“{contact_email}” is not an email address.")
    if website:
        try:
            URLValidator(schemes=["http", "https"])(website)
        except ValidationError:
            problems.append(f"“{website}” is not a website address (https://…).")
    if len(description or "") > 5_000:
        problems.append("The description is longer than 5,000 characters.")
    if (
        name
        and AcceleratorPartner.objects.filter(name__iexact=name)
        .exclude(status=AcceleratorPartner.Status.INACTIVE)
        .exists()
    ):
        problems.append(f"A program named “{name}” has applied already or is a partner.")
    if problems:
        raise CouponError(" ".join(problems))
    partner = AcceleratorPartner(
        name=name,
        website=website,
        contact_name=contact_name,
        contact_email=contact_email,
        description=(description or "").strip(),
        applied_on=as_of,
    )
    save_with_reason(partner, "Applied through the public form")
    return partner


def _locked_partner(partner) -> AcceleratorPartner:
    return AcceleratorPartner.objects.select_for_update().get(pk=partner.pk)


@transaction.atomic
def approve_partner(
    partner: AcceleratorPartner, *, by, as_of: date, credit_amount=None, note: str = ""
) -> AcceleratorPartner:
    """C7: an applied (or inactive) program becomes an active partner; optionally with its own
    startup-program credit amount. Its contact gets one email."""
    partner = _locked_partner(partner)
    if partner.status == AcceleratorPartner.Status.ACTIVE:
        raise CouponError(f"{partner.name} is already an active partner.")
    problems = []
    amount = _money(credit_amount, "credit amount", problems)
    if amount is not None and amount <= 0:
        problems.append(f"The partner's credit amount must be more than 0, not {amount}.")
    if problems:
        raise CouponError(" ".join(problems))
    partner.status = AcceleratorPartner.Status.ACTIVE
    partner.reviewed_by, partner.reviewed_on, partner.review_note = by, as_of, note.strip()
    if amount is not None:
        partner.credit_amount = amount
    save_with_reason(partner, f"Approved {note.strip()}".strip(), by=by)
    queue_email(
        kind="partner_approved",
        object_key=f"partner:{partner.pk}:{as_of}",
        to=partner.contact_email,
        template="partner_approved",
        context={"partner": partner},
    )
    return partner


@transaction.atomic
def decline_partner(partner: AcceleratorPartner, *, by, reason: str, as_of: date):
    """C7: an application is declined (the program becomes inactive), with a reason."""
    require_reason(
        reason, "Say why the application is declined: the reason is kept.", error=CouponError
    )
    partner = _locked_partner(partner)
    if partner.status != AcceleratorPartner.Status.APPLIED:
        raise CouponError(
            f"{partner.name} is {partner.get_status_display().lower()}, not an open application."
        )
    partner.status = AcceleratorPartner.Status.INACTIVE
    partner.reviewed_by, partner.reviewed_on, partner.review_note = by, as_of, reason.strip()
    save_with_reason(partner, f"Declined: {reason.strip()}", by=by)
    queue_email(
        kind="partner_declined",
        object_key=f"partner:{partner.pk}",
        to=partner.contact_email,
        template="partner_declined",
        context={"partner": partner},
    )
    return partner


@transaction.atomic
def deactivate_partner(partner: AcceleratorPartner, *, by, reason: str, as_of: date):
    """C7: an active partner becomes inactive; its coupons are switched off with it, and its
    credit amount no longer applies to new grants."""
    require_reason(
        reason, "Say why the partner is deactivated: the reason is kept.", error=CouponError
    )
    partner = _locked_partner(partner)
    if partner.status != AcceleratorPartner.Status.ACTIVE:
        raise CouponError(f"{partner.name} is not an active partner.")
    partner.status = AcceleratorPartner.Status.INACTIVE
    partner.reviewed_by, partner.reviewed_on, partner.review_note = by, as_of, reason.strip()
    save_with_reason(partner, f"Deactivated: {reason.strip()}", by=by)
    for coupon in partner.coupons.filter(active=True):
        coupon.active = False
        save_with_reason(coupon, f"Partner {partner.name} deactivated", by=by)
    return partner


PARTNER_DETAILS = ("name", "website", "contact_name", "contact_email", "description")


@transaction.atomic
def update_partner(partner: AcceleratorPartner, *, by, reason: str, **changes):
    """C7: staff correct a program's details or set its own startup credit amount (money: the
    why is required and kept)."""
    require_reason(
        reason, "Say why the partner's details change: the reason is kept.", error=CouponError
    )
    unknown = set(changes) - {*PARTNER_DETAILS, "credit_amount"}
    if unknown:
        raise CouponError(f"These are not partner details: {', '.join(sorted(unknown))}.")
    partner = _locked_partner(partner)
    problems = []
    for field in ("name", "contact_name"):
        if field in changes:
            changes[field] = (changes[field] or "").strip()
            if not changes[field]:
                problems.append(f"The {field.replace('_', ' ')} is required.")
    if "contact_email" in changes:
        try:
            validate_email(changes["contact_email"])
        except ValidationError:
            problems.append(f"“{changes['contact_email']}” is not an email address.")
    if changes.get("website"):
        try:
            URLValidator(schemes=["http", "https"])(changes["website"])
        except ValidationError:
            problems.append(f"“{changes['website']}” is not a website address (https://…).")
    if "credit_amount" in changes and changes["credit_amount"] is not None:
        amount = _money(changes["credit_amount"], "credit amount", problems)
        if amount is not None and amount <= 0:
            problems.append(f"The partner's credit amount must be more than 0, not {amount}.")
        changes["credit_amount"] = amount
    if problems:
        raise CouponError(" ".join(problems))
    for field, value in changes.items():
        setattr(partner, field, value)
    text = "Changed " + ", ".join(sorted(changes))
    save_with_reason(partner, f"{text}: {reason.strip()}", by=by)
    return partner


# G1–G3 live in `coupons.campaigns`, which runs the rules above; importable from here as well
# (resolved on first use, since that module imports this one).
_CAMPAIGN_SERVICES = {"campaign_audience", "create_campaign", "launch_campaign"}


def __getattr__(name):
    if name in _CAMPAIGN_SERVICES:
        from coupons import campaigns

        return getattr(campaigns, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
