from datetime import date
from decimal import Decimal

from billing import services
from billing.models import Invoice

from .factories import workspace


def test_m4_worked_example_trial_then_monthly(db):
    ws = workspace(as_of=date(2026, 1, 5), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 10))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=14_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=12_500)
    services.run_billing(as_of=date(2026, 3, 1))
    jan, feb = Invoice.objects.order_by("issue_date")
    assert (jan.issue_date, jan.period_start, jan.period_end) == (
        date(2026, 2, 1),
        date(2026, 1, 24),
        date(2026, 2, 1),
    )
    assert jan.total == Decimal("30.97")
    assert feb.total == Decimal("145.00")
    assert [line.amount for line in feb.lines.all()] == [Decimal("120.00"), Decimal("25.00")]
    assert jan.number == "INV-2026-000001" and feb.number == "INV-2026-000002"
