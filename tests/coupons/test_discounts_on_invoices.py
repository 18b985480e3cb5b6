"""C4, C5, C6 on real invoices: the discount step of the pricing core, through billing's hook,
with the billing clock doing the expiries and follow-ups."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from billing import services as billing
from coupons import services
from coupons.errors import CouponError
from coupons.models import DiscountApplication, Redemption

from .factories import approved_proof, bills, coupon, paid_monthly


def redeem(ws, promo, day, by=None):
    return services.redeem_coupon(ws, promo.code, by=by, as_of=day)


def discounts(ws):
    return [(issued, discount) for issued, _, discount, _, _ in bills(ws)]


def test_c4_percent_coupon_follows_a_varying_bill(db):
    ws = paid_monthly()
    redeem(ws, coupon(percent_off="20", duration="forever"), date(2026, 1, 1))
    for month, mtus in [(1, 10_000), (2, 15_000), (3, 12_345)]:
        billing.record_usage(ws, month=date(2026, month, 1), mtus=mtus)
    billing.run_billing(as_of=date(2026, 4, 1))
    assert bills(ws) == [
        (date(2026, 2, 1), D("120.00"), D("24.00"), D("0.00"), D("96.00")),
        (date(2026, 3, 1), D("170.00"), D("34.00"), D("0.00"), D("136.00")),
        # 143.45 × 20% = 28.69: the coupon's dollar value follows the bill.
        (date(2026, 4, 1), D("143.45"), D("28.69"), D("0.00"), D("114.76")),
    ]
    line = ws.invoices.order_by("issue_date").first().lines.get(kind="discount")
    assert (line.amount, line.description) == (D("-24.00"), line.description)
    assert "20% off" in line.description


def test_c4_percent_rounds_half_up_per_invoice(db):
    ws = paid_monthly(as_of=date(2026, 1, 24))  # 8 of 31 days: 30.97
    redeem(ws, coupon(percent_off="12.5", duration="forever"), date(2026, 1, 24))
    billing.run_billing(as_of=date(2026, 2, 1))
    # 30.97 × 12.5% = 3.87125 → 3.87
    assert bills(ws) == [(date(2026, 2, 1), D("30.97"), D("3.87"), D("0.00"), D("27.10"))]


def test_c4_amount_larger_than_the_bill_takes_it_to_zero_and_it_is_still_issued(db):
    ws = paid_monthly()
    redeem(ws, coupon(amount_off="500.00"), date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 3, 1))
    assert bills(ws) == [
        (date(2026, 2, 1), D("120.00"), D("120.00"), D("0.00"), D("0.00")),
        (date(2026, 3, 1), D("120.00"), D("0.00"), D("0.00"), D("120.00")),  # once: used up
    ]
    applied = DiscountApplication.objects.get()
    assert applied.amount == D("120.00")
    # Named by the invoice's number (its id is not a number anyone sees).
    february = ws.invoices.get(issue_date=date(2026, 2, 1))
    assert str(applied) == f"{applied.redemption.coupon.code} on {february.number}: $120.00"


def test_c5_once_applies_to_the_first_invoice_issued_on_or_after_redemption(db):
    ws = paid_monthly()
    billing.run_billing(as_of=date(2026, 2, 1))  # January's invoice is out before it
    redemption = redeem(ws, coupon(amount_off="30.00"), date(2026, 2, 2))
    billing.run_billing(as_of=date(2026, 4, 1))
    assert discounts(ws) == [
        (date(2026, 2, 1), D("0.00")),  # issued before the redemption ran
        (date(2026, 3, 1), D("30.00")),
        (date(2026, 4, 1), D("0.00")),
    ]
    redemption.refresh_from_db()
    assert (redemption.status, redemption.runs_out_on, redemption.ended_on) == (
        Redemption.Status.ENDED,
        date(2026, 3, 1),
        date(2026, 3, 1),
    )


def test_c5_once_redeemed_mid_month_goes_to_that_months_invoice(db):
    ws = paid_monthly()
    redeem(ws, coupon(amount_off="30.00"), date(2026, 1, 15))
    billing.run_billing(as_of=date(2026, 3, 1))
    assert discounts(ws) == [(date(2026, 2, 1), D("30.00")), (date(2026, 3, 1), D("0.00"))]


def test_c4_c5_a_once_coupon_worth_0_00_on_its_first_invoice_is_used_up_there(db):
    """0.01 % once, redeemed 20 January on paid Team from that day: January is 12 of 31 days,
    46.45, and 0.01 % of it is 0.0046 → 0.00. That invoice used the coupon, and March bills
    120.00 (the coupon moved on and took 0.01 off March: a second invoice for a once coupon)."""
    ws = paid_monthly(as_of=date(2026, 1, 20))
    redemption = redeem(ws, coupon(percent_off="0.01", duration="once"), date(2026, 1, 20))
    billing.run_billing(as_of=date(2026, 3, 1))
    assert bills(ws) == [
        (date(2026, 2, 1), D("46.45"), D("0.00"), D("0.00"), D("46.45")),
        (date(2026, 3, 1), D("120.00"), D("0.00"), D("0.00"), D("120.00")),
    ]
    redemption.refresh_from_db()
    assert redemption.runs_out_on == date(2026, 2, 1)


def test_c5_repeating_applies_to_n_billing_months(db):
    ws = paid_monthly()
    redemption = redeem(
        ws, coupon(percent_off="50", duration="repeating", duration_months=3), date(2026, 1, 20)
    )
    billing.run_billing(as_of=date(2026, 6, 1))
    assert [d for _, d in discounts(ws)] == [D("60.00")] * 3 + [D("0.00")] * 2
    redemption.refresh_from_db()
    assert (redemption.status, redemption.ended_on) == ("ended", date(2026, 4, 1))
    assert "ran out on 1 Apr 2026" in ws.history.first().history_change_reason


def test_c5_repeating_across_a_cancellation(db):
    ws = paid_monthly()
    redeem(
        ws, coupon(amount_off="20.00", duration="repeating", duration_months=3), date(2026, 1, 5)
    )
    billing.change_to_free(ws, as_of=date(2026, 2, 15))  # final invoice, still in the window
    billing.change_to_team(ws, as_of=date(2026, 3, 10))  # back within the window
    billing.change_to_free(ws, as_of=date(2026, 4, 1))
    billing.change_to_team(ws, as_of=date(2026, 4, 11))  # back after the window
    billing.run_billing(as_of=date(2026, 5, 1))
    assert [
        (i.kind, i.issue_date, i.subtotal, i.discount) for i in ws.invoices.order_by("issue_date")
    ] == [
        ("monthly", date(2026, 2, 1), D("120.00"), D("20.00")),  # January
        ("final", date(2026, 2, 15), D("60.00"), D("20.00")),  # February 1–14
        ("monthly", date(2026, 4, 1), D("85.16"), D("20.00")),  # March 10–31: 22/31 days
        ("monthly", date(2026, 5, 1), D("80.00"), D("0.00")),  # April 11–30: normal rate
    ]


def test_c5_forever_until_removed(db, support):
    ws = paid_monthly()
    redeem(ws, coupon(amount_off="15.00", duration="forever"), date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 3, 1))
    services.remove_discount(
        ws, by=support, reason="Contract renegotiated", as_of=date(2026, 3, 10)
    )
    billing.run_billing(as_of=date(2026, 5, 1))
    assert [d for _, d in discounts(ws)] == [D("15.00"), D("15.00"), D("0.00"), D("0.00")]
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on, redemption.reason) == (
        "removed",
        date(2026, 3, 10),
        "Contract renegotiated",
    )
    assert redemption.history.first().history_user == support


def test_c5_only_the_intervals_the_coupon_covers(db):
    annual = paid_monthly()
    billing.change_to_free(annual, as_of=date(2026, 1, 1))
    redeem(annual, coupon(percent_off="10", duration="forever"), date(2026, 1, 1))
    billing.change_to_team(annual, interval="annual", as_of=date(2026, 1, 1))
    monthly = paid_monthly()
    billing.change_to_free(monthly, as_of=date(2026, 1, 1))
    redeem(monthly, coupon(percent_off="10", intervals=["annual"]), date(2026, 1, 1))  # on Free
    billing.change_to_team(monthly, as_of=date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 3, 1))
    annual_invoice = annual.invoices.get(kind="annual")
    assert (annual_invoice.subtotal, annual_invoice.discount) == (D("1440.00"), D("144.00"))
    assert [d for _, d in discounts(monthly)] == [D("0.00"), D("0.00")]


@pytest.mark.parametrize("clock", ["daily", "once at the end"])
def test_c5_follow_up_chain_applied_at_once_by_the_system(db, clock):
    last = coupon(code="THANKS", amount_off="10.00", duration="forever")
    middle = coupon(code="STEP", percent_off="25", duration="repeating", duration_months=1)
    first = coupon(code="INTRO", percent_off="50", duration="repeating", duration_months=2)
    services.update_coupon(middle, by=None, follow_up=last)
    services.update_coupon(first, by=None, follow_up=middle)
    # The follow-ups' own limits do not apply to a follow-up (C5).
    services.update_coupon(
        middle, by=None, active=True, max_redemptions=1, redeem_by=date(2026, 1, 1)
    )
    services.redeem_coupon(
        paid_monthly(as_of=date(2025, 12, 1)), middle.code, by=None, as_of=date(2025, 12, 1)
    )
    ws = paid_monthly()
    redeem(ws, first, date(2026, 1, 5))
    if clock == "daily":
        day = date(2026, 1, 6)
        while day <= date(2026, 6, 1):
            billing.run_billing(as_of=day)
            day += timedelta(days=1)
    else:
        billing.run_billing(as_of=date(2026, 6, 1))
    assert [d for _, d in discounts(ws)] == [
        D("60.00"),  # January, INTRO
        D("60.00"),  # February, INTRO
        D("30.00"),  # March, STEP
        D("10.00"),  # April, THANKS
        D("10.00"),  # May, THANKS
    ]
    chain = list(Redemption.objects.filter(workspace=ws).order_by("redeemed_on"))
    assert [(r.coupon.code, r.redeemed_on, r.status, r.by, r.is_follow_up) for r in chain] == [
        ("INTRO", date(2026, 1, 5), "ended", None, False),
        ("STEP", date(2026, 3, 1), "ended", None, True),
        ("THANKS", date(2026, 4, 1), "active", None, True),
    ]
    assert chain[2].follows == chain[1] and chain[1].follows == chain[0]
    notes = [h.history_change_reason for h in ws.history.all()]
    assert any("follow-up STEP (25% off) applied by the system" in n for n in notes)
    assert any("follow-up THANKS ($10.00 off) applied by the system" in n for n in notes)


@pytest.mark.parametrize("clock_ran_to", [date(2026, 2, 4), date(2026, 1, 31)])
def test_c5_d3_d4_a_follow_up_is_decided_by_its_coupon_as_it_was_when_the_other_ran_out(
    db, support, clock_ran_to
):
    """INTRO50 (one month) runs out on 1 February and LOYAL30 follows. Support switches
    LOYAL30 off on 5 February. Day by day, the clock applied it on 1 February: 36.00 off each
    month after. With the clock lagging to 31 January, it read the coupon as it is now and never
    applied it (the customer lost 36.00 a month). The switch is a dated row (D3), so the
    catch-up gives the day-by-day invoices (D4)."""
    loyal = coupon(code="LOYAL30", percent_off="30", duration="forever")
    intro = coupon(
        code="INTRO50", percent_off="50", duration="repeating", duration_months=1, follow_up=loyal
    )
    ws, later = paid_monthly(as_of=date(2025, 12, 1)), paid_monthly(as_of=date(2025, 12, 1))
    redeem(ws, intro, date(2026, 1, 5))
    billing.run_billing(as_of=clock_ran_to)
    services.update_coupon(
        loyal, by=support, reason="Offer withdrawn", as_of=date(2026, 2, 5), active=False
    )
    billing.run_billing(as_of=date(2026, 4, 1))
    assert discounts(ws) == [
        (date(2026, 1, 1), D("0.00")),  # December
        (date(2026, 2, 1), D("60.00")),  # January: INTRO50
        (date(2026, 3, 1), D("36.00")),  # February: LOYAL30, applied on 1 February
        (date(2026, 4, 1), D("36.00")),  # March
    ]
    follow_up = Redemption.objects.get(workspace=ws, coupon=loyal)
    assert (follow_up.redeemed_on, follow_up.is_follow_up) == (date(2026, 2, 1), True)
    # A workspace whose coupon runs out after the switch gets no follow-up.
    redeem(later, intro, date(2026, 4, 2))
    billing.run_billing(as_of=date(2026, 6, 1))
    assert not Redemption.objects.filter(workspace=later, coupon=loyal).exists()
    assert "follow-up LOYAL30 not applied: inactive" in later.history.first().history_change_reason


@pytest.mark.parametrize(
    "clock_ran_to", [date(2026, 2, 9), date(2026, 1, 31)], ids=["daily", "behind"]
)
def test_c5_d4_a_follow_up_keeps_its_discount_once_its_lead_is_redeemed(db, support, clock_ran_to):
    """The dated-facts audit: REP1 (15 % for a month) was redeemed on 10 January and ran out
    on 1 February, when its follow-up AFTER (5 % forever) was applied. On 10 February support
    raised AFTER to 50 %: refused with a daily clock (AFTER had a redemption), accepted with
    the clock behind at 31 January (not yet), and February's invoice then got 60.00 off, not
    6.00. A follow-up of a redeemed coupon is promised as it stands: its discount is fixed."""
    after = coupon(code="AFTER", percent_off="5", duration="forever")
    lead = coupon(
        code="REP1", percent_off="15", duration="repeating", duration_months=1, follow_up=after
    )
    ws = paid_monthly()
    redeem(ws, lead, date(2026, 1, 10))
    billing.run_billing(as_of=clock_ran_to)
    with pytest.raises(CouponError, match="its discount cannot change") as refused:
        services.update_coupon(after, by=support, reason="Promo", percent_off=D("50"))
    assert str(refused.value).startswith(
        "AFTER has been redeemed" if clock_ran_to.month == 2 else "AFTER is the follow-up of REP1"
    )
    billing.run_billing(as_of=date(2026, 3, 1))
    assert discounts(ws)[-2:] == [
        (date(2026, 2, 1), D("18.00")),  # January: REP1, 15 % of 120.00
        (date(2026, 3, 1), D("6.00")),  # February: AFTER, 5 %
    ]


def test_c5_a_coupon_down_a_redeemed_coupons_follow_up_chain_keeps_its_discount(db, support):
    """INTRO → STEP → THANKS: once INTRO is redeemed, THANKS is promised too. Its discount
    is refused with the coupon that promised it named; its name may still change."""
    thanks = coupon(code="THANKS", amount_off="10.00", duration="forever")
    step = coupon(
        code="STEP", percent_off="25", duration="repeating", duration_months=1, follow_up=thanks
    )
    intro = coupon(
        code="INTRO", percent_off="50", duration="repeating", duration_months=1, follow_up=step
    )
    services.update_coupon(thanks, by=support, reason="Before", amount_off=D("12.00"))
    redeem(paid_monthly(), intro, date(2026, 1, 5))
    for fixed in ({"amount_off": D("20.00")}, {"duration": "once"}, {"applies_annual": False}):
        with pytest.raises(CouponError) as refused:
            services.update_coupon(thanks, by=support, reason="After", **fixed)
        assert str(refused.value).startswith(
            "THANKS is down the follow-ups of INTRO, which has been redeemed: its discount "
            "cannot change"
        ), refused.value
    services.update_coupon(thanks, by=support, reason="Renamed", name="Thank you")
    thanks.refresh_from_db()
    assert (thanks.amount_off, thanks.name) == (D("12.00"), "Thank you")


def test_d2_d3_a_coupon_is_switched_from_a_day_the_clock_has_not_processed(db, support):
    """The switch is dated: refused on a day the clock processed (its follow-ups were decided
    then) or before the coupon's last switch, and undated from a script."""
    from billing.errors import BillingError

    loyal = coupon(code="LOYAL30", percent_off="30", duration="forever")
    paid_monthly(as_of=date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 1, 10))
    with pytest.raises(BillingError, match="Date it 11 Jan 2026 or later"):
        services.update_coupon(loyal, by=support, as_of=date(2026, 1, 10), active=False)
    with pytest.raises(BillingError, match="Say from which day"):
        services.update_coupon(loyal, by=support, active=False)
    services.update_coupon(loyal, by=support, as_of=date(2026, 1, 14), active=False)
    with pytest.raises(BillingError, match="before its last switch \\(14 Jan 2026\\)"):
        services.update_coupon(loyal, by=support, as_of=date(2026, 1, 12), active=True)
    services.update_coupon(
        loyal, by=support, reason="Back", as_of=date(2026, 1, 20), active=True, name="Loyalty"
    )
    loyal.refresh_from_db()
    assert loyal.history.first().history_change_reason == (
        "Changed active (switched on from 20 Jan 2026), name: Back"
    )
    assert [(loyal.active_on(d), d.day) for d in (date(2026, 1, 13), date(2026, 1, 14))] == [
        (True, 13),
        (False, 14),
    ]
    assert (loyal.active_on(date(2026, 1, 19)), loyal.active_on(date(2026, 1, 20))) == (
        False,
        True,
    )
    assert list(loyal.switches.values_list("on", "active")) == [
        (date(2026, 1, 14), False),
        (date(2026, 1, 20), True),
    ]


