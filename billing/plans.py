"""The plans' terms (SPEC P1, P2): prices and allowances live in the database as dated rows and
finance changes them here, from a day on, within bounds, with the why kept (R4), or withdraws
terms not in force yet."""

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models.functions import Coalesce

from billing.audit import require_reason, save_with_reason
from billing.clock import (
    clock_days,
    hold_every_dated_change,
    refuse_processed,
    refuse_too_far_ahead,
)
from billing.errors import BillingError, refuse_problems
from billing.formatting import day
from billing.models import Plan, PlanTerms, Workspace
from billing.months import EARLIEST_MONTH, LAST_DAY

# What finance may change, with the bounds a typo cannot pass. The name is a label, not dated;
# the rest are the plan's terms (PlanTerms), changed from a day on.
PLAN_TERMS = {
    "name": None,
    "monthly_price": (Decimal("0"), Decimal("100000.00")),
    "annual_price": (Decimal("0"), Decimal("1200000.00")),
    "included_mtus": (0, 10_000_000_000),
    "overage_rate": (Decimal("0"), Decimal("100.0000")),
    "bills_overage": None,
    "seats": (1, 100_000),
    "warehouse_syncs_per_day": (0, 10_000),
    "trial_days": (0, 90),
}
DATED_TERMS = [field for field in PLAN_TERMS if field != "name"]


def _checked(plan: Plan, field: str, value, problems: list[str]):
    given = value
    if field == "name":
        if not str(value or "").strip():
            problems.append("The plan needs a name.")
        return str(value or "").strip()
    label = PlanTerms._meta.get_field(field).verbose_name
    if field == "bills_overage":
        return bool(value)
    if value is None:
        if PlanTerms._meta.get_field(field).null:
            return None
        problems.append(f"The {label} is required.")
        return None
    low, high = PLAN_TERMS[field]
    try:
        value = type(low)(str(value).strip())
    except (InvalidOperation, ValueError):
        value = None
    if value is None or (isinstance(value, Decimal) and not value.is_finite()):
        problems.append(f"The {label} must be a number, not “{given}”.")
        return None
    places = getattr(PlanTerms._meta.get_field(field), "decimal_places", None)
    if places is not None and value != value.quantize(Decimal(1).scaleb(-places)):
        # Stored, it would be rounded by the database (and each rounds its own way).
        problems.append(f"The {label} has at most {places} decimals, not {value}.")
        return None
    if not low <= value <= high:
        problems.append(f"The {label} must be between {low} and {high:,}, not {value}.")
    if plan.code == Plan.Code.FREE and field.endswith("_price") and value:
        problems.append("The Free plan costs nothing (P1): its prices stay 0.00.")
    return value


def _refuse_out_of_bounds(plan: Plan, effective_on: date) -> None:
    """Terms start within the years billed (I6; before the clock's first day D2 refuses no
    day, and terms dated 0001-01-01, their day, rewrote the terms "from the start" in place),
    and at most two years after the clock's next day (`refuse_too_far_ahead`): a year typed
    wrong is refused rather than entered ahead of every later change, which would then be
    refused as out of date order."""
    what = f"A change of {plan}'s terms dated {day(effective_on)} is refused"
    if effective_on < EARLIEST_MONTH:
        raise BillingError(
            f"{what}: it is outside the years this system bills (2000 to 2099), and {plan}'s "
            "terms from the start are not rewritten. Date new terms from the day they apply."
        )
    refuse_too_far_ahead(effective_on, what, things="terms", them="them")
    if effective_on > LAST_DAY:  # before the clock's first day: no next day to count from
        raise BillingError(f"{what}: it is outside the years this system bills (2000 to 2099).")


def _refuse_out_of_order(plan: Plan, effective_on: date) -> None:
    """D4: terms dated on or before what was entered already for a later day would rewrite it
    in one order of entry and not in the other: terms dated before a plan's later terms, and
    terms dated on or before a workspace's sign-up or change entered ahead of the clock (which
    may have read them: a trial's length, an annual price, a final invoice, the Free allowance
    a trial-ended email states). Refused, naming it."""
    what = f"A change of {plan}'s terms dated {day(effective_on)} is refused"
    later = plan.terms.filter(effective_on__gt=effective_on).order_by("effective_on").first()
    if later is not None:
        raise BillingError(
            f"{what}: its terms from {day(later.effective_on)} were entered already, and a plan's "
            "terms are entered in date order."
        )
    ahead = _entered_ahead(effective_on)
    if ahead is not None:
        name, dated_to = ahead
        raise BillingError(
            f"{what}: a change to {name} dated {dated_to} was entered already, ahead of the "
            f"billing clock, and may have read them. Date them {dated_to + timedelta(days=1)} "
            "or later."
        )


def _entered_ahead(day: date) -> tuple[str, date] | None:
    """(workspace name, day) of the latest sign-up or change dated `day` or later, entered
    ahead of the clock: it may have read the terms in force on `day`."""
    return (
        Workspace.objects.annotate(dated_to=Coalesce("changes_dated_to", "created_on"))
        .filter(dated_to__gte=day)
        .order_by("-dated_to")
        .values_list("name", "dated_to")
        .first()
    )


