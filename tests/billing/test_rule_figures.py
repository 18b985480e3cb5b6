"""Rules whose other tests left some of their figures unstated (P1, K1 with M3, D2 for each
kind of dated change, T5 with K2), each with its figures."""

import re
from datetime import date
from decimal import Decimal as D

import pytest

from billing import services
from billing.errors import BillingError
from billing.models import Invoice, Strike
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import CreditGrant
from startups import services as startups
from tests.billing.factories import certificate, paid_monthly, workspace
from tests.startups.factories import application


def test_p1_free_workspace_over_its_1000_mtus_is_never_invoiced(db):
    """P1: Free costs $0 and bills no overage. A Free workspace reporting 50,000 MTUs for
    January and 2,000 for February gets no invoice at the closes of 1 February and 1 March
    (0 invoices); it gets the F1 strikes instead (2: January and February)."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=50_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=2_000)
    services.run_billing(as_of=date(2026, 3, 1))
    assert Invoice.objects.filter(workspace=ws).count() == 0
    assert list(
        Strike.objects.filter(workspace=ws).order_by("month").values_list("month", flat=True)
    ) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert workspace_status(ws, as_of=date(2026, 3, 1))["plan"] == "free"


def test_k1_m3_a_final_invoice_in_a_month_with_trial_days_bills_no_overage(db):
    """K1 with M3's trial rule: a trial from 2026-01-01 ends 2026-01-15 (card on file) and turns
    paid; cancelled on 2026-01-20 with 20,000 MTUs reported for January. The final invoice is
    dated 2026-01-20, covers 15..19 January (5 paid days): base 120 × 5/31 = 19.35, and no
    overage (January had trial days), total 19.35. No January month-close invoice follows."""
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 19))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=20_000)
    services.change_to_free(ws, as_of=date(2026, 1, 20))
    services.run_billing(as_of=date(2026, 2, 1))
    invoices = list(Invoice.objects.filter(workspace=ws).order_by("issue_date", "id"))
    assert [(i.kind, i.issue_date, i.period_start, i.period_end) for i in invoices] == [
        ("final", date(2026, 1, 20), date(2026, 1, 15), date(2026, 1, 20))
    ]
    final = invoices[0]
    assert [(line.kind, line.amount) for line in final.lines.all()] == [("base", D("19.35"))]
    assert (final.overage_mtus, final.total) == (0, D("19.35"))
    assert workspace_status(ws, as_of=date(2026, 1, 20))["plan"] == "free"


@pytest.fixture
def private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.MEDIA_ROOT = tmp_path / "media"


def test_d2_interval_grant_unlock_application_and_certificate_decisions_on_a_processed_day(
    db, support, reviewer, finance, private_media
):
    """D2: once the clock has processed every day through 2026-01-31, an interval change, a
    credit grant ($500.00), an unlock, an application approval or rejection and a certificate
    approval or rejection dated 2026-01-31 (or 2026-01-15) are each refused, naming
    2026-01-31 and offering 2026-02-01; nothing is written (0 grants, still locked, application
    still submitted, certificate still submitted). Dated 2026-02-01, the unlock goes through."""
    paid = paid_monthly(date(2025, 12, 1))
    free = workspace(as_of=date(2025, 12, 1))
    services.record_usage(free, month=date(2025, 12, 1), mtus=2_000)  # F1 strike → locked
    app = application(workspace=paid, as_of=date(2026, 1, 20))
    cert = certificate(paid, "CA", on=date(2026, 1, 5))
    services.run_billing(as_of=date(2026, 1, 31))
    free.refresh_from_db()
    assert free.lock == "locked"
    message = "31 Jan 2026.*1 Feb 2026"
    attempts = {
        "interval": lambda: services.change_interval(
            paid, interval="annual", as_of=date(2026, 1, 31)
        ),
        "grant": lambda: coupons.grant_credits(
            paid, amount="500.00", as_of=date(2026, 1, 15), year=1, by=support, reason="Goodwill"
        ),
        "unlock": lambda: services.unlock_workspace(
            free, by=support, reason="Pipeline bug", as_of=date(2026, 1, 31)
        ),
        "approve": lambda: startups.approve_application(
            app, by=reviewer, as_of=date(2026, 1, 31), credits_scope_confirmed=True
        ),
        "reject": lambda: startups.reject_application(
            app, by=reviewer, reason="Too late", as_of=date(2026, 1, 31)
        ),
        "approve certificate": lambda: services.approve_exemption(
            cert, by=finance, as_of=date(2026, 1, 31)
        ),
        "reject certificate": lambda: services.reject_exemption(
            cert, by=finance, reason="Expired", as_of=date(2026, 1, 31)
        ),
    }
    let_through = []
    for what, attempt in attempts.items():
        try:
            attempt()
        except BillingError as refused:
            if not re.search(message, str(refused)):
                let_through.append(f"{what}: refused for another reason: {refused}")
        else:
            let_through.append(f"{what}: accepted")
    assert let_through == []
    free.refresh_from_db()
    app.refresh_from_db()
    cert.refresh_from_db()
    assert (CreditGrant.objects.filter(workspace=paid).count(), free.lock) == (0, "locked")
    assert (app.status, cert.status) == ("submitted", "submitted")
    services.unlock_workspace(free, by=support, reason="Pipeline bug", as_of=date(2026, 2, 1))
    free.refresh_from_db()
    assert free.lock == "unlocked"


def test_t5_k2_cancelling_an_annual_trial_is_never_charged(db):
    """T5 with K2: an annual Team trial from 2026-01-10 (end date 2026-01-24) cancelled on
    2026-01-20 with 50,000 MTUs reported is never charged: no $1,440.00 annual invoice on
    2026-01-24 and no overage invoice on 2026-02-01 — 0 invoices through 2026-03-01."""
    ws = workspace(as_of=date(2026, 1, 10), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 10))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=50_000)
    services.change_to_free(ws, as_of=date(2026, 1, 20))
    services.run_billing(as_of=date(2026, 3, 1))
    assert Invoice.objects.filter(workspace=ws).count() == 0
    assert workspace_status(ws, as_of=date(2026, 1, 24))["plan"] == "free"
