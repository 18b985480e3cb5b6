"""A tenth set of edge days, each worked by hand from SPEC (figures in each test's docstring,
none computed by the code under test), on the rules the first nine files touched least:

- S6: partner deals requested on the approval day, on the program's last day and the day it
  ends (31 December), a deal taken out of the catalogue and put back, a closed workspace's
  program (W1: its credit lapses, so does its membership), requests of applications that were
  never accepted, and decisions made once.
- C1, C3, C8: a coupon's code unique whatever its case and surrounding whitespace; the seeded
  `NONPROFIT` and `STARTUP` coupons' exact figures on a prorated leap February and a year's
  first invoice; non-profit and accelerator coupons for a customer of exactly two years.
- S2 (E1–E5): each check's pass or fail and its reason: incorporated exactly two years before
  the application day, one day less and one day more, on and around 29 February 2028; funding
  at the limit and a cent over it; E4 failing for a coupon received the day before and
  overridden (S3), which also lifts C2's startup-program refusal.
- S5: a rejection needs a reason, sends exactly one email, also when the send task or the
  rejection is retried, and is dated after the clock's last day (D2).
- S3, S6 by date: a decision dated before its application's day and a deal request decided
  before it was made are refused, each naming both days (both were accepted: an approval
  granted credit from before the application existed); a request dated before the program
  began names its start (it named the program's end, a year ahead, as past).
- I2: credits never take a total below zero: a grant larger than the bill's subtotal and tax
  draws only the bill after discounts (CR2), the tax is 0.00, and the leftover credit is drawn
  by the next month's invoice (taxed on what it leaves).
- M4: the worked example moved to a trial ending on the last day of January, on 28 February
  2027, on 29 February 2028, on 31 December 2027 (across the year's numbering), and to a trial
  whose days straddle a 1st.
- R5: the admin's deal-request and coupon pages write only through their services.

The multi-day scenarios run the billing clock day by day and in one catch-up run (D4), with
identical outcomes, as the other edge-day files do.
"""

from datetime import date, timedelta
from decimal import Decimal as D
from html import unescape

import pytest
from django.core import mail
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.models import Invoice
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.errors import CouponError, CouponRefused
from coupons.models import Coupon, CreditGrant, Redemption
from startups import services as startups
from startups.errors import ApplicationError
from startups.models import DealRequest, PartnerDeal
from tests.admin_pages import action
from tests.coupons.factories import approved_proof, coupon
from tests.scenarios.clock import both_ways, letters
from tests.scenarios.figures import close, ledger, short
from tests.scenarios.workspaces import new, paid, ws_
from tests.startups.factories import application

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


# --- Helpers ------------------------------------------------------------------------------------


def checks(app):
    """S2: (id, passed, reason) of each check as stored for the reviewer."""
    return [(c["id"], c["passed"], c["reason"]) for c in app.checks]


def apply_for(ws, on, **overrides):
    """S1: an application for `ws` submitted on `on` that passes every check (incorporated
    1 January 2027, 1,500,000.00 raised, Germany) unless `overrides` say otherwise."""
    return application(
        workspace=ws, as_of=on, **{"incorporation_date": date(2027, 1, 1), **overrides}
    )


def member(slug, on, reviewer, *, applied=None):
    """`slug`, paid monthly from the 1st of `on`'s month, accepted into the program on `on`
    (every check passing): the approved application."""
    ws = paid(slug, on.replace(day=1))
    app = apply_for(ws, applied or on.replace(day=1))
    return startups.approve_application(app, by=reviewer, as_of=on)


def deal(company, title="Six months free"):
    return PartnerDeal.objects.create(company=company, title=title, description="An offer.")


# --- S6: partner deals ----------------------------------------------------------------------------


def test_s6_s4_cr1_deals_requested_on_the_approval_day_and_on_the_programs_last_day_31_december(
    db, reviewer
):
    """`yearend` accepted on 31 December 2027: its grant runs from 31 December 2027 up to, not
    including, 31 December 2028 (CR1), so it is a member from 31 December 2027 through
    30 December 2028 (S4).

    - 30 December 2027, the day before the approval: not yet accepted, refused.
    - 31 December 2027, the approval day: WarehouseCo's deal, accepted (requested_on that day).
    - 30 December 2028, the program's last day: MailCo's deal, accepted.
    - 31 December 2028, the anniversary: AdsCo's deal, refused: the program ended that day.
    - 1 January 2029: refused too. Two requests in all."""
    warehouse, mailco, ads = deal("WarehouseCo"), deal("MailCo"), deal("AdsCo")
    ws = paid("yearend", date(2027, 12, 1))
    app = apply_for(ws, date(2027, 12, 1))
    eve = date(2027, 12, 30)
    with pytest.raises(ApplicationError, match="Only startups accepted"):
        startups.request_deal(app, deal=warehouse, as_of=eve)
    app = startups.approve_application(app, by=reviewer, as_of=date(2027, 12, 31))
    first = startups.request_deal(app, deal=warehouse, as_of=date(2027, 12, 31))
    last = startups.request_deal(app, deal=mailco, as_of=date(2028, 12, 30))
    for on in (date(2028, 12, 31), date(2029, 1, 1)):
        with pytest.raises(ApplicationError, match="ended on 31 Dec 2028"):
            startups.request_deal(app, deal=ads, as_of=on)
    assert (first.requested_on, first.status, last.requested_on, last.status) == (
        date(2027, 12, 31),
        "requested",
        date(2028, 12, 30),
        "requested",
    )
    assert sorted(app.deal_requests.values_list("deal__company", flat=True)) == [
        "MailCo",
        "WarehouseCo",
    ]
    assert [
        workspace_status(ws, as_of=d)["startup_member"]
        for d in (eve, date(2027, 12, 31), date(2028, 12, 30), date(2028, 12, 31))
    ] == [False, True, True, False]


def test_s6_s4_a_deal_requested_the_day_before_an_approval_entered_ahead_names_no_false_end(
    db, reviewer
):
    """The same `yearend`, approved on 31 December 2027 (entered first); a request dated
    30 December 2027 is refused (S4: not a member that day). Its reason must be true that day:
    the program had not begun; it ends on 31 December 2028, a year later, which the refusal
    must not give as the day it ended."""
    ws = paid("early", date(2027, 12, 1))
    app = apply_for(ws, date(2027, 12, 1))
    app = startups.approve_application(app, by=reviewer, as_of=date(2027, 12, 31))
    with pytest.raises(ApplicationError) as refused:
        startups.request_deal(app, deal=deal("WarehouseCo"), as_of=date(2027, 12, 30))
    assert str(refused.value) == (
        f"{app.company_name} is a program member from 31 Dec 2027: a partner deal requested on "
        "30 Dec 2027 is before it."
    )
    assert not DealRequest.objects.exists()