@transaction.atomic
def update_plan(plan: Plan, *, by, reason: str, effective_on: date | None = None, **terms) -> Plan:
    """Change a plan's name, or its terms (the rest of PLAN_TERMS) from `effective_on` on: the
    terms in force that day, with the changes, apply from it until the plan's next terms start
    (terms changed twice for one day are that day's terms). Issued invoices keep their figures;
    a month is billed at the terms in force on its first day (`PlanTerms`).

    Refused (D2) dated a day the clock processed, outside the years billed or more than two
    years ahead of the clock (`_refuse_out_of_bounds`), and (D4) out of date order or dated on
    or before a change entered ahead of the clock (`_refuse_out_of_order`); it takes turns
    with every dated change, which may read the terms."""
    require_reason(reason, "Say why the plan's terms change: the reason is kept.")
    unknown = set(terms) - set(PLAN_TERMS)
    if unknown:
        raise BillingError(f"These are not plan terms: {', '.join(sorted(unknown))}.")
    if set(terms) - {"name"}:
        hold_every_dated_change()  # first: a dated change may hold the clock and need the plan
    plan = Plan.objects.select_for_update(no_key=True).get(pk=plan.pk)
    problems: list[str] = []
    checked = {field: _checked(plan, field, value, problems) for field, value in terms.items()}
    refuse_problems(problems)
    reason = f"Terms changed: {reason.strip()}"
    name = checked.pop("name", plan.name)
    if name != plan.name:
        plan.name = name
        save_with_reason(plan, reason, by=by)
    if not checked:
        return plan
    if effective_on is None:
        raise BillingError(f"Say from which day {plan}'s new terms apply.")
    refuse_processed(effective_on, f"A change of {plan}'s terms", past_a_close=True)
    _refuse_out_of_bounds(plan, effective_on)
    _refuse_out_of_order(plan, effective_on)
    in_force = PlanTerms.objects.of(effective_on, plan=plan)
    if in_force.effective_on != effective_on:
        in_force.pk, in_force.effective_on = None, effective_on  # a new row from that day
    for field, value in checked.items():
        setattr(in_force, field, value)
    save_with_reason(in_force, reason, by=by)
    return plan


def withdrawal_refusal(terms: PlanTerms) -> str:
    """Why `terms` cannot be withdrawn, or "". Withdrawn as they could be entered (D2, D4), so
    that nothing has read them: dated after every day the clock has processed or is processing,
    the plan's latest (later terms were entered from them and carry what they changed), and
    after every sign-up or change entered ahead of the clock. The terms "from the start" stay:
    a plan has terms on every day."""
    if terms.effective_on == date.min:
        return (
            f"{terms.plan}'s terms from the start are not withdrawn: they apply until its first "
            "dated terms. Enter new terms from a day to change them."
        )
    last, processing = clock_days()
    if (
        processing is not None
        and terms.effective_on <= processing
        and (last is None or processing > last)
    ):
        return f"{terms} are in force: the billing clock is processing {day(processing)} now."
    if last is not None and terms.effective_on <= last:
        return (
            f"{terms} are in force: the billing clock has processed every day through {day(last)}. "
            f"Enter new terms from {day(last + timedelta(days=1))} to change them."
        )
    later = terms.plan.terms.filter(effective_on__gt=terms.effective_on).order_by("effective_on")
    later = later.values_list("effective_on", flat=True).first()
    if later is not None:
        return (
            f"{terms} are not withdrawn: {terms.plan}'s terms from {later} were entered after "
            "them, from them; withdraw those first."
        )
    ahead = _entered_ahead(terms.effective_on)
    if ahead is not None:
        name, dated_to = ahead
        return (
            f"{terms} are not withdrawn: a change to {name} dated {dated_to} was entered "
            "already, ahead of the billing clock, and may have read them."
        )
    return ""


@transaction.atomic
def withdraw_plan_terms(terms: PlanTerms, *, by, reason: str) -> Plan:
    """P1, P2, R4: withdraw a plan's terms not in force yet (a day or a figure typed wrong, a
    change called off): the terms before them apply on. Refused where they could not be
    entered now (`withdrawal_refusal`); it takes turns with every dated change, as
    `update_plan` does, so a change entered meanwhile reads the terms left. The terms' history
    keeps them, with who withdrew them, when and why."""
    require_reason(reason, "Say why the terms are withdrawn: the reason is kept.")
    hold_every_dated_change()  # first, as update_plan: a dated change may hold the clock
    plan = Plan.objects.select_for_update(no_key=True).get(pk=terms.plan_id)
    current = plan.terms.filter(pk=terms.pk).first()
    if current is None:
        raise BillingError(f"{plan}'s terms from {day(terms.effective_on)} were withdrawn already.")
    refusal = withdrawal_refusal(current)
    if refusal:
        raise BillingError(refusal)
    current._change_reason = f"Terms withdrawn: {reason.strip()}"
    current._history_user = by
    current.delete()
    return plan
