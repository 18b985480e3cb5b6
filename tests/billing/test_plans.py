"""P1, P2: the plans are data seeded by a migration; finance changes their terms from a day on
(dated rows, D3), and every month is billed at the terms in force then, whenever the clock
runs it (D4)."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.db import transaction
from django.urls import reverse

from billing import services
from billing.errors import BillingError, DayAlreadyProcessed
from billing.models import Invoice, Plan, PlanTerms
from billing.services import update_plan
from tests.billing.factories import paid_annual, paid_monthly, team_terms_form, workspace


def team():
    return Plan.objects.get(code="team")


def terms(code, day):
    return PlanTerms.objects.of(day, plan__code=code)


def test_p1_free_plan_seeded(db):
    free = terms("free", date(2026, 1, 1))
    assert (free.monthly_price, free.included_mtus, free.bills_overage) == (D("0.00"), 1000, False)
    assert free.effective_on == date.min  # "from the start"


def test_p2_team_plan_seeded_with_its_figures(db):
    plan = terms("team", date(2026, 1, 1))
    assert (plan.monthly_price, plan.annual_price) == (D("120.00"), D("1440.00"))
    assert (plan.included_mtus, plan.overage_rate, plan.bills_overage) == (
        10_000,
        D("0.0100"),
        True,
    )
    assert (plan.seats, plan.warehouse_syncs_per_day, plan.trial_days) == (10, 2, 14)


TEAM_FORM = team_terms_form(
    monthly_price="125.00", annual_price="1500.00", change_reason="Price review for 2027"
)


def test_p2_finance_changes_the_terms_from_a_day_support_only_reads(
    client, db, finance, support, pin_today
):
    pin_today(date(2026, 12, 3))
    url = reverse("admin:billing_plan_change", args=[team().pk])
    client.force_login(support)
    assert client.post(url, TEAM_FORM).status_code == 403
    client.force_login(finance)
    # R4: the why is asked for and an empty one refused; so is a change without its day.
    refused = client.post(url, {**TEAM_FORM, "change_reason": "  "})
    assert "Say why: the reason is kept in the history." in refused.content.decode()
    refused = client.post(url, {**TEAM_FORM, "effective_on": ""})
    assert "Say from which day the new terms apply." in refused.content.decode()
    assert team().terms.count() == 1

    assert client.post(url, TEAM_FORM).status_code == 302
    # 125.00 from 1 January 2027; 120.00 until then.
    assert terms("team", date(2026, 12, 31)).monthly_price == D("120.00")
    new = terms("team", date(2027, 1, 1))
    assert (new.effective_on, new.monthly_price, new.annual_price) == (
        date(2027, 1, 1),
        D("125.00"),
        D("1500.00"),
    )
    assert (new.included_mtus, new.trial_days) == (10_000, 14)  # the rest carried over
    latest = new.history.first()
    assert latest.history_user == finance
    assert latest.history_change_reason == "Terms changed: Price review for 2027"

    # The list shows today's terms and what is coming; the page, every dated set.
    listing = client.get(reverse("admin:billing_plan_changelist")).content.decode()
    assert "$120.00" in listing and "from 1 Jan 2027" in listing
    page = client.get(url).content.decode()
    assert "the start" in page and "<td>1 Jan 2027</td>" in page and "$125.00" in page
    # The form starts from the latest terms.
    assert 'name="monthly_price" value="125.00"' in page


def test_p2_a_day_with_no_term_changed_is_refused_not_reported_as_saved(
    client, db, finance, pin_today
):
    """The terms as they are (monthly $120.00) with a day of 0001-01-01: the page said "The plan
    “Team” was changed successfully" and dropped the day. It says no term changed, and keeps
    one set of terms; the form's allowance is labelled in MTUs."""
    pin_today(date(2026, 12, 3))
    url = reverse("admin:billing_plan_change", args=[team().pk])
    client.force_login(finance)
    unchanged = {**TEAM_FORM, "monthly_price": "120.00", "annual_price": "1440.00"}
    for day in ("0001-01-01", "2027-01-01"):
        refused = client.post(url, {**unchanged, "effective_on": day})
        assert refused.status_code == 200
        assert "No term changed: change a term this day is for, or leave it empty." in (
            refused.content.decode()
        )
    assert team().terms.count() == 1
    assert "Included MTUs a month" in client.get(url).content.decode()