def test_c5_a_follow_up_is_never_redeemed_twice_by_one_workspace(db):
    after = coupon(code="LOYAL", amount_off="5.00", duration="forever")
    first = coupon(percent_off="50", duration="repeating", duration_months=1, follow_up=after)
    ws = paid_monthly()
    redeem(ws, after, date(2026, 1, 1))
    services.remove_discount(
        ws, by=None, reason="Replaced by the intro offer", as_of=date(2026, 1, 1)
    )
    redeem(ws, first, date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 3, 1))
    assert [d for _, d in discounts(ws)] == [D("60.00"), D("0.00")]
    assert Redemption.objects.filter(workspace=ws, coupon=after).count() == 1
    assert "follow-up LOYAL not applied: received before" in (
        ws.history.first().history_change_reason
    )


def test_c6_nonprofit_discount_only_after_support_approves_the_proof(db, support):
    ws = paid_monthly()
    refused = pytest.raises(Exception)
    with refused:
        services.redeem_coupon(ws, "NONPROFIT", by=support, as_of=date(2026, 1, 1))
    assert "no approved proof of non-profit status" in str(refused.excinfo.value)
    approved_proof(ws, support, as_of=date(2026, 1, 1), apply_discount=True)
    billing.record_usage(ws, month=date(2026, 2, 1), mtus=12_500)
    billing.run_billing(as_of=date(2026, 3, 1))
    assert bills(ws) == [
        (date(2026, 2, 1), D("120.00"), D("120.00"), D("0.00"), D("0.00")),
        (date(2026, 3, 1), D("145.00"), D("120.00"), D("0.00"), D("25.00")),
    ]
    assert Redemption.objects.get(workspace=ws).by == support


