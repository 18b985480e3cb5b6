"""Finance's startup-credit report: granted, used, lapsed and outstanding (CR1–CR3)."""

from datetime import date, timedelta
from decimal import Decimal as D

from django.urls import reverse
from django.utils import timezone

from billing import services as billing
from coupons import reports
from coupons.services import grant_credits
from tests.billing.factories import workspace


def _member(as_of):
    ws = workspace(as_of=as_of, card=True)
    grant_credits(ws, amount=D("25000.00"), as_of=as_of, year=1, by=None)
    billing.change_to_team(ws, as_of=as_of)
    billing.change_to_free(ws, as_of=as_of)
    billing.change_to_team(ws, as_of=as_of)  # paid at once, monthly
    return ws


def test_cr2_cr3_report_adds_up_grants_draws_lapses_and_what_is_left(db):
    _member(date(2026, 1, 1))
    # Eleven invoices draw 120.00; December's, dated 2027-01-01, is past the grant (CR2).
    billing.run_billing(as_of=date(2027, 1, 2))
    rows = {
        row["month"]: row
        for row in reports.credit_movements(start=date(2026, 1, 1), end=date(2027, 2, 1))
    }
    assert rows[date(2026, 1, 1)]["granted"] == D("25000.00")
    assert sum(row["drawn"] for row in rows.values()) == D("1320.00")
    assert rows[date(2027, 1, 1)]["lapsed"] == D("23680.00")
    assert reports.outstanding(as_of=date(2027, 1, 2))["outstanding"] == D("0.00")
    assert reports.outstanding(as_of=date(2026, 6, 15)) == {
        "grants": 1,
        "granted": D("25000.00"),
        "outstanding": D("25000.00") - 5 * D("120.00"),
    }


def test_credit_report_page_is_finance_only(client, db, support, finance):
    _member(timezone.now().date() - timedelta(days=40))
    url = reverse("credits:liability")
    client.force_login(support)
    assert client.get(url).status_code == 403
    client.force_login(finance)
    page = client.get(url).content.decode()
    assert "of credit still to be drawn (of $25,000.00 granted on them)" in page
