"""The plans' terms (SPEC P1, P2): prices and allowances live in the database and finance edits
them here, within bounds, with the why kept (R4)."""

from decimal import Decimal, InvalidOperation

from django.db import transaction

from billing.audit import require_reason, save_with_reason
from billing.errors import BillingError, refuse_problems
from billing.models import Plan

# What finance may change, with the bounds a typo cannot pass.
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


def _checked(plan: Plan, field: str, value, problems: list[str]):
    label = Plan._meta.get_field(field).verbose_name
    if field == "name":
        if not str(value or "").strip():
            problems.append("The plan needs a name.")
        return str(value or "").strip()
    if field == "bills_overage":
        return bool(value)
    if value is None:
        if Plan._meta.get_field(field).null:
            return None
        problems.append(f"The {label} is required.")
        return None
    low, high = PLAN_TERMS[field]
    try:
        value = type(low)(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"The {label} must be a number, not “{value}”.")
        return None
    if not low <= value <= high:
        problems.append(f"The {label} must be between {low} and {high:,}, not {value}.")
    if plan.code == Plan.Code.FREE and field.endswith("_price") and value:
        problems.append("The Free plan costs nothing (P1): its prices stay 0.00.")
    return value


@transaction.atomic
def update_plan(plan: Plan, *, by, reason: str, **terms) -> Plan:
    """Change a plan's terms (any of PLAN_TERMS). Invoices issued before keep their figures;
    month closes run after the change use the new terms."""
    require_reason(reason, "Say why the plan's terms change: the reason is kept.")
    unknown = set(terms) - set(PLAN_TERMS)
    if unknown:
        raise BillingError(f"These are not plan terms: {', '.join(sorted(unknown))}.")
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    problems: list[str] = []
    for field, value in terms.items():
        setattr(plan, field, _checked(plan, field, value, problems))
    refuse_problems(problems)
    save_with_reason(plan, f"Terms changed: {reason.strip()}", by=by)
    return plan
