"""A fourth set of edge days and edge figures, each worked by hand from SPEC (the figures are in
each test's docstring and comments; nothing is computed by the code under test), for what was
added on 5 December 2026:

- I3, CR2, CR3: a void gives an invoice's startup-credit draw back to each grant still valid on
  the void's day (a `return` entry dated then): voided on a grant's last valid day or on its
  anniversary; a final invoice (K1) that drew from two grants, earliest-expiring first, voided on
  the short grant's last valid day or on its end; a void dated the 1st (before that day's close)
  or the 2nd, each by day and in one run (D4); a void after a closure lapsed the credit (W1);
  the credit report (`credit_movements`, `outstanding`) and `workspace_status`'s balance on the
  days around a void; a second void refused.
- X2, X3: a rate replaced by one of the same place and day; a mistaken rate withdrawn, the rate
  before it then taxing the amount after discount and credit (ROUND_HALF_UP per invoice); a
  withdrawal allowed the day before the clock reaches the rate's start and refused once it has,
  or once a final invoice ahead of the clock read it (on its first day; the day before does not
  count); a US rate without a state refused, Canada's country-wide GST allowed.
- D3, K2: `cancel_at_term_end` of an annual term cancelled on the 1st or on the term's last day,
  before and from that day, after the clock ran to the term's end (then Free); a cancellation
  dated the term's end; a cancellation withdrawn.
- W1, C5: a closure on the 1st with a `once` coupon (or the day before, its final invoice using
  it), with a one-month repeating coupon redeemed on a month's last day that ran out that day
  (and its follow-up), with a repeating coupon still running.
"""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from billing import services
from billing.errors import BillingError, ClockBehind, DayAlreadyProcessed
from billing.models import Invoice, TaxRate
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import Redemption
from coupons.reports import credit_movements, outstanding
from tests.billing.factories import paid_annual, paid_monthly
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.scenarios.figures import bills, close, ledger

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


def balances(ws, *days):
    return [workspace_status(ws, as_of=day)["credit_balance"] for day in days]


def void(invoice, finance, on, reason="Issued in error"):
    return services.void_invoice(invoice, by=finance, reason=reason, as_of=on)


# --- I3, CR2, CR3: a void gives the credit back ---------------------------------------------------