def test_s6_a_deal_taken_out_of_the_catalogue_on_the_1st_and_put_back(db, reviewer):
    """`cat` accepted on 1 February 2028. The catalogue's WarehouseCo deal is requested on
    1 February (accepted). MailCo's deal is taken out of the catalogue (inactive) on 29
    February by staff: a request that day is refused ("no longer offered") and writes nothing;
    the earlier WarehouseCo request can still be fulfilled (a request made while it was
    offered). Put back on 1 March: requested that day, accepted. Saving a deal needs a company
    and a title (S6's catalogue), each named."""
    app = member("cat", date(2028, 2, 1), reviewer)
    warehouse = startups.save_partner_deal(
        None, by=reviewer, company="WarehouseCo", title="6 months free", description="", active=True
    )
    mailco = startups.save_partner_deal(
        None, by=reviewer, company="MailCo", title="20 % off", description="", active=True
    )
    first = startups.request_deal(app, deal=warehouse, as_of=date(2028, 2, 1))
    mailco = startups.save_partner_deal(
        mailco, by=reviewer, company="MailCo", title="20 % off", description="", active=False
    )
    with pytest.raises(ApplicationError, match="no longer offered"):
        startups.request_deal(app, deal=mailco, as_of=date(2028, 2, 29))
    assert app.deal_requests.count() == 1
    startups.decide_deal_request(first, by=reviewer, fulfil=True, as_of=date(2028, 2, 29))
    mailco = startups.save_partner_deal(
        mailco, by=reviewer, company="MailCo", title="20 % off", description="", active=True
    )
    again = startups.request_deal(app, deal=mailco, as_of=date(2028, 3, 1))
    assert sorted(
        app.deal_requests.values_list("deal__company", "status", "requested_on", "decided_on")
    ) == [
        ("MailCo", "requested", date(2028, 3, 1), None),
        ("WarehouseCo", "fulfilled", date(2028, 2, 1), date(2028, 2, 29)),
    ]
    assert again.deal_id == mailco.pk
    with pytest.raises(ApplicationError) as bad:
        startups.save_partner_deal(
            None, by=reviewer, company=" ", title="", description="", active=True
        )
    assert "company" in str(bad.value) and "title" in str(bad.value)
    assert PartnerDeal.objects.count() == 2


def test_s6_w1_cr2_a_closed_workspaces_program_ends_on_the_closure_day_and_stays_ended(
    db, reviewer, support
):
    """`shut` accepted on 1 March 2027 (paid monthly from 1 March). A deal requested on
    31 March, the last day of the month: accepted. Closed on 31 March too (W1: its unused
    credit lapses that day, the program with it: S4 reads the grants valid that day): a second
    deal requested on 31 March after the closure is refused, "ended on 31 Mar 2027"; so on
    1 April. Reopened on 2 April (W1: Free, no credit back): still refused. The closure's final
    invoice (K1): 1–30 March, 120 × 30/31 = 116.129… → 116.13, credited in full (the grant was
    valid on its issue date, 31 March): 0.00; the grant's ledger: +25,000.00, −116.13 and the
    lapse of the 24,883.87 left, on 31 March."""
    warehouse, mailco = deal("WarehouseCo"), deal("MailCo")
    app = member("shut", date(2027, 3, 1), reviewer)
    last = date(2027, 3, 31)
    startups.request_deal(app, deal=warehouse, as_of=last)
    close(ws_("shut"), support, last)
    for on in (last, date(2027, 4, 1)):
        with pytest.raises(ApplicationError, match="ended on 31 Mar 2027"):
            startups.request_deal(app, deal=mailco, as_of=on)
    services.run_billing(as_of=date(2027, 4, 1))
    services.reopen_workspace(ws_("shut"), by=support, reason="Came back", as_of=date(2027, 4, 2))
    with pytest.raises(ApplicationError, match="ended on 31 Mar 2027"):
        startups.request_deal(app, deal=mailco, as_of=date(2027, 4, 2))
    assert list(app.deal_requests.values_list("deal__company", flat=True)) == ["WarehouseCo"]
    assert short("shut") == [
        (
            "final",
            last,
            date(2027, 3, 1),
            last,
            D("116.13"),
            D("0.00"),
            D("116.13"),
            D("0.00"),
            D("0.00"),
        )
    ]
    grant = CreditGrant.objects.get(workspace__slug="shut")
    assert ledger(grant) == [
        ("grant", date(2027, 3, 1), D("25000.00")),
        ("draw", last, D("-116.13")),
        ("lapse", last, D("-24883.87")),
    ]
    assert workspace_status(ws_("shut"), as_of=date(2027, 4, 2))["startup_member"] is False


def test_s6_s3_requests_of_applications_never_accepted_and_decisions_made_once(db, reviewer):
    """S6: only accepted startups request deals. On 1 January 2028: a submitted application,
    one rejected on 31 December 2027 and one withdrawn that day are each refused ("Only
    startups accepted…"), nothing written. An accepted one (1 January 2028) requests two
    deals: one fulfilled on 31 January, the other declined the same day with a reason (a
    decline without one is refused); each decided once: fulfilling the declined one, or
    declining the fulfilled one, is refused."""
    warehouse, mailco = deal("WarehouseCo"), deal("MailCo")
    on = date(2028, 1, 1)
    waiting = apply_for(paid("wait", date(2027, 12, 1)), date(2027, 12, 1))
    rejected = startups.reject_application(
        apply_for(paid("nope", date(2027, 12, 1)), date(2027, 12, 1)),
        by=reviewer,
        reason="Too late a stage",
        as_of=date(2027, 12, 31),
    )
    withdrawn = startups.withdraw_application(
        apply_for(paid("gone", date(2027, 12, 1)), date(2027, 12, 1)),
        by=reviewer,
        as_of=date(2027, 12, 31),
        reason="Founder asked",
    )
    for app in (waiting, rejected, withdrawn):
        with pytest.raises(ApplicationError, match="Only startups accepted"):
            startups.request_deal(app, deal=warehouse, as_of=on)
    assert not DealRequest.objects.exists()
    accepted = member("yes", on, reviewer, applied=date(2027, 12, 20))
    one = startups.request_deal(accepted, deal=warehouse, as_of=on)
    two = startups.request_deal(accepted, deal=mailco, as_of=on)
    end = date(2028, 1, 31)
    startups.decide_deal_request(one, by=reviewer, fulfil=True, as_of=end)
    with pytest.raises(ApplicationError, match="Say why"):
        startups.decide_deal_request(two, by=reviewer, fulfil=False, as_of=end, note="  ")
    startups.decide_deal_request(two, by=reviewer, fulfil=False, as_of=end, note="Offer paused")
    with pytest.raises(ApplicationError, match="already declined"):
        startups.decide_deal_request(two, by=reviewer, fulfil=True, as_of=end)
    with pytest.raises(ApplicationError, match="already fulfilled"):
        startups.decide_deal_request(one, by=reviewer, fulfil=False, as_of=end, note="No")
    assert sorted(
        DealRequest.objects.values_list("deal__company", "status", "decided_on", "note")
    ) == [
        ("MailCo", "declined", end, "Offer paused"),
        ("WarehouseCo", "fulfilled", end, ""),
    ]