def test_i6_i1_c5_a_plan_change_waits_for_the_invoice_a_close_set_aside(db, support):
    """A 50 % once coupon redeemed on 15 January belongs to January's invoice, dated 1
    February (140.00 → 70.00). The close sets that invoice aside (a figure from before input
    was bounded). A cancellation on 10 February would issue its final invoice first: it took
    the coupon and number 1, and January's came after it. The change now waits."""
    from billing.errors import BillingError
    from billing.models import Invoice, SetAsideInvoice, Usage

    ws = paid_monthly(as_of=date(2026, 1, 1))
    once = coupon(percent_off="50", duration="once")
    services.redeem_coupon(ws, once.code, by=support, as_of=date(2026, 1, 15), reason="Sorry")
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    billing.run_billing(as_of=date(2026, 2, 9))
    assert SetAsideInvoice.objects.filter(workspace=ws, resolved_on=None).exists()
    with pytest.raises(BillingError, match="invoice for January 2026 was set aside"):
        billing.change_to_free(ws, as_of=date(2026, 2, 10))
    assert not Invoice.objects.filter(workspace=ws).exists()
    Usage.objects.filter(workspace=ws).update(mtus=12_000)  # the cause fixed
    billing.run_billing(as_of=date(2026, 2, 9))  # the clock issues the set-aside invoice
    billing.change_to_free(ws, as_of=date(2026, 2, 10))
    issued = Invoice.objects.filter(workspace=ws).order_by("number")
    assert [(i.issue_date, i.kind, i.discount, i.total) for i in issued] == [
        (date(2026, 2, 1), "monthly", D("70.00"), D("70.00")),
        (date(2026, 2, 10), "final", D("0.00"), D("38.57")),  # 120 × 9/28 = 38.571
    ]