@pytest.mark.parametrize(
    "voided_on, effect, entries, on_void_day",
    [
        (
            date(2027, 1, 14),
            "$120.00 of startup credit goes back to its year-1 grant, valid to 14 Jan 2027 (CR2).",
            [
                ("return", date(2027, 1, 14), D("120.00")),
                ("lapse", date(2027, 1, 15), D("-120.00")),
            ],
            D("120.00"),
        ),
        (
            date(2027, 1, 15),
            "The $120.00 of startup credit it drew from the year-1 grant is not given back: it "
            "was valid to 14 Jan 2027 (CR3).",
            [],
            D("0.00"),
        ),
    ],
    ids=["last-valid-day", "anniversary"],
)
def test_i3_cr2_cr3_a_void_on_the_grants_last_valid_day_or_on_its_anniversary(
    db, support, finance, voided_on, effect, entries, on_void_day
):
    """Paid monthly from 1 January 2026; a 300.00 grant from 15 January 2026, valid up to, not
    including, 15 January 2027 (CR1). CR2: January's invoice (1 February) draws 120.00 (180.00
    left), February's (1 March) 120.00 (60.00 left), March's (1 April) the last 60.00 of its
    120.00 (total 60.00). Finance voids February's invoice (1 March, fully credited). Voided
    on 14 January 2027, the grant's last valid day (the clock through the 13th): its 120.00
    goes back (a `return` entry dated the void), and lapses the next day, the anniversary
    (CR3): 120.00 on 14 January, 0.00 on 13 and 15 January. Voided on 15 January 2027, the
    anniversary (the clock through the 14th), the grant is no longer valid: nothing back, and
    nothing lapses (0.00 left). Either way the grant ends at 0.00, lapsed on 15 January."""
    ws = paid_monthly(date(2026, 1, 1))
    grant = coupons.grant_credits(ws, amount="300.00", as_of=date(2026, 1, 15), year=1, by=support)
    services.run_billing(as_of=voided_on - timedelta(days=1))
    february = Invoice.objects.get(workspace=ws, issue_date=date(2026, 3, 1))
    assert (february.subtotal, february.credits, february.total) == (
        D("120.00"),
        D("120.00"),
        D("0.00"),
    )
    assert services.void_effects(february, voided_on)[-1] == effect
    void(february, finance, voided_on)
    assert balances(ws, voided_on) == [on_void_day]
    services.run_billing(as_of=date(2027, 1, 16))
    assert ledger(grant) == [
        ("grant", date(2026, 1, 15), D("300.00")),
        ("draw", date(2026, 2, 1), D("-120.00")),
        ("draw", date(2026, 3, 1), D("-120.00")),
        ("draw", date(2026, 4, 1), D("-60.00")),
        *entries,
    ]
    grant.refresh_from_db()
    assert (grant.remaining, grant.lapsed_on) == (D("0.00"), date(2027, 1, 15))
    assert balances(ws, date(2027, 1, 13), voided_on, date(2027, 1, 15)) == [
        D("0.00"),
        on_void_day,
        D("0.00"),
    ]
    # December's invoice (1 January 2027) found nothing left: 120.00 to pay.
    assert bills(ws)[-1][1:] == (
        date(2027, 1, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        D("120.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("120.00"),
    )


@pytest.mark.parametrize(
    "voided_on, short_entries, around",
    [
        (
            date(2026, 5, 31),
            [("return", date(2026, 5, 31), D("30.00")), ("lapse", date(2026, 6, 1), D("-30.00"))],
            [D("950.00"), D("1030.00"), D("1000.00")],
        ),
        (date(2026, 6, 1), [], [D("950.00"), D("950.00"), D("1000.00")]),
    ],
    ids=["short-grants-last-valid-day", "short-grants-end"],
)
def test_i3_k1_cr2_a_final_invoice_drawn_from_two_grants_voided(
    db, support, finance, voided_on, short_entries, around
):
    """Paid monthly from 1 March 2026. Year one: 1,000.00 from 1 March 2026 (to 1 March 2027);
    year two, by hand: 150.00 from 1 March, valid up to 1 June 2026, ending first. March's
    invoice (1 April), 120.00, is drawn from year two (CR2, earliest-expiring first): 30.00
    left. 12,000 MTUs in April; cancelled on 16 April (K1): final invoice for 1–15 April, 120 ×
    15/30 = 60.00 + (12,000 − 10,000) × 0.01 = 20.00 → 80.00, drawn 30.00 from year two and
    50.00 from year one (950.00 left), total 0.00. The final invoice is voided (I3). On 31 May,
    year two's last valid day, both draws go back: 30.00 + 1,000.00 = 1,030.00 that day, then
    year two's 30.00 lapses on 1 June: 1,000.00. On 1 June, year two's end, only year one's
    50.00 goes back: 950.00 on 31 May, 1,000.00 on 1 June (balances on 30 May, 31 May, 1 June).
    """
    ws = paid_monthly(date(2026, 3, 1))
    year_one = coupons.grant_credits(
        ws, amount="1000.00", as_of=date(2026, 3, 1), year=1, by=support
    )
    year_two = coupons.grant_credits(
        ws,
        amount="150.00",
        as_of=date(2026, 3, 1),
        year=2,
        by=support,
        valid_until=date(2026, 6, 1),
    )
    services.record_usage(ws, month=date(2026, 4, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 4, 15))
    services.change_to_free(ws, as_of=date(2026, 4, 16))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.issue_date, final.period_start, final.period_end) == (
        date(2026, 4, 16),
        date(2026, 4, 1),
        date(2026, 4, 16),
    )
    assert (final.subtotal, final.credits, final.total) == (D("80.00"), D("80.00"), D("0.00"))
    services.run_billing(as_of=voided_on - timedelta(days=1))
    void(final, finance, voided_on)
    services.run_billing(as_of=date(2026, 6, 2))
    assert ledger(year_two) == [
        ("grant", date(2026, 3, 1), D("150.00")),
        ("draw", date(2026, 4, 1), D("-120.00")),
        ("draw", date(2026, 4, 16), D("-30.00")),
        *short_entries,
    ]
    assert ledger(year_one) == [
        ("grant", date(2026, 3, 1), D("1000.00")),
        ("draw", date(2026, 4, 16), D("-50.00")),
        ("return", voided_on, D("50.00")),
    ]
    assert balances(ws, date(2026, 5, 30), date(2026, 5, 31), date(2026, 6, 1)) == around
    year_one.refresh_from_db()
    assert year_one.remaining == D("1000.00")


def _void_around_a_close(daily, capture, support, finance, voided_on):
    """Paid monthly from 1 January 2026, a 200.00 grant from 1 January (to 1 January 2027),
    13,000 MTUs in January; the clock through 28 February, then from 1 March to 1 April each
    day or once, January's invoice voided on `voided_on`."""
    ws = paid_monthly(date(2026, 1, 1), slug="voided")
    grant = coupons.grant_credits(ws, amount="200.00", as_of=date(2026, 1, 1), year=1, by=support)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=13_000)
    services.run_billing(as_of=date(2026, 2, 28))
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))

    def actions(day):
        if day == voided_on:
            void(january, finance, day)

    run_days(date(2026, 3, 1), date(2026, 4, 1), daily=daily, capture=capture, actions=actions)
    grant.refresh_from_db()
    return {
        "bills": [(b[1], b[4], b[6], b[8]) for b in bills(ws)],
        "status": list(Invoice.objects.filter(workspace=ws).values_list("issue_date", "status")),
        "ledger": ledger(grant),
        "remaining": grant.remaining,
        "balances": balances(ws, date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)),
    }