def test_p2_a_name_is_a_label_changed_without_a_day(db, finance):
    update_plan(team(), by=finance, reason="Rebrand", name="Team Plus")
    assert team().name == "Team Plus"
    assert team().terms.count() == 1


def test_p1_plan_terms_have_bounds_and_free_stays_free(db, finance):
    free = Plan.objects.get(code="free")
    day = date(2027, 1, 1)
    with pytest.raises(BillingError, match="between 0 and 100,000"):
        update_plan(team(), by=finance, reason="typo", effective_on=day, monthly_price="1200000")
    with pytest.raises(BillingError, match="Free plan costs nothing"):
        update_plan(free, by=finance, reason="test", effective_on=day, monthly_price="5.00")
    with pytest.raises(BillingError, match="Say why"):
        update_plan(team(), by=finance, reason="", effective_on=day, included_mtus=20_000)
    with pytest.raises(BillingError, match="Say from which day"):
        update_plan(team(), by=finance, reason="No day", included_mtus=20_000)
    assert PlanTerms.objects.count() == 2  # nothing written


def test_p2_an_allowance_up_to_the_bound_is_stored_as_given(db, finance):
    """The bound is the largest month usage can report (10,000,000,000 MTUs); the column held
    2,147,483,647 at most on PostgreSQL, and 3,000,000,000 crashed finance's plan page."""
    day = date(2027, 1, 1)
    for allowance in (3_000_000_000, 10_000_000_000):
        update_plan(
            team(),
            by=finance,
            reason="Enterprise allowance",
            effective_on=day,
            included_mtus=allowance,
        )
        assert terms("team", day).included_mtus == allowance
    with pytest.raises(BillingError):
        update_plan(
            team(), by=finance, reason="Typo", effective_on=day, included_mtus=10_000_000_001
        )
    # Changed twice for one day: that day's terms, one row.
    assert team().terms.filter(effective_on=day).count() == 1


def _price_rise(finance, day):
    update_plan(team(), by=finance, reason="2026 prices", effective_on=day, monthly_price="150.00")


def _monthly_totals(ws):
    return [
        (invoice.issue_date, invoice.total)
        for invoice in Invoice.objects.filter(workspace=ws, kind="monthly").order_by("issue_date")
    ]


EXPECTED_AROUND_THE_RISE = [
    (date(2026, 2, 1), D("120.00")),
    (date(2026, 3, 1), D("120.00")),
    (date(2026, 4, 1), D("120.00")),
    (date(2026, 5, 1), D("150.00")),
]


def test_p2_d4_a_month_is_billed_at_the_terms_of_its_first_day(db, finance):
    """A price rise to 150.00 from 15 March 2026, entered while the clock had processed
    through 31 January, then the clock run day by day: January, February and March (whose
    first day is before the rise) are billed 120.00, April 150.00."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 31))
    _price_rise(finance, date(2026, 3, 15))
    day = date(2026, 2, 1)
    while day <= date(2026, 5, 1):
        services.run_billing(as_of=day)
        day = date.fromordinal(day.toordinal() + 1)
    assert _monthly_totals(ws) == EXPECTED_AROUND_THE_RISE


def test_p2_d4_the_catch_up_bills_what_the_daily_clock_would(db, finance):
    """The same rise, then one catch-up through 1 May: the same invoices as day by day. Before
    the terms had a day, it billed February and March at 150.00 too."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 31))
    _price_rise(finance, date(2026, 3, 15))
    services.run_billing(as_of=date(2026, 5, 1))
    assert _monthly_totals(ws) == EXPECTED_AROUND_THE_RISE