def test_s6_a_request_cannot_be_decided_on_a_day_before_it_was_made(db, reviewer):
    """`ask`, accepted on 1 December 2027, requests WarehouseCo's deal on 31 December 2027
    (S6). Staff mark requests fulfilled or declined: a request is decided after it is made, so
    fulfilling it as of 30 December 2027, the day before, is refused and leaves it requested;
    fulfilled on 31 December it is decided that day."""
    app = member("ask", date(2027, 12, 1), reviewer)
    request = startups.request_deal(app, deal=deal("WarehouseCo"), as_of=date(2027, 12, 31))
    with pytest.raises(ApplicationError) as refused:
        startups.decide_deal_request(request, by=reviewer, fulfil=True, as_of=date(2027, 12, 30))
    assert str(refused.value) == (
        "A decision dated 30 Dec 2027 is before the request was made (31 Dec 2027)."
    )
    request.refresh_from_db()
    assert (request.status, request.decided_on) == ("requested", None)
    startups.decide_deal_request(request, by=reviewer, fulfil=True, as_of=date(2027, 12, 31))
    request.refresh_from_db()
    assert (request.status, request.decided_on) == ("fulfilled", date(2027, 12, 31))


# --- C1, C3, C8: codes and the seeded coupons ---------------------------------------------------


def test_c1_a_code_is_unique_whatever_its_case_and_the_whitespace_around_it(db, support):
    """C1: a coupon has a unique code. `spring28` is kept as SPRING28; " Spring28\\t",
    "SPRING28\\n" and "spring28" are the same code and refused, each naming it ("The code
    SPRING28 is already used…"); so are " nonprofit " and "Startup" (the seeded ones, C8).
    "SPRING 28" (a space inside) is no code at all. One coupon written. Support redeems it
    typed " spring28 " on 29 February 2028 for `leap` (paid monthly from 1 February): the
    same coupon, 10 % off `once`: February's invoice (1 March) 120.00 − 12.00 = 108.00."""
    seeded = Coupon.objects.count()
    made = coupons.create_coupon("spring28", "Spring", "promotion", percent_off="10")
    assert made.code == "SPRING28"
    for code, taken in (
        (" Spring28\t", "SPRING28"),
        ("SPRING28\n", "SPRING28"),
        ("spring28", "SPRING28"),
        (" nonprofit ", "NONPROFIT"),
        ("Startup", "STARTUP"),
    ):
        with pytest.raises(CouponError, match=f"The code {taken} is already used"):
            coupons.create_coupon(code, "Again", "promotion", amount_off="5.00")
    with pytest.raises(CouponError, match="is not a coupon code"):
        coupons.create_coupon("SPRING 28", "Spaced", "promotion", amount_off="5.00")
    assert Coupon.objects.count() == seeded + 1
    paid("leap", date(2028, 2, 1))
    redemption = coupons.redeem_coupon(
        ws_("leap"), " spring28 ", by=support, as_of=date(2028, 2, 29)
    )
    assert (redemption.coupon_id, redemption.redeemed_on) == (made.pk, date(2028, 2, 29))
    with pytest.raises(CouponRefused) as again:
        coupons.redeem_coupon(ws_("leap"), "SPRING28", by=support, as_of=date(2028, 2, 29))
    assert again.value.reason == CouponRefused.ALREADY_RECEIVED
    services.run_billing(as_of=date(2028, 3, 1))
    assert [b[4:] for b in short("leap")] == [
        (D("120.00"), D("12.00"), D("0.00"), D("0.00"), D("108.00"))
    ]


def test_c8_c6_c4_the_seeded_nonprofit_coupon_on_a_prorated_leap_february_and_a_full_march(
    db, django_capture_on_commit_callbacks, support
):
    """C8: `NONPROFIT` is C6's: $120.00 off, `forever`, kind non-profit, monthly bills.
    `npo` is paid monthly from 15 February 2028 and its proof approved that day (applying
    NONPROFIT at once, C6). February 2028, 15 paid days of 29: 120 × 15/29 = 62.0689… → 62.07;
    C4: min(120.00, 62.07) = 62.07 off → 0.00, still issued (M1). March, 12,500 MTUs: 120.00 +
    25.00 = 145.00 − 120.00 = 25.00. April, 10,000 MTUs: 120.00 − 120.00 = 0.00 (forever).
    Both runs alike."""
    seeded = Coupon.objects.get(code="NONPROFIT")
    assert (
        seeded.kind,
        seeded.amount_off,
        seeded.percent_off,
        seeded.credit_amount,
        seeded.duration,
        seeded.intervals,
    ) == ("nonprofit", D("120.00"), None, None, "forever", ("monthly",))

    def actions(day):
        if day == date(2028, 2, 15):
            paid("npo", day)
            approved_proof(ws_("npo"), support, as_of=day, apply_discount=True)
        if day == date(2028, 3, 31):
            services.record_usage(ws_("npo"), month=date(2028, 3, 1), mtus=12_500)
        if day == date(2028, 4, 30):
            services.record_usage(ws_("npo"), month=date(2028, 4, 1), mtus=10_000)

    outcome = both_ways(
        django_capture_on_commit_callbacks,
        date(2028, 2, 15),
        date(2028, 5, 1),
        actions,
        lambda: {"bills": [b[1:2] + b[4:] for b in short("npo")]},
    )
    assert outcome["bills"] == [
        (date(2028, 3, 1), D("62.07"), D("62.07"), D("0.00"), D("0.00"), D("0.00")),
        (date(2028, 4, 1), D("145.00"), D("120.00"), D("0.00"), D("0.00"), D("25.00")),
        (date(2028, 5, 1), D("120.00"), D("120.00"), D("0.00"), D("0.00"), D("0.00")),
    ]