def test_i6_i1_c5_a_later_close_waits_for_the_invoice_an_earlier_one_set_aside(db, support):
    """A 50 % once coupon redeemed on 15 January belongs to January's invoice (dated 1
    February, 140.00 → 70.00). The close sets that invoice aside; February's close (1 March)
    issued February's invoice anyway: it took the coupon (120.00 → 60.00) and the first
    number, and January's came after it at full price. February's now waits for January's,
    the retry goes oldest month first, and both come out as they would have in order."""
    from billing.models import Invoice, SetAsideInvoice, Usage

    ws = paid_monthly(as_of=date(2026, 1, 1))
    once = coupon(percent_off="50", duration="once")
    services.redeem_coupon(ws, once.code, by=support, as_of=date(2026, 1, 15), reason="Sorry")
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    Usage.objects.create(workspace=ws, month=date(2026, 2, 1), mtus=10**13)
    billing.run_billing(as_of=date(2026, 3, 1))
    waiting = SetAsideInvoice.objects.filter(workspace=ws, resolved_on=None)
    assert sorted(waiting.values_list("close__month", flat=True)) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    Usage.objects.filter(workspace=ws, month=date(2026, 2, 1)).update(mtus=11_000)
    billing.run_billing(as_of=date(2026, 3, 2))  # February's cause is fixed, January's is not
    assert not Invoice.objects.filter(workspace=ws).exists()
    assert waiting.get(close__month=date(2026, 2, 1)).error == (
        "waits for its invoice for January 2026, set aside by that month's close, to be "
        "issued first"
    )

    Usage.objects.filter(workspace=ws, month=date(2026, 1, 1)).update(mtus=12_000)
    billing.run_billing(as_of=date(2026, 3, 3))
    issued = Invoice.objects.filter(workspace=ws).order_by("number")
    assert [(i.number, i.issue_date, i.discount, i.total) for i in issued] == [
        ("INV-2026-000001", date(2026, 2, 1), D("70.00"), D("70.00")),
        ("INV-2026-000002", date(2026, 3, 1), D("0.00"), D("130.00")),
    ]
    assert not waiting.exists()


