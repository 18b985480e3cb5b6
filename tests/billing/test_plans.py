"""P1, P2: the plans are data seeded by a migration, editable by finance only."""

from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing.errors import BillingError
from billing.models import Plan
from billing.services import update_plan


def test_p1_free_plan_seeded(db):
    free = Plan.objects.get(code="free")
    assert (free.monthly_price, free.included_mtus, free.bills_overage) == (D("0.00"), 1000, False)


def test_p2_team_plan_seeded_with_its_figures(db):
    team = Plan.objects.get(code="team")
    assert (team.monthly_price, team.annual_price) == (D("120.00"), D("1440.00"))
    assert (team.included_mtus, team.overage_rate, team.bills_overage) == (
        10_000,
        D("0.0100"),
        True,
    )
    assert (team.seats, team.warehouse_syncs_per_day, team.trial_days) == (10, 2, 14)


def test_p2_finance_edits_the_price_list_support_only_reads(client, db, finance, support):
    team = Plan.objects.get(code="team")
    url = reverse("admin:billing_plan_change", args=[team.pk])
    form = {
        "name": "Team",
        "monthly_price": "125.00",
        "annual_price": "1500.00",
        "included_mtus": "10000",
        "overage_rate": "0.01",
        "bills_overage": "on",
        "seats": "10",
        "warehouse_syncs_per_day": "2",
        "trial_days": "14",
        "change_reason": "Price review for 2027",
    }
    client.force_login(support)
    assert client.post(url, form).status_code == 403
    client.force_login(finance)
    # R4: the why is asked for and an empty one refused.
    refused = client.post(url, {**form, "change_reason": "  "})
    assert refused.status_code == 200
    assert "Say why: the reason is kept in the history." in refused.content.decode()
    team.refresh_from_db()
    assert team.monthly_price == D("120.00")
    assert client.post(url, form).status_code == 302
    team.refresh_from_db()
    assert team.monthly_price == D("125.00")
    latest = team.history.first()
    assert latest.history_user == finance
    assert latest.history_change_reason == "Terms changed: Price review for 2027"


def test_p1_plan_terms_have_bounds_and_free_stays_free(db, finance):
    team, free = Plan.objects.get(code="team"), Plan.objects.get(code="free")
    with pytest.raises(BillingError, match="between 0 and 100,000"):
        update_plan(team, by=finance, reason="typo", monthly_price=D("1200000"))
    with pytest.raises(BillingError, match="Free plan costs nothing"):
        update_plan(free, by=finance, reason="test", monthly_price=D("5.00"))
    with pytest.raises(BillingError, match="Say why"):
        update_plan(team, by=finance, reason="", included_mtus=20_000)
    team.refresh_from_db()
    assert (team.monthly_price, team.included_mtus) == (D("120.00"), 10_000)


def test_p2_an_allowance_up_to_the_bound_is_stored_as_given(db, finance):
    """The bound is the largest month usage can report (10,000,000,000 MTUs); the column held
    2,147,483,647 at most on PostgreSQL, and 3,000,000,000 crashed finance's plan page."""
    team = Plan.objects.get(code="team")
    for allowance in (3_000_000_000, 10_000_000_000):
        update_plan(team, by=finance, reason="Enterprise allowance", included_mtus=allowance)
        team.refresh_from_db()
        assert team.included_mtus == allowance
    with pytest.raises(BillingError):
        update_plan(team, by=finance, reason="Typo", included_mtus=10_000_000_001)