def test_c8_cr1_cr2_the_seeded_startup_coupon_from_1_january_credits_the_years_invoices(
    db, reviewer
):
    """C8: `STARTUP` is the startup-program credit, 25,000.00 a year, both intervals, no
    percent or amount off. `jan` (paid monthly from 1 December 2027) is accepted on 1 January
    2028: STARTUP redeemed that day, a 25,000.00 grant valid 1 January 2028 up to 1 January
    2029 (CR1). December 2027's invoice, issued 1 January 2028 (the grant's first day):
    120.00, credited in full → 0.00 (CR2: a grant valid on the invoice date), 24,880.00 left.
    January 2028, 30,000 MTUs (1 February): 120.00 + 200.00 = 320.00 credited → 0.00,
    24,560.00 left."""
    seeded = Coupon.objects.get(code="STARTUP")
    assert (
        seeded.kind,
        seeded.credit_amount,
        seeded.percent_off,
        seeded.amount_off,
        seeded.intervals,
    ) == ("startup_program", D("25000.00"), None, None, ("monthly", "annual"))
    ws = paid("jan", date(2027, 12, 1))
    app = apply_for(ws, date(2027, 12, 10))
    services.run_billing(as_of=date(2027, 12, 31))
    startups.approve_application(app, by=reviewer, as_of=date(2028, 1, 1))
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.coupon.code, redemption.redeemed_on) == ("STARTUP", date(2028, 1, 1))
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.amount, grant.valid_from, grant.valid_until, grant.year) == (
        D("25000.00"),
        date(2028, 1, 1),
        date(2029, 1, 1),
        1,
    )
    services.record_usage(ws, month=date(2028, 1, 1), mtus=30_000)
    services.run_billing(as_of=date(2028, 2, 1))
    assert [b[1:2] + b[4:] for b in short("jan")] == [
        (date(2028, 1, 1), D("120.00"), D("0.00"), D("120.00"), D("0.00"), D("0.00")),
        (date(2028, 2, 1), D("320.00"), D("0.00"), D("320.00"), D("0.00"), D("0.00")),
    ]
    assert [
        workspace_status(ws, as_of=d)["credit_balance"]
        for d in (date(2028, 1, 1), date(2028, 2, 1))
    ] == [
        D("24880.00"),
        D("24560.00"),
    ]


def test_c3_c5_c6_c2_a_customer_of_exactly_two_years_gets_non_profit_and_accelerator_coupons(
    db, support
):
    """C3: non-profit and accelerator coupons go to long-standing customers too. `vet` and
    `alum`, paid monthly from 31 December 2025, each received WELCOME (10 % off `once`) that
    day; on 31 December 2027, their second anniversary:

    - `vet`'s non-profit proof approved, NONPROFIT applied (C6, forever from the month of
      redemption, C5: December 2027 included). December's invoice (1 January 2028): 120.00 −
      120.00 = 0.00; January's (1 February) too. An accelerator coupon for `vet` the same day
      is refused: a discount already active (C2).
    - `alum` receives ACCEL25 (accelerator, 25 % off, repeating 1 month): December's invoice
      120.00 − 30.00 = 90.00; January's back to 120.00 (C5: ran out).
    - The startup program's coupon is refused to both: they received a coupon before (C2)."""
    coupon(code="WELCOME", percent_off="10", duration="once")
    coupon(
        code="ACCEL25",
        kind="accelerator",
        percent_off="25",
        duration="repeating",
        duration_months=1,
    )
    start, on = date(2025, 12, 31), date(2027, 12, 31)
    for slug in ("vet", "alum"):
        paid(slug, start)
        coupons.redeem_coupon(ws_(slug), "WELCOME", by=support, as_of=start)
    services.run_billing(as_of=date(2027, 12, 30))
    approved_proof(ws_("vet"), support, as_of=on, apply_discount=True)
    with pytest.raises(CouponRefused) as active:
        coupons.redeem_coupon(ws_("vet"), "ACCEL25", by=support, as_of=on)
    assert active.value.reason == CouponRefused.DISCOUNT_ACTIVE
    coupons.redeem_coupon(ws_("alum"), "ACCEL25", by=support, as_of=on)
    for slug in ("vet", "alum"):
        with pytest.raises(CouponRefused) as startup:
            coupons.redeem_coupon(ws_(slug), "STARTUP", by=support, as_of=on)
        assert startup.value.reason == CouponRefused.STARTUP_AFTER_COUPON
    services.run_billing(as_of=date(2028, 2, 1))
    since = date(2028, 1, 1)
    assert [b[1:2] + b[4:6] + b[8:] for b in short("vet") if b[1] >= since] == [
        (date(2028, 1, 1), D("120.00"), D("120.00"), D("0.00")),
        (date(2028, 2, 1), D("120.00"), D("120.00"), D("0.00")),
    ]
    assert [b[1:2] + b[4:6] + b[8:] for b in short("alum") if b[1] >= since] == [
        (date(2028, 1, 1), D("120.00"), D("30.00"), D("90.00")),
        (date(2028, 2, 1), D("120.00"), D("0.00"), D("120.00")),
    ]
    # WELCOME went to the first invoice on or after 31 December 2025 (C5): 1 January 2026's,
    # December 2025's one paid day: 120 × 1/31 = 3.8709… → 3.87, 10 % = 0.387 → 0.39.
    assert [b[4:6] for b in short("alum")][:2] == [
        (D("3.87"), D("0.39")),
        (D("120.00"), D("0.00")),
    ]


# --- S2: E1–E5, each check's pass or fail and its reason -----------------------------------------