def test_c6_d3_nonprofit_is_refused_on_a_day_before_its_proof_was_approved(db, support):
    """A proof submitted on 2 March is approved dated 2 April. NONPROFIT applied dated 5 March
    was accepted (any approved proof counted, whatever its day) and March's invoice, issued 1
    April before the approval, came to 0.00. On 5 March no proof was approved: refused."""
    from django.core.files.base import ContentFile

    from billing.models import Invoice
    from coupons.errors import CouponRefused

    from .factories import PDF

    ws = paid_monthly(as_of=date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 3, 1))
    proof = services.submit_nonprofit_proof(
        ws, document=ContentFile(PDF, name="s.pdf"), by=support, as_of=date(2026, 3, 2)
    )
    services.approve_nonprofit_proof(
        proof, by=support, as_of=date(2026, 4, 2), apply_discount=False
    )
    with pytest.raises(CouponRefused) as refused:
        services.redeem_coupon(ws, "NONPROFIT", by=support, as_of=date(2026, 3, 5), reason="x")
    assert refused.value.reason == CouponRefused.NO_NONPROFIT_PROOF
    billing.run_billing(as_of=date(2026, 4, 1))
    march = Invoice.objects.get(workspace=ws, issue_date=date(2026, 4, 1))
    assert (march.discount, march.total) == (D("0.00"), D("120.00"))
    # From the approval's day on it applies.
    services.redeem_coupon(ws, "NONPROFIT", by=support, as_of=date(2026, 4, 2), reason="x")


