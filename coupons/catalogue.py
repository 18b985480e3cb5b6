"""The coupon catalogue (SPEC C1, C8): creating and changing coupons, with the checks a form
runs as a dry run before it calls them. The seeded coupons (C8) come from a data migration."""

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction

from billing.amounts import parse_dollars
from billing.audit import changed_fields, save_with_reason, with_reason
from billing.clock import refuse_processed
from billing.contact_details import check_name
from billing.errors import refuse_dated_before, refuse_problems
from billing.formatting import day
from billing.months import day_problem
from billing.turns import take_turns
from coupons.credits import STARTUP_CODE
from coupons.errors import CouponError
from coupons.models import AcceleratorPartner, Campaign, Coupon, CouponSwitch
from coupons.nonprofit_proofs import NONPROFIT_CODE

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,39}$")
# What the coupon's counter column holds (a positive 32-bit integer).
MAX_REDEMPTIONS = 2_147_483_647
# A repeating coupon's longest run: a century (its column holds up to 32,767).
MAX_DURATION_MONTHS = 1_200


def coupon_by_code(code) -> Coupon | None:
    """The coupon with this code (typed in any case), or the coupon itself."""
    if isinstance(code, Coupon):
        return code
    return Coupon.objects.filter(code=str(code or "").strip().upper()).first()


def _percent(value, problems) -> Decimal | None:
    """C1: percent off as typed, more than 0 and at most 100 with at most two decimals (its
    column's); else None, with what is wrong in `problems`."""
    if value is None or value == "":
        return None
    try:
        percent = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        percent = None
    if percent is None or not percent.is_finite():
        problems.append(f"Percent off is a number more than 0 and at most 100, not “{value}”.")
    elif not 0 < percent <= 100:
        problems.append(f"Percent off must be more than 0 and at most 100, not {percent}.")
    elif percent != percent.quantize(Decimal("0.01")):
        problems.append(f"Percent off has at most two decimals (12.50), not {percent}.")
    else:
        return percent
    return None


def _check_values(kind, percent_off, amount_off, credit_amount, problems):
    before = len(problems)
    percent = _percent(percent_off, problems)
    amount = parse_dollars(amount_off, "amount off", problems, max_digits=10)
    credit = parse_dollars(credit_amount, "credit amount", problems)
    given = [v for v in (percent, amount, credit) if v is not None]
    if len(given) != 1 and len(problems) == before:
        problems.append(
            "A coupon has exactly one of percent off, amount off or (startup program only) "
            "a yearly credit amount."
        )
    if amount is not None and amount <= 0:
        problems.append(f"The amount off must be more than 0, not {amount}.")
    if credit is not None:
        if kind != Coupon.Kind.STARTUP_PROGRAM:
            problems.append("Only a startup-program coupon can grant a yearly credit amount.")
        if credit <= 0:
            problems.append(f"The credit amount must be more than 0, not {credit}.")
    return percent, amount, credit


def _check_redeem_by(day, problems):
    """The last day it may be redeemed: none, or a day within the years billed."""
    problem = day is not None and day_problem(day, "Its last day of redemption")
    if problem:
        problems.append(f"{problem}: leave it empty for a coupon without one.")


def _check_maximum(maximum, problems, *, coupon: Coupon | None = None):
    """The maximum redemptions: none, or a whole number from 1 (and from what the coupon was
    redeemed already) up to what its counter holds."""
    if maximum is None:
        return
    if not isinstance(maximum, int) or isinstance(maximum, bool) or maximum < 1:
        problems.append(f"The maximum redemptions must be 1 or more, not {maximum}.")
    elif maximum > MAX_REDEMPTIONS:
        problems.append(f"The maximum redemptions must be at most {MAX_REDEMPTIONS:,}.")
    elif coupon is not None and maximum < coupon.times_redeemed:
        problems.append(
            f"{coupon.code} has been redeemed {coupon.times_redeemed} time(s): the maximum "
            f"cannot be {maximum}."
        )