@pytest.mark.parametrize(
    ("applied", "incorporated", "passed", "words"),
    [
        (date(2028, 1, 1), date(2025, 12, 31), False, "two years or more"),
        (date(2028, 1, 1), date(2026, 1, 1), False, "two years or more"),
        (date(2028, 1, 1), date(2026, 1, 2), True, "less than two years"),
        (date(2027, 12, 31), date(2025, 12, 31), False, "two years or more"),
        (date(2027, 12, 31), date(2026, 1, 1), True, "less than two years"),
        (date(2028, 2, 29), date(2026, 2, 28), False, "two years or more"),
        (date(2028, 2, 29), date(2026, 3, 1), True, "less than two years"),
        (date(2028, 2, 29), date(2028, 2, 29), True, "less than two years"),
        (date(2028, 3, 1), date(2026, 3, 1), False, "two years or more"),
        (date(2028, 3, 1), date(2026, 3, 2), True, "less than two years"),
    ],
    ids=[
        "1-jan-a-day-more",
        "1-jan-exactly",
        "1-jan-a-day-less",
        "31-dec-exactly",
        "31-dec-a-day-less",
        "29-feb-two-years-and-a-day",
        "29-feb-a-day-less",
        "29-feb-the-same-day",
        "1-mar-after-29-feb-exactly",
        "1-mar-after-29-feb-a-day-less",
    ],
)
def test_s2_e1_incorporated_two_years_before_the_application_day_exactly_or_a_day_either_way(
    db, applied, incorporated, passed, words
):
    """E1: incorporated less than two years before the application date (the day it was
    submitted). Exactly two years (1 January 2026 → 1 January 2028; 31 December 2025 →
    31 December 2027; 1 March 2026 → 1 March 2028) is not less: E1 fails; a day later
    incorporated passes; a day earlier fails. Applied on 29 February 2028: 28 February 2026 is
    two years and a day before it (28 February 2028 is its second anniversary), E1 fails;
    1 March 2026 is a day short of two years (its second anniversary is 1 March 2028, after
    29 February), E1 passes; incorporated that very day passes. The reason names both days;
    the other checks pass (1,500,000.00 raised, Germany, a workspace never couponed)."""
    app = apply_for(new("e1", applied), applied, incorporation_date=incorporated)
    e1 = checks(app)[0]
    assert e1 == (
        "E1",
        passed,
        f"Incorporated {incorporated:%-d %b %Y}, {words} before the application date "
        f"{applied:%-d %b %Y}",
    )
    assert [c[1] for c in checks(app)[1:]] == [True, True, True, True]
    assert app.failing_checks == ("" if passed else "E1")


def test_s2_e2_e3_e4_e5_each_check_passes_and_fails_with_its_reason_on_31_december(db):
    """S2, applications submitted on 31 December 2027:

    - `edge`: 5,000,000.00 raised (at the limit, E2 passes), Germany (E3), a workspace never
      couponed (E4), the only application of its company (E5): every check passes, each with
      its reason.
    - `over`: 5,000,000.01 raised (E2 fails by a cent), Belarus (E3: not an eligible
      territory, seeded without BY), a workspace that received WELCOME on 30 December (E4),
      and a second application of "Edge Labs, Inc." (E5: the same company as `edge`'s "Edge
      Labs" while that one is open). `failing_checks` reads "E2 E3 E4 E5"."""
    coupon(code="WELCOME", percent_off="10", duration="once")
    on = date(2027, 12, 31)
    edge = apply_for(
        new("edge", date(2027, 12, 1)),
        on,
        company_name="Edge Labs",
        total_funding=D("5000000.00"),
    )
    couponed = paid("over", date(2027, 12, 1))
    coupons.redeem_coupon(couponed, "WELCOME", by=None, as_of=date(2027, 12, 30))
    over = apply_for(
        couponed,
        on,
        company_name="Edge Labs, Inc.",
        total_funding=D("5000000.01"),
        country="BY",
    )
    assert checks(edge) == [
        (
            "E1",
            True,
            "Incorporated 1 Jan 2027, less than two years before the application date 31 Dec 2027",
        ),
        ("E2", True, "Raised $5,000,000.00, within the $5,000,000.00 limit"),
        ("E3", True, "Germany is an eligible territory"),
        ("E4", True, "Workspace edge never received a coupon or credit"),
        ("E5", True, "No other open application for this company or workspace"),
    ]
    assert checks(over)[1:] == [
        ("E2", False, "Raised $5,000,000.01, more than the $5,000,000.00 limit"),
        ("E3", False, "Belarus is not an eligible territory"),
        ("E4", False, "Workspace over has received a coupon or credit: WELCOME on 30 Dec 2027"),
        ("E5", False, f"Application #{edge.pk} for Edge Labs is still open"),
    ]
    assert over.failing_checks == "E2 E3 E4 E5"
    edge.refresh_from_db()
    assert edge.failing_checks == "E5"  # E5 reads the other, opened after it