def test_d4_c5_a_coupon_dated_the_day_of_an_invoice_issued_already_is_refused(db, support):
    """Monthly Team cancelled on 10 February: its final invoice (120 × 9/28 = 38.57) is issued
    at once. A $30.00 once coupon dated the 10th and entered before the cancellation takes
    that invoice (8.57); entered after it, it went to the next invoice instead, so the order
    of one day's changes decided the bill. It is now refused, naming the invoice, as is
    removing a discount the final invoice was billed with."""
    from billing.errors import BillingError
    from billing.models import Invoice
    from coupons.errors import CouponRefused

    plain = paid_monthly(as_of=date(2026, 1, 1), slug="plain")
    discounted = paid_monthly(as_of=date(2026, 1, 1), slug="discounted")
    forever = coupon(percent_off="10", duration="forever")
    redeem(discounted, forever, date(2026, 1, 5), by=support)
    billing.run_billing(as_of=date(2026, 2, 9))
    for ws in (plain, discounted):
        billing.change_to_free(ws, as_of=date(2026, 2, 10))
    final = Invoice.objects.get(workspace=plain, kind="final")
    assert (final.discount, final.total) == (D("0.00"), D("38.57"))
    discounted_final = Invoice.objects.get(workspace=discounted, kind="final")
    assert (discounted_final.discount, discounted_final.total) == (D("3.86"), D("34.71"))

    once = coupon(amount_off="30.00", duration="once")
    with pytest.raises(CouponRefused, match=rf"{final.number}, dated 10 Feb 2026, was issued") as e:
        redeem(plain, once, date(2026, 2, 10), by=support)
    # Walk 6: ANNUAL10 could never reach the annual invoice it is named for, once the move to
    # annual billing had issued it; the refusal says in which order the two go.
    assert "A coupon meant for an invoice a change issues is applied before that change" in str(
        e.value
    )
    # The dry run a campaign's audience and the apply page share refuses it the same way.
    with pytest.raises(CouponRefused) as refused:
        services.check_redeemable(plain, once, as_of=date(2026, 2, 10), override_reason="")
    assert refused.value.reason == CouponRefused.INVOICED_ALREADY
    assert not Redemption.objects.filter(coupon=once).exists()
    redeem(plain, once, date(2026, 2, 11), by=support)  # from the next day on

    with pytest.raises(BillingError, match=r"was issued already.*Date it 11 Feb 2026 or later"):
        services.remove_discount(discounted, by=support, reason="Ended", as_of=date(2026, 2, 10))
    assert Redemption.objects.get(coupon=forever).status == Redemption.Status.ACTIVE


