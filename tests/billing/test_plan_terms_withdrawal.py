"""P1, P2, D4, R4: a plan's terms not in force yet are withdrawn, with the why kept, as they were
entered: only the plan's latest terms, dated after the clock's last processed day and after
every change entered ahead of the clock (none of which may have read them)."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.models import Plan, PlanTerms
from billing.services import update_plan, withdraw_plan_terms
from tests.billing.factories import workspace


def team():
    return Plan.objects.get(code="team")


def price_from(finance, day, price="150.00"):
    update_plan(team(), by=finance, reason="Price review", effective_on=day, monthly_price=price)
    return team().terms.get(effective_on=day)


def prices():
    return [(t.effective_on, t.monthly_price) for t in team().terms.order_by("effective_on")]


def test_p2_r4_terms_mistyped_for_a_later_year_are_withdrawn_with_the_why_kept(db, finance):
    """150.00 from 1 June 2027, meant for 1 June 2026, with the clock through 10 March 2026:
    terms for 2026 were refused behind them ('its terms from 2027-06-01 were entered already')
    and nothing took them back. Withdrawn, Team is 120.00 again on 1 June 2027, the history
    says who withdrew them and why, and the 2026 terms are entered."""
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 10))
    typo = price_from(finance, date(2027, 6, 1))
    with pytest.raises(BillingError, match="its terms from 1 Jun 2027 were entered already"):
        price_from(finance, date(2026, 6, 1))

    withdraw_plan_terms(typo, by=finance, reason="Typed 2027 for 2026")

    assert PlanTerms.objects.of(date(2027, 6, 1), plan=team()).monthly_price == D("120.00")
    withdrawn = PlanTerms.history.filter(id=typo.pk).latest("history_date")
    assert withdrawn.history_type == "-" and withdrawn.history_user == finance
    assert withdrawn.history_change_reason == "Terms withdrawn: Typed 2027 for 2026"
    assert (withdrawn.effective_on, withdrawn.monthly_price) == (date(2027, 6, 1), D("150.00"))
    price_from(finance, date(2026, 6, 1))
    assert prices() == [(date.min, D("120.00")), (date(2026, 6, 1), D("150.00"))]


def test_p2_d2_terms_in_force_are_not_withdrawn(db, finance):
    """150.00 from 5 March 2026, entered with the clock at 1 March; the clock then processed
    through 10 March, billing by them: refused, naming the last processed day. So are the
    terms from the start."""
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    in_force = price_from(finance, date(2026, 3, 5))
    services.run_billing(as_of=date(2026, 3, 10))
    with pytest.raises(BillingError, match="processed every day through 10 Mar 2026"):
        withdraw_plan_terms(in_force, by=finance, reason="Too late")
    start = team().terms.get(effective_on=date.min)
    with pytest.raises(BillingError, match="terms from the start are not withdrawn"):
        withdraw_plan_terms(start, by=finance, reason="Never")
    assert prices() == [(date.min, D("120.00")), (date(2026, 3, 5), D("150.00"))]


def test_d4_terms_with_later_terms_are_withdrawn_after_those(db, finance):
    """150.00 from 1 June, 160.00 from 1 July 2026 (entered from June's, so they carry what June
    changed): June's are refused while July's stand, which are withdrawn first."""
    june = price_from(finance, date(2026, 6, 1))
    july = price_from(finance, date(2026, 7, 1), "160.00")
    with pytest.raises(BillingError, match="terms from 2026-07-01 were entered after them"):
        withdraw_plan_terms(june, by=finance, reason="Wrong order")
    withdraw_plan_terms(july, by=finance, reason="Not yet")
    withdraw_plan_terms(june, by=finance, reason="Not at all")
    assert prices() == [(date.min, D("120.00"))]


def test_d4_terms_a_change_entered_ahead_of_the_clock_may_have_read_are_not_withdrawn(db, finance):
    """With the clock through 1 April 2026, 30-day trials from 10 April, then a move to Team
    dated 20 April entered ahead of the clock: a trial to 20 May. Withdrawn, the terms would
    say 14 days under that 30-day trial: refused, naming the move."""
    ws = workspace(as_of=date(2026, 1, 1), card=True, name="Early")
    services.run_billing(as_of=date(2026, 4, 1))
    update_plan(team(), by=finance, reason="Trials", effective_on=date(2026, 4, 10), trial_days=30)
    trials = team().terms.get(effective_on=date(2026, 4, 10))
    services.change_to_team(ws, as_of=date(2026, 4, 20))
    assert ws.subscriptions.get(ended_on=None).trial_end == date(2026, 5, 20)
    with pytest.raises(BillingError, match="a change to Early dated 2026-04-20 was entered"):
        withdraw_plan_terms(trials, by=finance, reason="Changed our minds")
    assert team().terms.filter(pk=trials.pk).exists()


def test_r4_a_withdrawal_says_why(db, finance):
    terms = price_from(finance, date(2027, 1, 1))
    for reason in ("", "   "):
        with pytest.raises(BillingError, match="Say why the terms are withdrawn"):
            withdraw_plan_terms(terms, by=finance, reason=reason)
    withdraw_plan_terms(terms, by=finance, reason="Typo")
    with pytest.raises(BillingError, match="were withdrawn already"):
        withdraw_plan_terms(terms, by=finance, reason="Twice")


# --- the admin: a button on the plan's page, a page asking why --------------------------------

ROLES = ("support", "reviewer", "finance", "superuser")


@pytest.fixture
def user(request, support, reviewer, finance):
    if request.param == "superuser":
        return User.objects.create_superuser("root", "root@example.com", "pass-for-tests")
    return {"support": support, "reviewer": reviewer, "finance": finance}[request.param]


@pytest.mark.parametrize("user", ROLES, indirect=True)
def test_p2_r4_r5_only_who_changes_plans_withdraws_terms_from_their_page(
    client, finance, user, pin_today
):
    """Finance (change_plan) and a superuser see a button for the terms from 1 January 2027 on
    Team's page and withdraw them there, saying why; support and reviewers (view_plan) see none
    and are refused the page (403), the terms kept."""
    pin_today(date(2026, 12, 3))
    terms = price_from(finance, date(2027, 1, 1))
    withdraw = reverse("admin:billing_planterms_withdraw", args=[terms.pk])
    plan_page = reverse("admin:billing_plan_change", args=[team().pk])
    may = user.has_perm("billing.change_plan")
    assert may == (user.username in ("finance", "root"))
    client.force_login(user)

    assert (withdraw in client.get(plan_page).content.decode()) == may
    terms_page = client.get(reverse("admin:billing_planterms_change", args=[terms.pk]))
    assert (withdraw in terms_page.content.decode()) == may
    page = client.get(withdraw)
    assert page.status_code == (200 if may else 403)
    if may:
        # Every day on the page as the pages write one ("1 Jan 2027"), the heading too.
        body = page.content.decode()
        assert "<h1>Withdraw Team terms from 1 Jan 2027</h1>" in body
        assert "Team terms from the start apply from 1 Jan 2027 on" in body
        assert "2027-01-01" not in body
        plan_body = client.get(plan_page).content.decode()
        assert "<td>1 Jan 2027</td>" in plan_body  # the "Terms by date" table
        assert "2027-01-01" not in plan_body
        refused = client.post(withdraw, {"reason": " "})
        assert "Say why: the reason is kept in the history." in refused.content.decode()
    response = client.post(withdraw, {"reason": "Decided against it"})
    if not may:
        assert response.status_code == 403
        assert team().terms.filter(pk=terms.pk).exists()
        return
    assert response.status_code == 302 and response.url == plan_page
    assert prices() == [(date.min, D("120.00"))]
    done = client.get(plan_page).content.decode()
    assert "Team terms from 1 Jan 2027 withdrawn: Decided against it" in done
    withdrawn = PlanTerms.history.filter(id=terms.pk).latest("history_date")
    assert (withdrawn.history_type, withdrawn.history_user) == ("-", user)
    assert withdrawn.history_change_reason == "Terms withdrawn: Decided against it"
    # The plan's page has no button any more; the withdrawn terms' history page keeps them.
    assert withdraw not in client.get(plan_page).content.decode()
    history = client.get(reverse("admin:billing_planterms_history", args=[terms.pk]))
    assert "Decided against it" in history.content.decode()


def test_p2_d2_the_page_of_terms_in_force_says_so_and_withdraws_nothing(client, finance, pin_today):
    """Terms from 5 March 2026 with the clock through 10 March: no button on the plan's page,
    and their page says why instead of asking; a POST to it changes nothing."""
    pin_today(date(2026, 3, 11))
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    terms = price_from(finance, date(2026, 3, 5))
    services.run_billing(as_of=date(2026, 3, 10))
    withdraw = reverse("admin:billing_planterms_withdraw", args=[terms.pk])
    client.force_login(finance)
    plan_page = client.get(reverse("admin:billing_plan_change", args=[team().pk]))
    assert withdraw not in plan_page.content.decode()
    page = client.get(withdraw).content.decode()
    assert "processed every day through 10 Mar 2026" in page and 'name="reason"' not in page
    client.post(withdraw, {"reason": "Too late"})
    assert team().terms.filter(pk=terms.pk).exists()
