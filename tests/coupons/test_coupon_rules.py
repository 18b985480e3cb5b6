"""C1, C2, C3, C8: what a coupon is, and when one may be applied (each refusal says why)."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, transaction

from billing import services as billing
from coupons import services
from coupons.errors import CouponError, CouponRefused
from coupons.models import Coupon, Redemption

from .factories import approved_proof, coupon, free_workspace, paid_annual, paid_monthly

DAY = date(2026, 1, 10)


def refusal(ws, code, **kwargs):
    kwargs.setdefault("by", None)
    kwargs.setdefault("as_of", DAY)
    with pytest.raises(CouponRefused) as caught:
        services.redeem_coupon(ws, code, **kwargs)
    return caught.value


# --- C1 ----------------------------------------------------------------------------------


def test_c1_a_coupon_has_exactly_one_value_and_names_every_problem(db):
    with pytest.raises(CouponError) as caught:
        services.create_coupon("bad code!", "", "discount", percent_off="10", amount_off="5")
    message = str(caught.value)
    assert "is not a coupon code" in message
    assert "needs a name" in message
    assert "is not a coupon kind" in message
    assert "exactly one of percent off, amount off or (startup program only)" in message


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"percent_off": "0"}, "more than 0 and at most 100, not 0"),
        ({"percent_off": "100.01"}, "at most 100, not 100.01"),
        ({"amount_off": "0.00"}, "amount off must be more than 0"),
        ({"amount_off": "1.005"}, "dollars and cents"),
        ({"credit_amount": "100.00"}, "Only a startup-program coupon can grant"),
        ({"percent_off": "10", "duration": "repeating"}, "needs its number of months"),
        ({"percent_off": "10", "duration": "repeating", "duration_months": 0}, "1 month or more"),
        ({"percent_off": "10", "duration_months": 3}, "Only a repeating coupon has"),
        ({"percent_off": "10", "intervals": ()}, "Choose the intervals"),
        ({"percent_off": "10", "max_redemptions": 0}, "maximum redemptions must be 1 or more"),
        # Bounds: what the columns hold, refused with a message rather than a crash.
        ({"amount_off": "100000000.00"}, "amount off must be less than 100,000,000"),
        ({"amount_off": "1e30"}, "amount off must be less than 100,000,000"),
        ({"percent_off": "1e30"}, "more than 0 and at most 100, not 1E"),
        ({"credit_amount": "1e15", "kind": "startup_program"}, "credit amount must be less than"),
        ({"percent_off": "10", "max_redemptions": 10**20}, "at most 2,147,483,647"),
        ({"percent_off": "10", "max_redemptions": True}, "must be 1 or more"),
        (
            {"percent_off": "10", "duration": "repeating", "duration_months": 10**12},
            "1,200 months at most",
        ),
    ],
)
def test_c1_refuses_each_malformed_coupon(db, fields, problem):
    fields = {"kind": "promotion", **fields}
    with pytest.raises(CouponError, match=problem):
        services.create_coupon("SPRING", "Spring", **fields)
    assert not Coupon.objects.filter(code="SPRING").exists()


def test_c1_percent_of_exactly_100_and_codes_are_unique_in_any_case(db):
    services.create_coupon("free-month", "A free month", "promotion", percent_off="100")
    with pytest.raises(CouponError, match="already used by another coupon"):
        services.create_coupon("FREE-MONTH", "Again", "promotion", percent_off="5")


@pytest.mark.parametrize(
    "values",
    [
        {"percent_off": D("10"), "amount_off": D("5")},  # two values
        {},  # none
        {"percent_off": D("0")},
        {"percent_off": D("100.50")},
        {"amount_off": D("-1")},
        {"credit_amount": D("100")},  # credit on a promotion
        {"percent_off": D("10"), "duration": "repeating"},  # months missing
        {"percent_off": D("10"), "duration_months": 2},  # months on `once`
        {"percent_off": D("10"), "applies_monthly": False, "applies_annual": False},
        {"percent_off": D("10"), "max_redemptions": 1, "times_redeemed": 2},
    ],
)
def test_c1_the_database_holds_the_coupon_rules_too(db, values):
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.create(code="RAW", name="Raw", kind="promotion", **values)


def test_c1_follow_up_partner_and_intervals_are_kept(db):
    after = coupon(percent_off="10", duration="forever")
    first = services.create_coupon(
        "LAUNCH",
        "Launch",
        "promotion",
        amount_off="50.00",
        duration="repeating",
        duration_months=3,
        intervals=["monthly"],
        follow_up=after.code,
        redeem_by=date(2026, 6, 30),
        max_redemptions=100,
    )
    assert (first.follow_up, first.intervals, first.duration_display) == (
        after,
        ("monthly",),
        "3 months",
    )
    with pytest.raises(CouponError, match="cannot loop"):
        services.update_coupon(after, by=None, follow_up=first)


def test_c1_a_change_keeps_the_maximum_within_what_the_counter_holds(db):
    promo = coupon(percent_off="10", max_redemptions=5)
    with pytest.raises(CouponError, match="at most 2,147,483,647"):
        services.update_coupon(promo, by=None, max_redemptions=10**20)
    with pytest.raises(CouponError, match="must be 1 or more"):
        services.update_coupon(promo, by=None, max_redemptions=0)
    promo.refresh_from_db()
    assert promo.max_redemptions == 5


# --- C8 ----------------------------------------------------------------------------------


def test_c8_seeded_nonprofit_and_startup_coupons(db):
    nonprofit = Coupon.objects.get(code="NONPROFIT")
    assert (nonprofit.kind, nonprofit.amount_off, nonprofit.duration, nonprofit.intervals) == (
        "nonprofit",
        D("120.00"),
        "forever",
        ("monthly",),
    )
    startup = Coupon.objects.get(code="STARTUP")
    assert (startup.kind, startup.credit_amount, startup.intervals) == (
        "startup_program",
        D("25000.00"),
        ("monthly", "annual"),
    )


# --- C2 ----------------------------------------------------------------------------------


def test_c2_refuses_an_unknown_code(db):
    assert refusal(free_workspace(), "NOPE").reason == CouponRefused.UNKNOWN


def test_c2_refuses_an_inactive_coupon(db):
    promo = coupon(active=False)
    refused = refusal(free_workspace(), promo.code)
    assert (refused.reason, str(refused)) == (
        CouponRefused.INACTIVE,
        f"The coupon {promo.code} is inactive.",
    )


def test_c2_refuses_past_the_redeem_by_date_which_is_included(db):
    promo = coupon(redeem_by=date(2026, 1, 10))
    services.redeem_coupon(free_workspace(), promo.code, by=None, as_of=date(2026, 1, 10))
    refused = refusal(free_workspace(), promo.code, as_of=date(2026, 1, 11))
    assert refused.reason == CouponRefused.PAST_REDEEM_BY
    assert "could be applied until 10 Jan 2026; it is past that date" in str(refused)


def test_c2_refuses_once_the_maximum_is_reached(db):
    promo = coupon(max_redemptions=2)
    for _ in range(2):
        services.redeem_coupon(free_workspace(), promo.code, by=None, as_of=DAY)
    refused = refusal(free_workspace(), promo.code)
    assert refused.reason == CouponRefused.MAXIMUM_REACHED
    assert "has reached its maximum of 2 redemption(s)" in str(refused)
    promo.refresh_from_db()
    assert promo.times_redeemed == 2


def test_c2_a_workspace_receives_each_coupon_once_ever(db):
    ws = free_workspace()
    promo = coupon()
    services.redeem_coupon(ws, promo.code, by=None, as_of=DAY)
    services.remove_discount(ws, by=None, reason="Wrong coupon", as_of=DAY)
    refused = refusal(ws, promo.code, as_of=date(2026, 5, 1))
    assert refused.reason == CouponRefused.ALREADY_RECEIVED
    assert f"already received the coupon {promo.code} on 10 Jan 2026" in str(refused)
    # The rule is a unique constraint as well.
    with pytest.raises(IntegrityError), transaction.atomic():
        Redemption.objects.create(
            workspace=ws, coupon=promo, redeemed_on=DAY, started_month=date(2026, 1, 1)
        )


def test_c2_startup_program_only_for_workspaces_that_never_received_a_coupon(db, support):
    ws = free_workspace()
    promo = coupon()
    services.redeem_coupon(ws, promo.code, by=support, as_of=DAY)
    services.remove_discount(ws, by=support, reason="Ended early", as_of=DAY)
    refused = refusal(ws, "STARTUP")
    assert refused.reason == CouponRefused.STARTUP_AFTER_COUPON
    assert f"already received a coupon ({promo.code} on 10 Jan 2026)" in str(refused)
    # S3: an override of E4 lifts this refusal for that redemption, and is kept.
    redemption = services.redeem_coupon(
        ws, "STARTUP", by=support, as_of=DAY, override_reason="Promo was a test by sales"
    )
    assert redemption.override_reason == "Promo was a test by sales"


def test_c2_refuses_an_interval_the_coupon_does_not_cover(db):
    annual = paid_annual()
    monthly_only = coupon(intervals=["monthly"])
    refused = refusal(annual, monthly_only.code)
    assert refused.reason == CouponRefused.INTERVAL_NOT_COVERED
    assert "is on Team billed annually, and the coupon" in str(refused)
    assert "applies to monthly bills only" in str(refused)
    # On Free there is no interval to refuse: it applies once the workspace pays monthly.
    services.redeem_coupon(free_workspace(), monthly_only.code, by=None, as_of=DAY)


def test_c2_one_active_discount_at_a_time_credit_coupons_are_not_discounts(db):
    ws = paid_monthly()
    first, second = coupon(duration="forever"), coupon()
    services.redeem_coupon(ws, first.code, by=None, as_of=DAY)
    refused = refusal(ws, second.code)
    assert refused.reason == CouponRefused.DISCOUNT_ACTIVE
    assert f"already has an active discount ({first.code}, from 10 Jan 2026)" in str(refused)
    services.remove_discount(ws, by=None, reason="Customer asked", as_of=DAY)
    services.redeem_coupon(ws, second.code, by=None, as_of=DAY)

    # A discount running does not stop a credit coupon (nor the other way round).
    other = paid_monthly()
    services.redeem_coupon(other, "STARTUP", by=None, as_of=DAY)
    services.redeem_coupon(other, coupon(kind="accelerator").code, by=None, as_of=DAY)


def test_c2_a_discount_that_ran_out_no_longer_blocks(db):
    ws = paid_monthly()
    services.redeem_coupon(
        ws, coupon(duration="repeating", duration_months=2).code, by=None, as_of=DAY
    )
    assert refusal(ws, coupon().code, as_of=date(2026, 2, 28)).reason == "discount_active"
    services.redeem_coupon(ws, coupon().code, by=None, as_of=date(2026, 3, 1))


# --- C3 ----------------------------------------------------------------------------------


def test_c3_nonprofit_and_accelerator_coupons_for_new_and_long_standing_customers(db, support):
    veteran = paid_monthly(as_of=date(2021, 3, 1))
    billing.run_billing(as_of=date(2021, 6, 1))  # three months billed: a long-standing customer
    veteran.refresh_from_db()
    day = date(2021, 6, 2)  # the day after the clock's last (D4: not past a close it has not run)
    approved_proof(veteran, support, as_of=day)
    newcomer = free_workspace(as_of=day)
    accelerator = coupon(kind="accelerator", percent_off="20")
    for ws in (veteran, newcomer):
        services.redeem_coupon(ws, accelerator.code, by=support, as_of=day)
    services.remove_discount(veteran, by=support, reason="Moving to non-profit", as_of=day)
    redemption = services.redeem_coupon(veteran, "NONPROFIT", by=support, as_of=day)
    assert redemption.coupon.code == "NONPROFIT"


def test_c2_redemption_history_says_who_and_why(db, support):
    ws = free_workspace()
    promo = coupon()
    redemption = services.redeem_coupon(
        ws, promo.code.lower(), by=support, as_of=DAY, reason="Apology for the outage"
    )
    record = redemption.history.first()
    assert (record.history_user, record.history_change_reason) == (
        support,
        "Apology for the outage",
    )
    assert ws.history.first().history_change_reason.startswith(f"Coupon {promo.code}")


@pytest.mark.parametrize("day", [date(1999, 12, 31), date(2100, 1, 1), date(9999, 12, 31)])
def test_c1_i6_a_redeem_by_date_falls_within_the_years_billed(db, support, day):
    """A coupon's last day of redemption is typed by a person: like every other date, it falls
    within the years this system bills (2000 to 2099); a coupon with no last day has none.
    9999-12-31 was taken, on a new coupon and on a change."""
    with pytest.raises(CouponError, match=r"outside the years this system bills \(2000 to 2099\)"):
        services.create_coupon("SPRING", "Spring", "promotion", percent_off="10", redeem_by=day)
    assert not Coupon.objects.filter(code="SPRING").exists()
    spring = services.create_coupon("SPRING", "Spring", "promotion", percent_off="10")
    with pytest.raises(CouponError, match=r"outside the years this system bills \(2000 to 2099\)"):
        services.update_coupon(spring, by=support, reason="Typo", redeem_by=day)
    spring.refresh_from_db()
    assert spring.redeem_by is None
