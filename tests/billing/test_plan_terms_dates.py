"""P1, P2, D2, D4: the day a plan's terms apply from is a day the billing clock will reach, and
not so far ahead that a typo of the year passes; the terms "from the start" are never dated."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.models import Plan, PlanTerms
from billing.services import update_plan
from tests.billing.factories import team_terms_form, workspace


def team():
    return Plan.objects.get(code="team")


def _price(day, price="150.00"):
    return {"effective_on": day, "monthly_price": price}


def test_p2_d4_terms_two_years_past_the_clocks_next_day_are_refused(db, finance):
    """The clock has processed through 10 March 2026: its next day is 11 March, and terms may
    start on 11 March 2028 at the latest. 9999-12-31 (a year typed wrong) was accepted, and then
    every terms change before it was refused ('its terms from 9999-12-31 were entered already')
    with no way to take it back. It is refused, saying the latest day; 11 March 2028 is taken."""
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 10))
    for day in (date(9999, 12, 31), date(2028, 3, 12)):
        with pytest.raises(BillingError, match="date them 11 Mar 2028 at the latest"):
            update_plan(team(), by=finance, reason="Typo", **_price(day))
    assert team().terms.count() == 1
    update_plan(team(), by=finance, reason="2026 prices", **_price(date(2026, 6, 1)))
    update_plan(team(), by=finance, reason="2028 prices", **_price(date(2028, 3, 11), "180.00"))
    assert [(t.effective_on, t.monthly_price) for t in team().terms.order_by("effective_on")] == [
        (date.min, D("120.00")),
        (date(2026, 6, 1), D("150.00")),
        (date(2028, 3, 11), D("180.00")),
    ]


def test_p2_before_the_clocks_first_day_terms_stay_within_the_years_billed(db, finance):
    """Before the clock's first day there is no next day to count from: terms are dated within
    the years this system bills (I6: 2000 to 2099). 9999-12-31 was accepted."""
    with pytest.raises(BillingError, match=r"outside the years this system bills \(2000 to 2099\)"):
        update_plan(team(), by=finance, reason="Typo", **_price(date(9999, 12, 31)))
    assert team().terms.count() == 1
    update_plan(team(), by=finance, reason="2027 prices", **_price(date(2027, 1, 1)))
    assert PlanTerms.objects.of(date(2027, 1, 1), plan=team()).monthly_price == D("150.00")


@pytest.mark.parametrize("day", [date.min, date(1999, 12, 31)])
def test_p2_the_terms_from_the_start_are_not_rewritten(db, finance, day):
    """Before the clock's first day and any sign-up, terms dated 0001-01-01 (the day of the
    terms "from the start") rewrote those terms in place: Team cost 150.00 from the start, with
    nothing dated to say it changed. Terms dated before 2000 (I6) are refused, and the terms
    from the start stay 120.00."""
    with pytest.raises(BillingError, match="terms from the start are not rewritten"):
        update_plan(team(), by=finance, reason="Typo", **_price(day))
    (start,) = team().terms.all()
    assert (start.effective_on, start.monthly_price) == (date.min, D("120.00"))


def test_p2_the_plan_page_says_why_a_day_too_far_ahead_is_refused(client, finance, pin_today):
    """The form is the service's: the plan's page shows its refusal and keeps what was typed."""
    pin_today(date(2026, 3, 11))
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 10))
    client.force_login(finance)
    response = client.post(
        reverse("admin:billing_plan_change", args=[team().pk]),
        team_terms_form(monthly_price="150.00", effective_on="9999-12-31"),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "dated 31 Dec 9999 is refused" in html and "date them 11 Mar 2028 at the latest" in html
    assert 'name="monthly_price" value="150.00"' in html
    assert team().terms.count() == 1