def test_i3_cr2_d4_a_void_dated_the_1st_gives_back_before_that_days_close(
    db, django_capture_on_commit_callbacks, support, finance
):
    """January: 120.00 + (13,000 − 10,000) × 0.01 = 150.00, credited 150.00 (50.00 left),
    total 0.00, issued 1 February. Voided on 1 March (D1: a change dated that day comes before
    its close): 150.00 back, 200.00, then February's invoice (1 March), 120.00, draws 120.00:
    80.00 left; March's (1 April) draws the last 80.00 of 120.00: total 40.00. Balances:
    50.00 on 28 February, 80.00 on 1 and 2 March. The same by day and in one run (D4)."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _void_around_a_close(
            is_daily, django_capture_on_commit_callbacks, support, finance, date(2026, 3, 1)
        )
    )
    assert daily == catch_up
    assert daily["bills"] == [
        (date(2026, 2, 1), D("150.00"), D("150.00"), D("0.00")),
        (date(2026, 3, 1), D("120.00"), D("120.00"), D("0.00")),
        (date(2026, 4, 1), D("120.00"), D("80.00"), D("40.00")),
    ]
    assert sorted(daily["status"]) == [
        (date(2026, 2, 1), "void"),
        (date(2026, 3, 1), "issued"),
        (date(2026, 4, 1), "issued"),
    ]
    assert daily["ledger"] == [
        ("grant", date(2026, 1, 1), D("200.00")),
        ("draw", date(2026, 2, 1), D("-150.00")),
        ("return", date(2026, 3, 1), D("150.00")),
        ("draw", date(2026, 3, 1), D("-120.00")),
        ("draw", date(2026, 4, 1), D("-80.00")),
    ]
    assert daily["remaining"] == D("0.00")
    assert daily["balances"] == [D("50.00"), D("80.00"), D("80.00")]


def test_i3_cr2_d4_a_void_dated_the_2nd_comes_after_the_1sts_close(
    db, django_capture_on_commit_callbacks, support, finance
):
    """As above, voided on 2 March instead. By day, February's invoice (1 March) was issued the
    day before with the 50.00 left: 120.00 − 50.00 = 70.00 (0.00 left on 1 March); the void
    gives 150.00 back on 2 March; March's invoice (1 April) draws 120.00 of it: total 0.00,
    30.00 left. Balances: 50.00 on 28 February, 0.00 on 1 March, 150.00 on 2 March.

    D4: with the clock through 28 February, a void dated 2 March would give its credit back
    before the close of 1 March ran, which then drew it (February billed 0.00, and the balance
    on 1 March read −70.00). It waits for that close, as every dated change past an unrun
    close does (D2); entered after it, the figures are the daily ones."""
    daily = _void_around_a_close(
        True, django_capture_on_commit_callbacks, support, finance, date(2026, 3, 2)
    )
    assert daily["bills"] == [
        (date(2026, 2, 1), D("150.00"), D("150.00"), D("0.00")),
        (date(2026, 3, 1), D("120.00"), D("50.00"), D("70.00")),
        (date(2026, 4, 1), D("120.00"), D("120.00"), D("0.00")),
    ]
    assert daily["ledger"] == [
        ("grant", date(2026, 1, 1), D("200.00")),
        ("draw", date(2026, 2, 1), D("-150.00")),
        ("draw", date(2026, 3, 1), D("-50.00")),
        ("return", date(2026, 3, 2), D("150.00")),
        ("draw", date(2026, 4, 1), D("-120.00")),
    ]
    assert daily["remaining"] == D("30.00")
    assert daily["balances"] == [D("50.00"), D("0.00"), D("150.00")]


def test_i3_d2_d4_a_void_past_a_close_the_clock_has_not_run_waits_for_it(db, support, finance):
    """The clock through 28 February; January's invoice (150.00, credited 150.00 of a 200.00
    grant) voided dated 2 March: refused until the close of 1 March has run, naming it; nothing
    is given back meanwhile (the grant keeps 50.00)."""
    ws = paid_monthly(date(2026, 1, 1), slug="waits")
    grant = coupons.grant_credits(ws, amount="200.00", as_of=date(2026, 1, 1), year=1, by=support)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=13_000)
    services.run_billing(as_of=date(2026, 2, 28))
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    with pytest.raises(ClockBehind, match="month close due on 1 Mar 2026"):
        void(january, finance, date(2026, 3, 2))
    grant.refresh_from_db()
    assert grant.remaining == D("50.00")
    services.run_billing(as_of=date(2026, 3, 1))
    void(january, finance, date(2026, 3, 2))
    grant.refresh_from_db()
    assert grant.remaining == D("150.00")  # 50.00 − 50.00 (February) + 150.00


def test_i3_w1_a_void_after_a_closure_lapsed_the_credit_gives_nothing_back(db, support, finance):
    """Paid monthly from 1 January 2026, a 500.00 grant from 1 January (to 1 January 2027).
    January, February and March (1 February, 1 March, 1 April) draw 120.00 each: 140.00 left.
    Closed on 16 April (W1, K1): final invoice for 1–15 April, 120 × 15/30 = 60.00, credited
    60.00, total 0.00; the 80.00 left lapses that day. The final invoice voided on 16 April
    (the closure's day) and March's on 17 April give nothing back: the grant lapsed on
    16 April (valid on neither day). Balances: 140.00 on 15 April, 0.00 from the 16th."""
    ws = paid_monthly(date(2026, 1, 1))
    grant = coupons.grant_credits(ws, amount="500.00", as_of=date(2026, 1, 1), year=1, by=support)
    services.run_billing(as_of=date(2026, 4, 15))
    closure = close(ws, support, date(2026, 4, 16))
    final = closure.final_invoice
    assert (final.kind, final.subtotal, final.credits, final.total) == (
        "final",
        D("60.00"),
        D("60.00"),
        D("0.00"),
    )
    march = Invoice.objects.get(workspace=ws, issue_date=date(2026, 4, 1))
    void(final, finance, date(2026, 4, 16))
    void(march, finance, date(2026, 4, 17))
    assert ledger(grant) == [
        ("grant", date(2026, 1, 1), D("500.00")),
        ("draw", date(2026, 2, 1), D("-120.00")),
        ("draw", date(2026, 3, 1), D("-120.00")),
        ("draw", date(2026, 4, 1), D("-120.00")),
        ("draw", date(2026, 4, 16), D("-60.00")),
        ("lapse", date(2026, 4, 16), D("-80.00")),
    ]
    grant.refresh_from_db()
    assert (grant.remaining, grant.lapsed_on) == (D("0.00"), date(2026, 4, 16))
    assert balances(ws, date(2026, 4, 15), date(2026, 4, 16), date(2026, 4, 17)) == [
        D("140.00"),
        D("0.00"),
        D("0.00"),
    ]
    assert sorted(Invoice.objects.filter(workspace=ws).values_list("issue_date", "status")) == [
        (date(2026, 2, 1), "issued"),
        (date(2026, 3, 1), "issued"),
        (date(2026, 4, 1), "void"),
        (date(2026, 4, 16), "void"),
    ]


def test_i3_cr2_cr3_the_credit_report_and_balance_on_the_days_around_a_void(db, support, finance):
    """Paid monthly from 1 January 2026; a 300.00 grant from 15 January, valid up to 15 April
    2026 (by hand). January (1 February) and February (1 March) draw 120.00 each, March's
    (1 April) the last 60.00 of its 120.00. February's invoice is voided on 14 April, the
    grant's last valid day: 120.00 back, lapsing on 15 April (CR3). Report by month (CR2, I3):
    January granted 300.00; February drawn 120.00; March drawn 120.00; April drawn 60.00,
    given back 120.00, lapsed 120.00. Outstanding and the workspace's balance: 0.00 on
    13 April (one grant of 300.00), 120.00 on 14 April, 0.00 on 15 April (no grant valid)."""
    ws = paid_monthly(date(2026, 1, 1))
    coupons.grant_credits(
        ws,
        amount="300.00",
        as_of=date(2026, 1, 15),
        year=1,
        by=support,
        valid_until=date(2026, 4, 15),
    )
    services.run_billing(as_of=date(2026, 4, 13))
    february = Invoice.objects.get(workspace=ws, issue_date=date(2026, 3, 1))
    void(february, finance, date(2026, 4, 14))
    services.run_billing(as_of=date(2026, 4, 16))
    report = credit_movements(start=date(2026, 1, 1), end=date(2026, 5, 1))
    assert [(m["month"], m["granted"], m["drawn"], m["returned"], m["lapsed"]) for m in report] == [
        (date(2026, 1, 1), D("300.00"), D("0.00"), D("0.00"), D("0.00")),
        (date(2026, 2, 1), D("0.00"), D("120.00"), D("0.00"), D("0.00")),
        (date(2026, 3, 1), D("0.00"), D("120.00"), D("0.00"), D("0.00")),
        (date(2026, 4, 1), D("0.00"), D("60.00"), D("120.00"), D("120.00")),
    ]
    assert [outstanding(as_of=day) for day in (date(2026, 4, 13), date(2026, 4, 14))] == [
        {"grants": 1, "granted": D("300.00"), "outstanding": D("0.00")},
        {"grants": 1, "granted": D("300.00"), "outstanding": D("120.00")},
    ]
    assert outstanding(as_of=date(2026, 4, 15)) == {
        "grants": 0,
        "granted": D("0.00"),
        "outstanding": D("0.00"),
    }
    assert balances(ws, date(2026, 4, 13), date(2026, 4, 14), date(2026, 4, 15)) == [
        D("0.00"),
        D("120.00"),
        D("0.00"),
    ]


def test_i3_cr2_voiding_twice_is_refused_and_gives_back_once(db, support, finance):
    """A 100.00 grant from 1 January 2026 on paid monthly Team: January's invoice (1 February),
    120.00, draws all 100.00, total 20.00. Voided on 10 February: 100.00 back. Voided again on
    11 February: refused (already void, I3), the ledger holds one return, 100.00 left."""
    ws = paid_monthly(date(2026, 1, 1))
    grant = coupons.grant_credits(ws, amount="100.00", as_of=date(2026, 1, 1), year=1, by=support)
    services.run_billing(as_of=date(2026, 2, 9))
    january = Invoice.objects.get(workspace=ws)
    assert (january.credits, january.total) == (D("100.00"), D("20.00"))
    void(january, finance, date(2026, 2, 10))
    with pytest.raises(BillingError, match=f"{january.number} is already void"):
        void(january, finance, date(2026, 2, 11), reason="Again")
    assert ledger(grant) == [
        ("grant", date(2026, 1, 1), D("100.00")),
        ("draw", date(2026, 2, 1), D("-100.00")),
        ("return", date(2026, 2, 10), D("100.00")),
    ]
    grant.refresh_from_db()
    assert grant.remaining == D("100.00")
    january.refresh_from_db()
    assert (january.status, january.voided_on, january.void_reason) == (
        "void",
        date(2026, 2, 10),
        "Issued in error",
    )


# --- X2, X3: tax rates set, replaced and withdrawn ------------------------------------------------


def ca_rates():
    return list(
        TaxRate.objects.filter(country="US", region="CA")
        .order_by("valid_from")
        .values_list("valid_from", "rate")
    )


def test_x2_x3_a_rate_set_twice_for_the_same_place_and_day_replaces_the_first(db, support, finance):
    """California, seeded 7.25 % from 2020 (X2). Paid monthly from 1 January 2026, 25 % off
    forever: 120.00 − 30.00 = 90.00 a month (C4). January (1 February): 90.00 × 7.25 % = 6.525
    → 6.53 (ROUND_HALF_UP, X3), total 96.53. On 20 February (the clock through the 19th)
    finance sets 8.5 % from 1 March, then 7.75 % for the same place and day: it replaces the
    first (one rate from 1 March). February (1 March): 90.00 × 7.75 % = 6.975 → 6.98, total
    96.98."""
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    coupons.redeem_coupon(
        ws, coupon(percent_off="25", duration="forever").code, by=support, as_of=date(2026, 1, 1)
    )
    services.run_billing(as_of=date(2026, 2, 19))
    for rate in ("8.5", "7.75"):
        services.set_tax_rate(
            "US",
            region="CA",
            rate=rate,
            name="CA sales tax",
            valid_from=date(2026, 3, 1),
            reason="State budget",
            by=finance,
        )
    assert ca_rates() == [(date(2020, 1, 1), D("7.250")), (date(2026, 3, 1), D("7.750"))]
    services.run_billing(as_of=date(2026, 3, 1))
    assert [(b[1], b[4], b[5], b[7], b[8]) for b in bills(ws)] == [
        (date(2026, 2, 1), D("120.00"), D("30.00"), D("6.53"), D("96.53")),
        (date(2026, 3, 1), D("120.00"), D("30.00"), D("6.98"), D("96.98")),
    ]


def test_x2_x3_a_withdrawn_rate_gives_way_to_the_rate_before(db, support, finance):
    """California, 7.25 %. Paid monthly from 1 January 2026, 25 % off forever, a 40.00 grant
    from 1 January. January (1 February): 120.00 − 30.00 = 90.00, credited 40.00 (CR2), tax on
    50.00 (X3): 3.625 → 3.63, total 53.63. A 9 % rate from 1 March, typed wrong, is withdrawn
    on 28 February (the clock through the 27th: nothing has read it) with why; its history
    keeps it, with who and why (R4). February (1 March): 90.00, no credit left, the rate before
    applies: 90.00 × 7.25 % = 6.525 → 6.53, total 96.53."""
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    coupons.redeem_coupon(
        ws, coupon(percent_off="25", duration="forever").code, by=support, as_of=date(2026, 1, 1)
    )
    coupons.grant_credits(ws, amount="40.00", as_of=date(2026, 1, 1), year=1, by=support)
    services.run_billing(as_of=date(2026, 2, 27))
    wrong = services.set_tax_rate(
        "US",
        region="CA",
        rate="9",
        name="CA sales tax",
        valid_from=date(2026, 3, 1),
        reason="New state rate",
        by=finance,
    )
    services.withdraw_tax_rate(wrong, by=finance, reason="Typed 9 for 7.25")
    assert ca_rates() == [(date(2020, 1, 1), D("7.250"))]
    last = TaxRate.history.filter(id=wrong.pk).order_by("history_date", "history_id").last()
    assert (last.history_type, last.history_change_reason, last.history_user) == (
        "-",
        "Withdrawn: Typed 9 for 7.25",
        finance,
    )
    services.run_billing(as_of=date(2026, 3, 1))
    assert [(b[1], b[4], b[5], b[6], b[7], b[8]) for b in bills(ws)] == [
        (date(2026, 2, 1), D("120.00"), D("30.00"), D("40.00"), D("3.63"), D("53.63")),
        (date(2026, 3, 1), D("120.00"), D("30.00"), D("0.00"), D("6.53"), D("96.53")),
    ]


@pytest.mark.parametrize(
    "clock_through, withdrawn, february_tax",
    [(date(2026, 2, 28), True, D("8.70")), (date(2026, 3, 1), False, D("9.60"))],
    ids=["day-before-its-start", "its-start-processed"],
)
def test_x2_d2_a_rate_is_withdrawn_until_the_clock_processes_its_first_day(
    db, finance, clock_through, withdrawn, february_tax
):
    """California, paid monthly from 1 January 2026. An 8 % rate from 1 March. With the clock
    through 28 February (nothing has read it) it is withdrawn, and February's invoice, dated
    1 March, is taxed at the rate before: 120.00 × 7.25 % = 8.70. With the clock through
    1 March (its first day processed, February's invoice taxed 120.00 × 8 % = 9.60), the
    withdrawal is refused, naming the last processed day, and the rate stays (X2, D2)."""
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    services.run_billing(as_of=date(2026, 2, 27))
    rate = services.set_tax_rate(
        "US",
        region="CA",
        rate="8",
        name="CA sales tax",
        valid_from=date(2026, 3, 1),
        reason="New state rate",
        by=finance,
    )
    services.run_billing(as_of=clock_through)
    if withdrawn:
        services.withdraw_tax_rate(rate, by=finance, reason="Typed wrong")
    else:
        with pytest.raises(DayAlreadyProcessed, match="processed every day through 1 Mar 2026"):
            services.withdraw_tax_rate(rate, by=finance, reason="Typed wrong")
    services.run_billing(as_of=date(2026, 3, 1))
    february = Invoice.objects.get(workspace=ws, issue_date=date(2026, 3, 1))
    assert (february.tax, february.total) == (february_tax, D("120.00") + february_tax)
    assert TaxRate.objects.filter(pk=rate.pk).exists() is not withdrawn


@pytest.mark.parametrize(
    "cancelled_on, subtotal, tax, total, withdrawn",
    [
        (date(2026, 2, 25), D("102.86"), D("9.51"), D("112.37"), False),
        (date(2026, 2, 24), D("98.57"), D("7.15"), D("105.72"), True),
    ],
    ids=["final-on-its-first-day", "final-the-day-before"],
)
def test_x2_k1_a_final_invoice_ahead_of_the_clock_on_the_rates_first_day_keeps_it(
    db, finance, cancelled_on, subtotal, tax, total, withdrawn
):
    """California, paid monthly from 1 February 2026, the clock through 20 February; a 9.25 %
    rate from 25 February. Cancelled on 25 February (K1), ahead of the clock: final invoice for
    1–24 February, 120 × 24/28 = 102.857… → 102.86, taxed at 9.25 %: 9.51455 → 9.51, total
    112.37. It read the rate: withdrawing it is refused (I3: an issued invoice is never
    changed), naming the invoice. Cancelled on 24 February: 1–23 February, 120 × 23/28 =
    98.571… → 98.57, at 7.25 %: 7.146… → 7.15, total 105.72; dated before the rate's start, it
    did not read it: the withdrawal is allowed."""
    ws = paid_monthly(date(2026, 2, 1), business_region="CA")
    services.run_billing(as_of=date(2026, 2, 20))
    rate = services.set_tax_rate(
        "US",
        region="CA",
        rate="9.25",
        name="CA sales tax",
        valid_from=date(2026, 2, 25),
        reason="New state rate",
        by=finance,
    )
    services.change_to_free(ws, as_of=cancelled_on)
    final = Invoice.objects.get(workspace=ws)
    assert (final.kind, final.issue_date, final.subtotal, final.tax, final.total) == (
        "final",
        cancelled_on,
        subtotal,
        tax,
        total,
    )
    if withdrawn:
        services.withdraw_tax_rate(rate, by=finance, reason="Typed wrong")
        assert ca_rates() == [(date(2020, 1, 1), D("7.250"))]
    else:
        with pytest.raises(
            BillingError, match=f"invoice {final.number}, dated 25 Feb 2026, was issued already"
        ):
            services.withdraw_tax_rate(rate, by=finance, reason="Typed wrong")
        assert ca_rates() == [(date(2020, 1, 1), D("7.250")), (date(2026, 2, 25), D("9.250"))]


def test_x1_x2_a_us_rate_names_its_state_canadas_gst_is_country_wide(db, finance):
    """X1, X2: the US has no sales tax of its own, so a US rate without a state is refused.
    Canada's GST is country-wide: 6 % from 1 February 2026 (seeded 5 %) taxes an Alberta
    business (no provincial rate): January's invoice (1 February) 120.00 × 6 % = 7.20, total
    127.20; an Ontario business keeps its own 13 % HST: 15.60, total 135.60."""
    with pytest.raises(BillingError, match="has no sales tax of its own"):
        services.set_tax_rate(
            "US",
            region="",
            rate="5",
            name="Sales tax",
            valid_from=date(2026, 2, 1),
            reason="Federal",
            by=finance,
        )
    assert not TaxRate.objects.filter(country="US", region="").exists()
    alberta = paid_monthly(date(2026, 1, 1), business_country="CA", business_region="AB")
    ontario = paid_monthly(date(2026, 1, 1), business_country="CA", business_region="ON")
    services.set_tax_rate(
        "CA",
        region="",
        rate="6",
        name="GST",
        valid_from=date(2026, 2, 1),
        reason="GST raised",
        by=finance,
    )
    services.run_billing(as_of=date(2026, 2, 1))
    assert [(b[1], b[7], b[8]) for b in bills(alberta)] == [
        (date(2026, 2, 1), D("7.20"), D("127.20"))
    ]
    assert [(b[1], b[7], b[8]) for b in bills(ontario)] == [
        (date(2026, 2, 1), D("15.60"), D("135.60"))
    ]


# --- D3, K2: an annual term's cancellation, day by day --------------------------------------------


def cancelled(ws, *days):
    return [workspace_status(ws, as_of=day)["cancel_at_term_end"] for day in days]


@pytest.mark.parametrize(
    "cancelled_on", [date(2026, 3, 1), date(2026, 12, 31)], ids=["the-1st", "terms-last-day"]
)
def test_d3_k2_an_annual_term_reads_cancelled_from_its_cancellations_day(db, cancelled_on):
    """Annual Team from 1 January 2026: 1,440.00 that day, term to 1 January 2027 (K2); 12,500
    MTUs in March. Cancelled on 1 March 2026 (the 1st, also February's close) or on 31 December
    (the term's last day), the clock through the day before. D3: not cancelled the day before,
    cancelled from that day, before and after the clock runs to 2 January 2027. K2: no refund,
    March's overage still billed (1 April: (12,500 − 10,000) × 0.01 = 25.00), no renewal on
    1 January 2027: Free that day, nothing cancelled any more."""
    ws = paid_annual(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 3, 1), mtus=12_500)
    day_before = cancelled_on - timedelta(days=1)
    services.run_billing(as_of=day_before)
    services.change_to_free(ws, as_of=cancelled_on)
    assert cancelled(ws, day_before, cancelled_on) == [False, True]
    services.run_billing(as_of=date(2027, 1, 2))
    assert cancelled(ws, day_before, cancelled_on, date(2026, 12, 31)) == [False, True, True]
    assert [(b[0], b[1], b[2], b[3], b[8]) for b in bills(ws)] == [
        ("annual", date(2026, 1, 1), date(2026, 1, 1), date(2027, 1, 1), D("1440.00")),
        ("monthly", date(2026, 4, 1), date(2026, 3, 1), date(2026, 4, 1), D("25.00")),
    ]
    status = workspace_status(ws, as_of=date(2027, 1, 1))
    assert (status["plan"], status["cancel_at_term_end"]) == ("free", False)
    assert workspace_status(ws, as_of=date(2026, 12, 31))["plan"] == "team"


def test_d3_k2_a_cancellation_dated_the_terms_end_comes_before_its_renewal(db):
    """Annual Team from 1 January 2026, term to 1 January 2027, the clock through 31 December.
    A cancellation dated 1 January 2027, the term's end, is a change of that day: the day's
    run sees it (D1) before renewing (K2: renews unless cancelled), so no renewal invoice and
    Free from 1 January 2027; 31 December still read as not cancelled (D3)."""
    ws = paid_annual(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 12, 31))
    services.change_to_free(ws, as_of=date(2027, 1, 1))
    services.run_billing(as_of=date(2027, 1, 2))
    assert [(b[0], b[1], b[8]) for b in bills(ws)] == [
        ("annual", date(2026, 1, 1), D("1440.00")),
    ]
    assert workspace_status(ws, as_of=date(2027, 1, 1))["plan"] == "free"
    assert cancelled(ws, date(2026, 12, 31)) == [False]


def test_d3_k2_k4_a_withdrawn_cancellation_reads_not_cancelled_from_then_and_renews(db):
    """Annual Team from 1 January 2026 (term to 1 January 2027), cancelled on 10 March,
    withdrawn on 20 March (back on Team, annual: K4 keeps the term). Not cancelled on 9 March,
    cancelled on 10 March, not from 20 March; the clock run to 2 January 2027 renews the term:
    1,440.00 dated 1 January 2027 for 1 January 2027 – 1 January 2028 (K2), still annual Team
    that day, not cancelled."""
    ws = paid_annual(date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 3, 10))
    assert cancelled(ws, date(2026, 3, 9), date(2026, 3, 10)) == [False, True]
    services.change_to_team(ws, interval="annual", as_of=date(2026, 3, 20))
    services.run_billing(as_of=date(2027, 1, 2))
    assert cancelled(ws, date(2026, 3, 9), date(2026, 3, 20), date(2027, 1, 1)) == [
        False,
        False,
        False,
    ]
    assert [(b[0], b[1], b[2], b[3], b[8]) for b in bills(ws)] == [
        ("annual", date(2026, 1, 1), date(2026, 1, 1), date(2027, 1, 1), D("1440.00")),
        ("annual", date(2027, 1, 1), date(2027, 1, 1), date(2028, 1, 1), D("1440.00")),
    ]
    status = workspace_status(ws, as_of=date(2027, 1, 1))
    assert (status["plan"], status["interval"], status["term_end"]) == (
        "team",
        "annual",
        date(2028, 1, 1),
    )


def test_d3_k2_the_days_a_withdrawn_cancellation_stood_still_read_cancelled(db):
    """D3: workspace_status answers as things stood on the day asked. Annual Team from
    1 January 2026, cancelled on 10 March, withdrawn on 20 March: on 10 and 19 March the term
    was set to end at its term's end (K2), whatever happened on 20 March: True, True; 20 March
    False."""
    ws = paid_annual(date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 3, 10))
    services.change_to_team(ws, interval="annual", as_of=date(2026, 3, 20))
    assert cancelled(ws, date(2026, 3, 10), date(2026, 3, 19), date(2026, 3, 20)) == [
        True,
        True,
        False,
    ]


# --- W1, C5: a closure on the 1st and the coupons that billing month ----------------------------


@pytest.mark.parametrize(
    "closed_on, expected, used",
    [
        (
            date(2026, 2, 28),
            [
                ("monthly", date(2026, 2, 1), D("120.00"), D("0.00"), D("120.00")),
                ("final", date(2026, 2, 28), D("115.71"), D("20.00"), D("95.71")),
            ],
            ("ended", date(2026, 2, 28)),
        ),
        (
            date(2026, 3, 1),
            [
                ("monthly", date(2026, 2, 1), D("120.00"), D("0.00"), D("120.00")),
                ("monthly", date(2026, 3, 1), D("120.00"), D("20.00"), D("100.00")),
            ],
            ("removed", date(2026, 3, 1)),
        ),
    ],
    ids=["final-invoice-uses-it", "closed-on-the-1st"],
)
def test_w1_c5_k1_a_once_coupon_around_a_closure_on_the_1st(db, support, closed_on, expected, used):
    """Paid monthly from 1 January 2026; 20.00 off `once`, redeemed on 10 February (C5: the
    first invoice dated on or after 10 February). January's invoice (1 February) came before
    it: 120.00. Closed on 28 February: the final invoice (K1, W1) for 1–27 February, 120 ×
    27/28 = 115.714… → 115.71, is that first invoice: 20.00 off, 95.71; the coupon is used up
    that day (ran out, not removed). Closed on 1 March: no final invoice (no paid day of March
    before it). W1's "an active discount ends" on 1 March, before that day's close (D1), but
    the coupon was held through February, which had ended: February's invoice, dated that day,
    is its first invoice and takes it, 100.00, as a closure on 28 February or 2 March would
    have given 20.00 off (`DiscountTerm.applies_to`). It billed 120.00 until the
    twenty-fourth session."""
    ws = paid_monthly(date(2026, 1, 1))
    coupons.redeem_coupon(
        ws,
        coupon(amount_off="20.00", duration="once").code,
        by=support,
        as_of=date(2026, 2, 10),
    )
    services.run_billing(as_of=closed_on - timedelta(days=1))
    close(ws, support, closed_on)
    services.run_billing(as_of=date(2026, 4, 2))
    assert [(b[0], b[1], b[4], b[5], b[8]) for b in bills(ws)] == expected
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == used


@pytest.mark.parametrize("closed", [True, False], ids=["closed-on-the-1st", "not-closed"])
def test_w1_c5_a_one_month_coupon_redeemed_on_the_31st_runs_out_on_the_closures_day(
    db, support, closed
):
    """Paid monthly from 1 January 2026. 25 % off `repeating` 1 month, redeemed on 31 January
    (its month is January, C5), with a follow-up of 10 % off forever. January's invoice
    (1 February): 120.00 − 30.00 = 90.00 either way; the coupon runs out on 1 February.
    Closed on 1 February (W1): it ran out that day, so it ends as ran out (not removed) and
    January keeps its discount, but the closure ends discounts: no follow-up is applied, and
    nothing more is billed. Not closed: the follow-up is applied on 1 February (C5), and
    February's invoice (1 March) is 120.00 − 12.00 = 108.00."""
    ws = paid_monthly(date(2026, 1, 1))
    after = coupon(percent_off="10", duration="forever")
    promo = coupon(percent_off="25", duration="repeating", duration_months=1, follow_up=after)
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 1, 31))
    services.run_billing(as_of=date(2026, 1, 31))
    if closed:
        close(ws, support, date(2026, 2, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    february = [(date(2026, 3, 1), D("120.00"), D("12.00"), D("108.00"))]
    assert [(b[1], b[4], b[5], b[8]) for b in bills(ws)] == [
        (date(2026, 2, 1), D("120.00"), D("30.00"), D("90.00")),
        *([] if closed else february),
    ]
    first = Redemption.objects.get(workspace=ws, coupon=promo)
    assert (first.status, first.ended_on) == ("ended", date(2026, 2, 1))
    follow_ups = Redemption.objects.filter(workspace=ws, coupon=after)
    assert follow_ups.exists() is not closed


def test_w1_c5_a_repeating_coupon_still_running_is_removed_by_a_closure_on_the_1st(db, support):
    """25 % off for 3 months, redeemed on 1 January 2026 on paid monthly Team: billing months
    January, February and March (C5), running out on 1 April. January (1 February): 90.00.
    Closed on 1 March: no final invoice (K1), February's close that day bills February. W1
    ends the active discount on 1 March, before that day's close (D1), but February is one of
    its billing months and ended with it (C5): February's invoice keeps it, 90.00, as a
    2-month coupon that ran out on 1 March does (same file) and a closure on 28 February
    discounts the final invoice. It billed 120.00 until the twenty-fourth session: a longer
    coupon gave less for February."""
    ws = paid_monthly(date(2026, 1, 1))
    promo = coupon(percent_off="25", duration="repeating", duration_months=3)
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 28))
    close(ws, support, date(2026, 3, 1))
    services.run_billing(as_of=date(2026, 4, 2))
    assert [(b[0], b[1], b[2], b[4], b[5], b[8]) for b in bills(ws)] == [
        ("monthly", date(2026, 2, 1), date(2026, 1, 1), D("120.00"), D("30.00"), D("90.00")),
        ("monthly", date(2026, 3, 1), date(2026, 2, 1), D("120.00"), D("30.00"), D("90.00")),
    ]
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == ("removed", date(2026, 3, 1))