def _check_duration(duration, duration_months, problems):
    if duration not in Coupon.Duration.values:
        problems.append(f"“{duration}” is not a duration: use once, repeating or forever.")
        return None
    if duration == Coupon.Duration.REPEATING:
        if not isinstance(duration_months, int) or isinstance(duration_months, bool):
            problems.append("A repeating coupon needs its number of months (1 or more).")
        elif duration_months < 1:
            problems.append(f"A repeating coupon runs for 1 month or more, not {duration_months}.")
        elif duration_months > MAX_DURATION_MONTHS:
            problems.append(f"A repeating coupon runs for {MAX_DURATION_MONTHS:,} months at most.")
        return duration_months
    if duration_months not in (None, ""):
        problems.append("Only a repeating coupon has a number of months.")
    return None


def _check_follow_up(coupon: Coupon | None, follow_up, problems) -> Coupon | None:
    if follow_up in (None, ""):
        return None
    target = coupon_by_code(follow_up)
    if target is None:
        problems.append(f"There is no coupon “{follow_up}” to follow up with.")
        return None
    if target.is_credit or (coupon is not None and coupon.credit_amount is not None):
        problems.append("Follow-ups are discounts: a credit coupon neither has nor is one.")
    if target.kind == Coupon.Kind.NONPROFIT:
        problems.append(
            f"{target.code} cannot be a follow-up: a non-profit discount goes only with a proof "
            "support approved (C6), not to whoever a coupon ran out for."
        )
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
    name = check_name(name, "coupon name", problems, missing="The coupon needs a name.")
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
    _check_redeem_by(redeem_by, problems)
    _check_maximum(max_redemptions, problems)
    follow = _check_follow_up(Coupon(credit_amount=credit), follow_up, problems)
    if partner is not None and not isinstance(partner, AcceleratorPartner):
        problems.append("The partner must be an accelerator partner.")
    values = {
        "code": code,
        "name": name,
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
    # Two sent at once: the second waits for the first's commit and is told the code is taken.
    take_turns("coupon code", str(code or "").strip().upper())
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
    refuse_problems(problems, CouponError)
    coupon = Coupon(**values)
    save_with_reason(coupon, "Created", by=by)
    return coupon


# A coupon's fields as staff set them (`CouponForm` shows these); all but its code may change.
COUPON_FIELDS = (
    "code",
    "name",
    "kind",
    "percent_off",
    "amount_off",
    "credit_amount",
    "duration",
    "duration_months",
    "applies_monthly",
    "applies_annual",
    "redeem_by",
    "max_redemptions",
    "partner",
    "follow_up",
    "active",
)
COUPON_EDITABLE = set(COUPON_FIELDS) - {"code"}
# What may change once a coupon has been redeemed: never its discount (what workspaces got).
EDITABLE_AFTER_REDEMPTION = {"name", "active", "redeem_by", "max_redemptions", "partner"}
# C8: the seeded coupons are the programs' own, never a partner's.
SEEDED_CODES = (STARTUP_CODE, NONPROFIT_CODE)


def coupon_change_problems(coupon: Coupon, changes: dict) -> list[str]:
    """What `update_coupon` would refuse. Once redeemed, a coupon's discount (value, duration,
    intervals, kind and follow-up) is fixed: workspaces hold what they were given."""
    unknown = set(changes) - COUPON_EDITABLE
    if unknown:
        return [f"These coupon fields cannot be changed: {', '.join(sorted(unknown))}."]
    changed = {k: v for k, v in changes.items() if getattr(coupon, k) != v}
    if not changed:
        return []
    redeemed = discount_fixed_because(coupon) if coupon.pk else None
    if redeemed is not None:
        editable = EDITABLE_AFTER_REDEMPTION
        if coupon.is_credit:  # C7: its partner sets the credit of its startups' year two
            editable = editable - {"partner"}
        fixed = sorted(set(changed) - editable)
        if fixed:
            return [
                f"{redeemed}: its discount cannot change ({', '.join(fixed)}). Create a new "
                "coupon instead."
            ]
    problems = []
    merged = {f: changed.get(f, getattr(coupon, f)) for f in COUPON_EDITABLE}
    check_name(merged["name"], "coupon name", problems, missing="The coupon needs a name.")
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
    if coupon.pk and {"kind", "credit_amount"} & set(changed):
        _check_still_a_follow_up(coupon, merged, problems)
        announcing = list(Campaign.objects.filter(coupon=coupon).values_list("name", flat=True))
        if "kind" in changed and announcing:
            problems.append(
                f"{coupon.code} is the promotion of the campaign(s) {', '.join(announcing[:3])} "
                "(G1): it stays a promotion."
            )
    if merged["partner"] is not None and coupon.code in SEEDED_CODES:
        problems.append(
            f"{coupon.code} is the program's own coupon (C8): it belongs to no partner (a "
            "partner's startups get the partner's amount through the partner)."
        )
    _check_redeem_by(merged["redeem_by"], problems)
    _check_maximum(merged["max_redemptions"], problems, coupon=coupon)
    return problems


def discount_fixed_because(coupon: Coupon) -> str | None:
    """Why `coupon`'s discount is fixed, or None: it has been redeemed, or it is the follow-up
    (directly or down a chain) of a coupon that has. C5, D4: a workspace holding the leading
    coupon is promised its follow-up as it stands; the clock redeems it on the run-out day,
    and an edit made before a lagging clock got there would change invoices a daily clock
    had already priced (a follow-up edited from 5 % to 50 % after the day its lead ran out)."""
    if coupon.redemptions.exists():
        return f"{coupon.code} has been redeemed"
    seen, leading, steps = {coupon.pk}, [coupon.pk], 0
    while leading:
        leaders = Coupon.objects.filter(follow_up__in=leading).exclude(pk__in=seen)
        redeemed = leaders.filter(redemptions__isnull=False).values_list("code", flat=True)
        if code := redeemed.first():
            link = "the follow-up" if steps == 0 else "down the follow-ups"
            return f"{coupon.code} is {link} of {code}, which has been redeemed"
        leading = list(leaders.values_list("pk", flat=True))
        seen.update(leading)
        steps += 1
    return None


def _check_still_a_follow_up(coupon: Coupon, merged: dict, problems):
    """C5: a coupon others name as their follow-up stays one the system may apply."""
    leading = list(Coupon.objects.filter(follow_up=coupon).values_list("code", flat=True)[:3])
    changed = Coupon(kind=merged["kind"], credit_amount=merged["credit_amount"])
    if leading and not changed.can_follow_up:
        problems.append(
            f"{coupon.code} is the follow-up of {', '.join(leading)}: it stays a discount the "
            "system may apply when they run out."
        )


@transaction.atomic
def update_coupon(
    coupon: Coupon, *, by, reason: str = "", as_of: date | None = None, **changes
) -> Coupon:
    """Change a coupon (see `coupon_change_problems` for what may change). Switching it on or
    off is dated `as_of` (D3: see `switch_coupon`)."""
    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    problems = coupon_change_problems(coupon, changes)
    refuse_problems(problems, CouponError)
    changed = {k: v for k, v in changes.items() if getattr(coupon, k) != v}
    if not changed:
        return coupon
    if "active" in changed:
        if as_of is None:
            raise CouponError("Say from which day the coupon is switched on or off (as_of).")
        switch_coupon(coupon, changed["active"], as_of=as_of)
    for field, value in changed.items():
        setattr(coupon, field, value)
    switched = f"active (switched {'on' if changed.get('active') else 'off'} from {day(as_of)})"
    text = changed_fields(Coupon, changed, active=switched)
    save_with_reason(coupon, with_reason(text, reason), by=by)
    return coupon


def switch_coupon(coupon: Coupon, active: bool, *, as_of: date) -> None:
    """D2, D3: switch a locked `coupon` on or off from `as_of`, kept as a dated row; the caller
    saves the coupon with its why. Not on a day the clock has processed (its follow-ups were
    decided by the coupon as it was then), nor before the coupon's last switch."""
    what = f"Switching {coupon.code} {'on' if active else 'off'}"
    refuse_processed(as_of, what, past_a_close=True)
    last = coupon.switches.order_by("-on", "-id").values_list("on", flat=True).first()
    if last is not None:
        refuse_dated_before(as_of, last, what, "its last switch", error=CouponError)
    coupon.active = active
    CouponSwitch.objects.create(coupon=coupon, on=as_of, active=active)