def test_s2_e4_s3_c2_a_coupon_received_on_the_application_day_overridden_on_1_january(
    db, django_capture_on_commit_callbacks, reviewer, support, staff_user
):
    """`had`, paid monthly from 1 December 2027, applies on 31 December 2027 (E4 passes then:
    nothing received). Support redeems WELCOME (10 % off `once`) for it later that day. The
    clock runs through 31 December. On 1 January 2028 the reviewer's approval evaluates the
    checks again: E4 fails, "Workspace had has received a coupon or credit: WELCOME on 31 Dec
    2027", and approval without an override reason is refused naming E4 (S3); a staff user
    not allowed to override is refused even with a reason. The reviewer approves with an
    override reason: STARTUP is redeemed though the workspace received a coupon before (S3:
    an override of E4 lifts C2's startup-program refusal), a 25,000.00 grant from 1 January
    2028 to 1 January 2029. December's invoice (1 January 2028): 120.00 − 12.00 (WELCOME,
    C5) = 108.00, credited in full → 0.00; 24,892.00 left. One acceptance email.

    `cred`, given a 50.00 credit by hand on 31 December, applies that day: E4 fails, naming
    the credit."""
    coupon(code="WELCOME", percent_off="10", duration="once")
    on = date(2027, 12, 31)
    ws = paid("had", date(2027, 12, 1))
    with django_capture_on_commit_callbacks(execute=True):
        app = apply_for(ws, on, contact_email="ceo@had.example.com", company_name="Had")
    assert checks(app)[3] == ("E4", True, "Workspace had never received a coupon or credit")
    coupons.redeem_coupon(ws, "WELCOME", by=support, as_of=on)
    cred = paid("cred", date(2027, 12, 1))
    coupons.grant_credits(cred, amount="50.00", as_of=on, year=1, by=support)
    assert checks(apply_for(cred, on))[3] == (
        "E4",
        False,
        "Workspace cred has received a coupon or credit: a credit of $50.00 from 31 Dec 2027",
    )
    services.run_billing(as_of=on)
    jan = date(2028, 1, 1)
    with pytest.raises(ApplicationError) as refused:
        startups.approve_application(app, by=reviewer, as_of=jan)
    assert str(refused.value) == (
        "Approval needs every check to pass (E4: Workspace had has received a coupon or "
        "credit: WELCOME on 31 Dec 2027), or an override reason."
    )
    clerk = staff_user("Support", username="clerk")
    with pytest.raises(ApplicationError, match="you may not override them"):
        startups.approve_application(app, by=clerk, override_reason="Promo only", as_of=jan)
    assert not CreditGrant.objects.filter(workspace=ws).exists()
    with django_capture_on_commit_callbacks(execute=True):
        app = startups.approve_application(
            app, by=reviewer, override_reason="WELCOME was a sign-up promo", as_of=jan
        )
    assert (app.status, app.decided_on, app.override_reason) == (
        "approved",
        jan,
        "WELCOME was a sign-up promo",
    )
    assert sorted(
        Redemption.objects.filter(workspace=ws).values_list("coupon__code", "redeemed_on")
    ) == [
        ("STARTUP", jan),
        ("WELCOME", on),
    ]
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.amount, grant.valid_from, grant.valid_until) == (
        D("25000.00"),
        jan,
        date(2029, 1, 1),
    )
    services.run_billing(as_of=jan)
    assert [b[1:2] + b[4:] for b in short("had")] == [
        (jan, D("120.00"), D("12.00"), D("108.00"), D("0.00"), D("0.00"))
    ]
    assert workspace_status(ws, as_of=jan)["credit_balance"] == D("24892.00")
    assert [m for m in letters() if m[0] == "ceo@had.example.com"] == [
        ("ceo@had.example.com", f"We received your Startup Program application #{app.pk}"),
        ("ceo@had.example.com", "Welcome to the Startup Program, Had"),
    ]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_s3_s5_cr1_a_decision_dated_before_the_application_day_is_refused(
    db, django_capture_on_commit_callbacks, reviewer, decision
):
    """S3: submitted → (in review →) approved | rejected: a decision comes on or after the day
    the application was submitted. `late` applies on 31 December 2027; an approval or a
    rejection dated 30 December 2027 is refused and changes nothing: still submitted, no
    STARTUP redemption, no grant (CR1 would date it from 30 December 2027, before the
    application), no email besides the confirmation. Dated 31 December it is accepted."""
    with django_capture_on_commit_callbacks(execute=True):
        app = apply_for(
            paid("late", date(2027, 12, 1)),
            date(2027, 12, 31),
            contact_email="ceo@late.example.com",
        )

    def decide(on):
        if decision == "approve":
            return startups.approve_application(app, by=reviewer, as_of=on)
        return startups.reject_application(app, by=reviewer, reason="Not a fit", as_of=on)

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(ApplicationError) as refused,
    ):
        decide(date(2027, 12, 30))
    what = "An approval" if decision == "approve" else "A rejection"
    assert str(refused.value) == (
        f"{what} dated 30 Dec 2027 is before application #{app.pk} was submitted (31 Dec 2027)."
    )
    app.refresh_from_db()
    assert (app.status, app.decided_on) == ("submitted", None)
    assert not CreditGrant.objects.exists() and not Redemption.objects.exists()
    assert len(mail.outbox) == 1
    decided = decide(date(2027, 12, 31))
    assert decided.decided_on == date(2027, 12, 31)


# --- S5: a rejection ----------------------------------------------------------------------------


def test_s5_d2_a_rejection_needs_a_reason_is_dated_after_the_clock_and_emails_once_when_retried(
    db, django_capture_on_commit_callbacks, reviewer
):
    """Submitted on 30 December 2027 (one confirmation email); the clock run through
    31 December. A rejection with an empty or blank reason is refused ("A rejection needs a
    reason…", S5); one dated 31 December is refused (D2: a day the clock processed, named).
    Rejected on 1 January 2028 with a reason: one rejection email, "Your Startup Program
    application #N", to the contact. The send task retried for that email sends nothing more;
    the rejection clicked again (a retried request) is refused and sends nothing. Two emails
    in all, one outbox row of the rejection's kind, sent."""
    from billing.models import OutboundEmail
    from billing.tasks import send_emails

    with django_capture_on_commit_callbacks(execute=True):
        app = apply_for(
            paid("rej", date(2027, 12, 1)), date(2027, 12, 30), contact_email="ceo@rej.example.com"
        )
    services.run_billing(as_of=date(2027, 12, 31))
    for reason in ("", "   "):
        with pytest.raises(ApplicationError, match="A rejection needs a reason"):
            startups.reject_application(app, by=reviewer, reason=reason, as_of=date(2028, 1, 1))
    with pytest.raises(BillingError, match="processed every day through 31 Dec 2027"):
        startups.reject_application(app, by=reviewer, reason="Late", as_of=date(2027, 12, 31))
    with django_capture_on_commit_callbacks(execute=True):
        startups.reject_application(
            app, by=reviewer, reason="Revenue above the program's stage", as_of=date(2028, 1, 1)
        )
    sent = OutboundEmail.objects.get(kind="startup_application_rejected")
    with django_capture_on_commit_callbacks(execute=True):
        send_emails.apply(args=[[sent.pk]])
        with pytest.raises(ApplicationError, match="already rejected on 1 Jan 2028"):
            startups.reject_application(app, by=reviewer, reason="Again", as_of=date(2028, 1, 1))
    app.refresh_from_db()
    assert (app.status, app.decided_on, app.rejection_reason) == (
        "rejected",
        date(2028, 1, 1),
        "Revenue above the program's stage",
    )
    assert letters() == [
        ("ceo@rej.example.com", f"We received your Startup Program application #{app.pk}"),
        ("ceo@rej.example.com", f"Your Startup Program application #{app.pk}"),
    ]
    assert list(
        OutboundEmail.objects.filter(kind="startup_application_rejected").values_list("status")
    ) == [("sent",)]
    rejection = next(m for m in mail.outbox if m.subject.startswith("Your Startup"))
    assert "Revenue above the program's stage" in rejection.body


# --- I2: credits larger than the bill ------------------------------------------------------------