def test_p2_k1_a_final_invoice_bills_its_month_at_that_months_terms(db, finance):
    """Monthly Team from 1 January, 150.00 a month from 1 April: cancelled 16 April (15 of 30
    days paid), the final invoice is 75.00. A rise to 200.00 from 17 April is May's terms, not
    April's: cancelled 17 April (16 days), 80.00."""
    first, second = paid_monthly(date(2026, 1, 1)), paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 31))
    _price_rise(finance, date(2026, 4, 1))
    services.run_billing(as_of=date(2026, 4, 1))
    services.change_to_free(first, as_of=date(2026, 4, 16))
    assert Invoice.objects.get(workspace=first, kind="final").total == D("75.00")
    update_plan(
        team(), by=finance, reason="Again", effective_on=date(2026, 4, 17), monthly_price="200"
    )
    services.change_to_free(second, as_of=date(2026, 4, 17))
    assert Invoice.objects.get(workspace=second, kind="final").total == D("80.00")


def test_p2_k2_an_annual_term_is_priced_at_the_terms_of_its_first_day(db, finance):
    """1,800.00 a year from 1 July 2026: a term starting 1 January 2026 is billed 1,440.00 and
    renews on 1 January 2027 at 1,800.00."""
    update_plan(
        team(),
        by=finance,
        reason="Annual price",
        effective_on=date(2026, 7, 1),
        annual_price="1800.00",
    )
    ws = paid_annual(date(2026, 1, 1))
    services.run_billing(as_of=date(2027, 1, 1))
    annual = Invoice.objects.filter(workspace=ws, kind="annual").order_by("issue_date")
    assert [(i.issue_date, i.total) for i in annual] == [
        (date(2026, 1, 1), D("1440.00")),
        (date(2027, 1, 1), D("1800.00")),
    ]


def test_p2_t1_a_trial_lasts_as_the_terms_of_its_first_day_say(db, finance):
    update_plan(
        team(), by=finance, reason="Longer trial", effective_on=date(2026, 3, 1), trial_days=30
    )
    before = workspace(as_of=date(2026, 2, 1), plan="team")
    after = workspace(as_of=date(2026, 3, 1), plan="team")
    assert before.subscriptions.get().trial_end == date(2026, 2, 15)
    assert after.subscriptions.get().trial_end == date(2026, 3, 31)


def test_p1_f1_strikes_count_against_the_month_s_free_allowance(db, finance):
    """Free allows 2,000 MTUs from 1 March 2026: 1,500 in February is a strike, in March not."""
    update_plan(
        Plan.objects.get(code="free"),
        by=finance,
        reason="More room",
        effective_on=date(2026, 3, 1),
        included_mtus=2_000,
    )
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=1_500)
    services.record_usage(ws, month=date(2026, 3, 1), mtus=1_500)
    services.run_billing(as_of=date(2026, 4, 1))
    assert list(ws.strikes.values_list("month", flat=True)) == [date(2026, 2, 1)]


def test_d2_d4_terms_are_dated_after_the_clock_and_in_date_order(db, finance):
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 10))
    with pytest.raises(DayAlreadyProcessed, match="processed every day through 10 Mar 2026"):
        _price_rise(finance, date(2026, 3, 10))
    _price_rise(finance, date(2026, 6, 1))
    with pytest.raises(BillingError, match="its terms from 1 Jun 2026 were entered already"):
        _price_rise(finance, date(2026, 5, 1))
    assert team().terms.count() == 2


def test_d4_terms_dated_on_or_before_a_change_entered_ahead_of_the_clock_are_refused(db, finance):
    """Entered ahead of the clock, a change may read the terms: a cancellation dated 20 April
    issued its final invoice at 120.00 a month, a move to Team dated 25 April started (or did
    not start) a trial, a trial ended early wrote its email with the Free allowance then. Terms
    dated on or before such a change would have made it otherwise in the other order of entry
    (a daily clock): refused, naming it. Dated after it, they apply."""
    ws = paid_monthly(date(2026, 1, 1), name="Early")
    services.run_billing(as_of=date(2026, 4, 1))
    services.change_to_free(ws, as_of=date(2026, 4, 20))
    with pytest.raises(BillingError, match="a change to Early dated 2026-04-20 was entered"):
        _price_rise(finance, date(2026, 4, 2))
    workspace(as_of=date(2026, 4, 25), plan="team", name="Trialing")
    with pytest.raises(BillingError, match="a change to Trialing dated 2026-04-25"):
        update_plan(
            Plan.objects.get(code="free"),
            by=finance,
            reason="More room",
            effective_on=date(2026, 4, 22),
            included_mtus=2_000,
        )
    _price_rise(finance, date(2026, 4, 26))
    assert terms("team", date(2026, 5, 1)).monthly_price == D("150.00")