def test_c5_c6_a_non_profit_discount_is_never_a_follow_up(db, support):
    """INTRO (50 %, one month) with NONPROFIT as its follow-up: when INTRO ran out on 1
    February the system applied NONPROFIT to a workspace that never proved non-profit status,
    and February's invoice came to 0.00. The catalogue refuses such a follow-up; one set up
    before is not applied (C6: that discount goes with a proof support approved)."""
    from coupons.errors import CouponError
    from coupons.models import Coupon

    with pytest.raises(CouponError, match="NONPROFIT cannot be a follow-up"):
        coupon(
            code="INTRO",
            percent_off="50",
            duration="repeating",
            duration_months=1,
            follow_up="NONPROFIT",
        )
    intro = coupon(code="INTRO", percent_off="50", duration="repeating", duration_months=1)
    Coupon.objects.filter(pk=intro.pk).update(follow_up=Coupon.objects.get(code="NONPROFIT"))

    ws = paid_monthly(as_of=date(2026, 1, 1))
    redeem(ws, intro, date(2026, 1, 5), by=support)
    billing.run_billing(as_of=date(2026, 3, 1))
    assert [(issued, discount, total) for issued, _, discount, _, total in bills(ws)] == [
        (date(2026, 2, 1), D("60.00"), D("60.00")),
        (date(2026, 3, 1), D("0.00"), D("120.00")),
    ]
    assert not Redemption.objects.filter(workspace=ws, coupon__code="NONPROFIT").exists()


def test_i6_c5_a_renewal_leaves_the_once_coupon_to_the_invoice_a_close_set_aside(db, support):
    """Annual Team from 10 February 2025. A 50 % once coupon redeemed on 15 January 2026
    belongs to the first invoice on or after that day: January's overage invoice, dated 1
    February (12,000 MTUs once fixed: 20.00 → 10.00). The close sets it aside; the clock
    renews the term on 10 February meanwhile, and the renewal took the coupon (1,440.00 →
    720.00). The renewal now leaves it to the set-aside invoice."""
    from billing.models import Invoice, SetAsideInvoice, Usage

    from .factories import paid_annual

    ws = paid_annual(as_of=date(2025, 2, 10))
    billing.run_billing(as_of=date(2026, 1, 14))
    once = coupon(percent_off="50", duration="once")
    services.redeem_coupon(ws, once.code, by=support, as_of=date(2026, 1, 15), reason="Sorry")
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    billing.run_billing(as_of=date(2026, 2, 10))
    assert SetAsideInvoice.objects.filter(workspace=ws, resolved_on=None).exists()
    Usage.objects.filter(workspace=ws, month=date(2026, 1, 1)).update(mtus=12_000)
    billing.run_billing(as_of=date(2026, 2, 11))
    issued = Invoice.objects.filter(workspace=ws, issue_date__year=2026).order_by("issue_date")
    assert [(i.issue_date, i.kind, i.discount, i.total) for i in issued] == [
        (date(2026, 2, 1), "monthly", D("10.00"), D("10.00")),
        (date(2026, 2, 10), "annual", D("0.00"), D("1440.00")),
    ]