def test_i2_cr2_x3_a_grant_larger_than_subtotal_and_tax_leaves_the_rest_for_next_month(
    db, django_capture_on_commit_callbacks, support
):
    """California, 7.25 % (seeded). `ca`, paid monthly from 1 February 2028, given 200.00 of
    credit that day (valid a year). February 2028 (1 March): 120.00; 200.00 is more than
    subtotal and tax together (120.00 + 8.70 = 128.70), but credits come off after discounts
    and before tax, up to the bill (CR2): 120.00 drawn, nothing taxable, tax 0.00, total 0.00,
    never below zero (I2); lines base 120.00, credit −120.00, no tax line. 80.00 left. March,
    10,500 MTUs (1 April): 120.00 + 5.00 = 125.00 − 80.00 = 45.00 taxable; tax 3.2625 → 3.26;
    48.26. The ledger: +200.00, −120.00 on 1 March, −80.00 on 1 April. Both runs alike."""

    def actions(day):
        if day == date(2028, 2, 1):
            paid("ca", day, business_region="CA")
            coupons.grant_credits(ws_("ca"), amount="200.00", as_of=day, year=1, by=support)
        if day == date(2028, 3, 31):
            services.record_usage(ws_("ca"), month=date(2028, 3, 1), mtus=10_500)

    def read():
        ws = ws_("ca")
        return {
            "bills": short("ca"),
            "lines": [
                sorted(i.lines.values_list("kind", "amount"))
                for i in Invoice.objects.filter(workspace=ws).order_by("issue_date")
            ],
            "ledger": ledger(CreditGrant.objects.get(workspace=ws)),
            "balance": [
                workspace_status(ws, as_of=d)["credit_balance"]
                for d in (date(2028, 2, 29), date(2028, 3, 1), date(2028, 4, 1))
            ],
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2028, 2, 1), date(2028, 4, 1), actions, read
    )
    assert outcome["bills"] == [
        (
            "monthly",
            date(2028, 3, 1),
            date(2028, 2, 1),
            date(2028, 3, 1),
            D("120.00"),
            D("0.00"),
            D("120.00"),
            D("0.00"),
            D("0.00"),
        ),
        (
            "monthly",
            date(2028, 4, 1),
            date(2028, 3, 1),
            date(2028, 4, 1),
            D("125.00"),
            D("0.00"),
            D("80.00"),
            D("3.26"),
            D("48.26"),
        ),
    ]
    assert outcome["lines"] == [
        [("base", D("120.00")), ("credit", D("-120.00"))],
        [
            ("base", D("120.00")),
            ("credit", D("-80.00")),
            ("overage", D("5.00")),
            ("tax", D("3.26")),
        ],
    ]
    assert outcome["ledger"] == [
        ("grant", date(2028, 2, 1), D("200.00")),
        ("draw", date(2028, 3, 1), D("-120.00")),
        ("draw", date(2028, 4, 1), D("-80.00")),
    ]
    assert outcome["balance"] == [D("200.00"), D("80.00"), D("0.00")]


def test_i2_k1_c4_cr2_a_final_invoice_on_31_january_taken_to_zero_and_the_rest_next_month(
    db, support
):
    """California, 7.25 %. `fin`, paid monthly from 1 January 2028 with a card, $50 off `once`
    and a 100.00 grant, both on 1 January. Cancelled on 31 January (K1): a final invoice dated
    31 January for 1–30 January: 120 × 30/31 = 116.129… → 116.13; 50.00 off (C4, C5: its
    first invoice); 66.13 left, credited in full; tax 0.00; total 0.00 (I2). 33.87 left on
    the grant. January's close (1 February) issues nothing for it (M1: billed by its final
    invoice). Back on Team on 1 February (paid at once, T1). February 2028, 12,000 MTUs
    (1 March): 120.00 + 20.00 = 140.00; the coupon used, no discount; 33.87 credited; 106.13
    taxable; tax 7.694425 → 7.69; 113.82."""
    ws = paid("fin", date(2028, 1, 1), business_region="CA")
    coupon(code="FIFTY", amount_off="50.00", duration="once")
    coupons.redeem_coupon(ws, "FIFTY", by=support, as_of=date(2028, 1, 1))
    coupons.grant_credits(ws, amount="100.00", as_of=date(2028, 1, 1), year=1, by=support)
    services.change_to_free(ws, as_of=date(2028, 1, 31))
    services.run_billing(as_of=date(2028, 1, 31))
    assert workspace_status(ws, as_of=date(2028, 1, 31))["credit_balance"] == D("33.87")
    services.change_to_team(ws_("fin"), as_of=date(2028, 2, 1))
    services.record_usage(ws, month=date(2028, 2, 1), mtus=12_000)
    services.run_billing(as_of=date(2028, 3, 1))
    assert short("fin") == [
        (
            "final",
            date(2028, 1, 31),
            date(2028, 1, 1),
            date(2028, 1, 31),
            D("116.13"),
            D("50.00"),
            D("66.13"),
            D("0.00"),
            D("0.00"),
        ),
        (
            "monthly",
            date(2028, 3, 1),
            date(2028, 2, 1),
            date(2028, 3, 1),
            D("140.00"),
            D("0.00"),
            D("33.87"),
            D("7.69"),
            D("113.82"),
        ),
    ]
    assert ledger(CreditGrant.objects.get(workspace=ws)) == [
        ("grant", date(2028, 1, 1), D("100.00")),
        ("draw", date(2028, 1, 31), D("-66.13")),
        ("draw", date(2028, 3, 1), D("-33.87")),
    ]