def _daily(until, on_day):
    """The clock run day by day through `until`, `on_day[day]()` entered before it processes
    `day`."""
    from billing.clock import last_processed_day

    day = last_processed_day() + timedelta(days=1)
    while day <= until:
        if day in on_day:
            on_day[day]()
        services.run_billing(as_of=day)
        day += timedelta(days=1)


def test_t1_d4_trials_switched_back_on_before_a_move_entered_ahead_are_refused(db, finance):
    """Trials off (0 days) from 2 April, back (14 days) from 5 April, a move to Team dated
    10 April. Day by day: a trial 10 – 23 April, April billed 7 days, 28.00. With the clock at
    1 April and the move entered before the second change, that change was accepted (only a
    move that started a trial was looked at) and April billed 21 days, 84.00. It is refused."""
    ws = workspace(as_of=date(2026, 3, 1), card=True)
    services.run_billing(as_of=date(2026, 4, 1))

    def trials(days, day):
        return lambda: update_plan(
            team(), by=finance, reason="Trials", effective_on=day, trial_days=days
        )

    def move():
        services.change_to_team(ws, as_of=date(2026, 4, 10))

    with transaction.atomic():
        _daily(
            date(2026, 5, 1),
            {
                date(2026, 4, 2): trials(0, date(2026, 4, 2)),
                date(2026, 4, 5): trials(14, date(2026, 4, 5)),
                date(2026, 4, 10): move,
            },
        )
        assert Invoice.objects.get(workspace=ws, issue_date=date(2026, 5, 1)).total == D("28.00")
        transaction.set_rollback(True)
    trials(0, date(2026, 4, 2))()
    move()
    with pytest.raises(BillingError, match="dated 2026-04-10 was entered already"):
        trials(14, date(2026, 4, 5))()


def test_p2_readers_of_the_plan_page_see_its_terms(client, db, support, reviewer, pin_today):
    """Support and reviewers read the plan's page: its form's terms fields read "None" for them
    (the plan row has no terms); they see the table of dated terms."""
    pin_today(date(2026, 12, 3))
    for reader in (support, reviewer):
        client.force_login(reader)
        page = client.get(reverse("admin:billing_plan_change", args=[team().pk]))
        html = page.content.decode()
        assert page.status_code == 200 and "None" not in html
        assert "$120.00" in html and "$1,440.00" in html and "the start" in html


def test_p2_a_term_is_a_finite_number_no_finer_than_it_is_kept(db, finance):
    """NaN raised decimal.InvalidOperation from the comparison with the bounds; 120.005 was
    stored 120.00 on SQLite and 120.01 on PostgreSQL, and an overage rate of 0.00015 became
    0.0002 (10,000 MTUs over billed 2.00, not 1.50). Each is refused, saying why."""
    day = date(2027, 1, 1)
    for field, value, message in [
        ("monthly_price", "NaN", "must be a number, not “NaN”"),
        ("overage_rate", "sNaN", "must be a number, not “sNaN”"),
        ("annual_price", "Infinity", "must be a number, not “Infinity”"),
        ("monthly_price", "120.005", "has at most 2 decimals, not 120.005"),
        ("annual_price", "1440.125", "has at most 2 decimals, not 1440.125"),
        ("overage_rate", "0.00015", "has at most 4 decimals, not 0.00015"),
        ("included_mtus", "1e3", "must be a number, not “1e3”"),
    ]:
        with pytest.raises(BillingError, match=message):
            update_plan(team(), by=finance, reason="Typo", effective_on=day, **{field: value})
    assert team().terms.count() == 1
    update_plan(team(), by=finance, reason="Fine", effective_on=day, overage_rate="0.0150")
    assert terms("team", day).overage_rate == D("0.0150")
