"""The startup-credit liability report for finance (issue: tax and finance): what was granted,
drawn by invoices, given back by voided ones, lapsed at a year's end, and what is still
outstanding."""

from datetime import date

from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth

from billing.pricing import ZERO, round_cents
from coupons.models import CreditGrant, CreditLedgerEntry


def credit_movements(*, start: date, end: date) -> list[dict]:
    """Per month in [start, end): credit granted, drawn, given back by voided invoices (I3) and
    lapsed (ledger amounts, positive)."""
    Kind = CreditLedgerEntry.Kind
    rows = (
        CreditLedgerEntry.objects.filter(on__gte=start, on__lt=end)
        .annotate(month=TruncMonth("on"))
        .values("month")
        .annotate(
            granted=Sum("amount", filter=Q(kind=Kind.GRANT)),
            drawn=Sum("amount", filter=Q(kind=Kind.DRAW)),
            returned=Sum("amount", filter=Q(kind=Kind.RETURN)),
            lapsed=Sum("amount", filter=Q(kind=Kind.LAPSE)),
        )
        .order_by("month")
    )
    return [
        {
            "month": row["month"],
            "granted": round_cents(abs(row["granted"] or ZERO)),
            "drawn": round_cents(abs(row["drawn"] or ZERO)),
            "returned": round_cents(abs(row["returned"] or ZERO)),
            "lapsed": round_cents(abs(row["lapsed"] or ZERO)),
        }
        for row in rows
    ]


def outstanding(*, as_of: date) -> dict:
    """The liability on `as_of`: credit left that day on the grants valid that day, from the
    ledger as it stood then (so a past date reads as it was, before later draws and lapses)."""
    valid = CreditGrant.objects.valid_on(as_of)
    left = CreditLedgerEntry.objects.filter(grant__in=valid, on__lte=as_of).aggregate(
        left=Sum("amount")
    )["left"]
    return {
        "grants": valid.count(),
        "granted": round_cents(valid.aggregate(granted=Sum("amount"))["granted"] or ZERO),
        "outstanding": round_cents(left or ZERO),
    }