# --- M4: the worked example on edge days ----------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "first", "part", "second"),
    [
        (date(2027, 1, 17), date(2027, 1, 31), date(2027, 2, 1), D("3.87"), date(2027, 3, 1)),
        (date(2027, 2, 14), date(2027, 2, 28), date(2027, 3, 1), D("4.29"), date(2027, 4, 1)),
        (date(2028, 2, 15), date(2028, 2, 29), date(2028, 3, 1), D("4.14"), date(2028, 4, 1)),
        (date(2027, 12, 17), date(2027, 12, 31), date(2028, 1, 1), D("3.87"), date(2028, 2, 1)),
    ],
    ids=["31-january", "28-february-2027", "29-february-2028", "31-december"],
)
def test_m4_m2_m3_t3_the_worked_example_with_a_trial_ending_on_a_months_last_day(
    db, django_capture_on_commit_callbacks, start, end, first, part, second
):
    """M4 shifted: signed up into Team with a card on `start`, monthly; the trial covers
    `start` .. `end` − 1 and `end`, the month's last day, is its end date, the first and only
    paid day of that month (T3). 14,000 MTUs that month, but it had trial days: no overage
    (M3). The base for one paid day (M2):
    - 31 January 2027: 120 × 1/31 = 3.8709… → 3.87, issued 1 February;
    - 28 February 2027: 120 × 1/28 = 4.2857… → 4.29, issued 1 March;
    - 29 February 2028: 120 × 1/29 = 4.1379… → 4.14, issued 1 March;
    - 31 December 2027: 3.87, issued 1 January 2028, the year's first invoice INV-2028-000001.
    The next month, 12,500 MTUs: 120.00 + 25.00 = 145.00, issued the 1st after it (for
    31 December: INV-2028-000002). One email, "Up is now on Team" (T4). Both runs alike."""

    def actions(day):
        if day == start:
            new("up", day, plan="team", card=True)
        if day == end:
            services.record_usage(ws_("up"), month=end.replace(day=1), mtus=14_000)
        if day == second - timedelta(days=1):  # the next month's last day
            services.record_usage(ws_("up"), month=first, mtus=12_500)

    def read():
        return {
            "bills": short("up"),
            "numbers": list(
                Invoice.objects.order_by("issue_date").values_list("number", flat=True)
            ),
        }

    outcome = both_ways(django_capture_on_commit_callbacks, start, second, actions, read)
    assert outcome["bills"] == [
        (
            "monthly",
            first,
            end,
            first,
            part,
            D("0.00"),
            D("0.00"),
            D("0.00"),
            part,
        ),
        (
            "monthly",
            second,
            first,
            second,
            D("145.00"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("145.00"),
        ),
    ]
    if end == date(2027, 12, 31):
        assert outcome["numbers"] == ["INV-2028-000001", "INV-2028-000002"]
    assert outcome["letters"] == [("up@example.com", "Up is now on Team")]


def test_m4_m3_m1_f1_a_trial_straddling_the_1st_leaves_january_unbilled_and_february_base_only(
    db, django_capture_on_commit_callbacks
):
    """M4 shifted across a 1st: signed up into Team with a card on 20 January 2027; trial
    20 January – 2 February, end date 3 February (T3). January, 14,000 MTUs: no paid day, so
    no invoice (M1), and no strike either (F1: a trial day in it). February, 12,500 MTUs: 26
    paid days of 28 → 120 × 26/28 = 111.4285… → 111.43; it had trial days (1–2 February): no
    overage (M3); issued 1 March for 3 February – 1 March. March, 12,500 MTUs: 145.00, issued
    1 April. Both runs alike."""

    def actions(day):
        if day == date(2027, 1, 20):
            new("up", day, plan="team", card=True)
        if day == date(2027, 1, 31):
            services.record_usage(ws_("up"), month=date(2027, 1, 1), mtus=14_000)
        if day in (date(2027, 2, 28), date(2027, 3, 31)):
            services.record_usage(ws_("up"), month=day.replace(day=1), mtus=12_500)

    def read():
        from billing.models import Strike

        return {"bills": short("up"), "strikes": Strike.objects.count()}

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 20), date(2027, 4, 1), actions, read
    )
    assert outcome["bills"] == [
        (
            "monthly",
            date(2027, 3, 1),
            date(2027, 2, 3),
            date(2027, 3, 1),
            D("111.43"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("111.43"),
        ),
        (
            "monthly",
            date(2027, 4, 1),
            date(2027, 3, 1),
            date(2027, 4, 1),
            D("145.00"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("145.00"),
        ),
    ]
    assert outcome["strikes"] == 0
    assert outcome["letters"] == [("up@example.com", "Up is now on Team")]


# --- R5: the admin writes through the services --------------------------------------------------


def test_r5_s6_w1_the_deal_request_pages_on_a_closure_day_write_only_through_the_service(
    db, client, reviewer, support, pin_today
):
    """R5 on 31 March 2027 (the admin's today): `open` and `shut` accepted on 1 March; `shut`
    closed that day (W1: its credit lapsed, its program ended). The add page offers `open`
    only; `shut` posted by hand is refused ("Select a valid choice") and nothing is written.
    `open`'s request, made through the page, is dated 31 March (S6). A request already
    declined, "fulfilled" by the changelist action: refused with the service's words, still
    declined. Its change page has no save: a posted status change is refused (403), nothing
    changes."""
    offer = deal("WarehouseCo")
    other = deal("MailCo")
    kept = member("open", date(2027, 3, 1), reviewer)
    gone = member("shut", date(2027, 3, 1), reviewer)
    today = pin_today(date(2027, 3, 31))
    close(ws_("shut"), support, today)
    client.force_login(reviewer)
    add = reverse("admin:startups_dealrequest_add")
    offered = client.get(add).context["adminform"].form.fields["application"].queryset
    assert list(offered) == [kept]
    refused = client.post(add, {"application": gone.pk, "deal": offer.pk})
    assert "Select a valid choice" in refused.content.decode()
    assert not DealRequest.objects.exists()
    client.post(add, {"application": kept.pk, "deal": offer.pk})
    made = DealRequest.objects.get()
    assert (made.application_id, made.requested_on, made.status) == (kept.pk, today, "requested")
    declined = startups.request_deal(kept, deal=other, as_of=today)
    startups.decide_deal_request(declined, by=reviewer, fulfil=False, as_of=today, note="Paused")
    changelist = reverse("admin:startups_dealrequest_changelist")
    page = client.post(changelist, action("fulfil", declined), follow=True)
    assert "This request was already declined." in unescape(page.content.decode())
    change = reverse("admin:startups_dealrequest_change", args=[declined.pk])
    posted = client.post(
        change,
        {
            "application": kept.pk,
            "deal": other.pk,
            "status": "fulfilled",
            "requested_on": "2027-03-31",
            "note": "",
        },
    )
    assert posted.status_code == 403
    declined.refresh_from_db()
    assert (declined.status, declined.note) == ("declined", "Paused")


def test_r5_c1_the_coupon_add_page_refuses_a_code_taken_in_another_case_or_with_spaces(
    db, client, support, pin_today
):
    """R5, C1: support adds coupons through the admin on 29 February 2028. "leap28" is kept as
    LEAP28; " Leap28 " and " nonprofit " (the seeded code, C8) posted again are refused with
    the service's words ("The code LEAP28 is already used by another coupon."), the page shown
    again, nothing written."""
    pin_today(date(2028, 2, 29))
    client.force_login(support)
    url = reverse("admin:coupons_coupon_add")
    form = {
        "name": "Leap",
        "kind": "promotion",
        "percent_off": "29",
        "duration": "once",
        "applies_monthly": "on",
        "applies_annual": "on",
    }
    client.post(url, {**form, "code": "leap28"})
    assert list(Coupon.objects.filter(name="Leap").values_list("code", "percent_off")) == [
        ("LEAP28", D("29.00"))
    ]
    count = Coupon.objects.count()
    for code, taken in ((" Leap28 ", "LEAP28"), (" nonprofit ", "NONPROFIT")):
        page = client.post(url, {**form, "code": code})
        assert page.status_code == 200
        assert f"The code {taken} is already used by another coupon." in unescape(
            page.content.decode()
        )
    assert Coupon.objects.count() == count
