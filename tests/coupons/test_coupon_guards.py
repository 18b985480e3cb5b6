"""C1, C5, C7, C8, G1, R1: what a coupon's change may not undo. A follow-up could be changed
into a credit coupon (then "redeemed" as a follow-up with no grant), a campaign's promotion into
a credit (announced as one), the seeded STARTUP coupon linked to a partner (every startup got
the partner's amount; the partner's deactivation switched the program off); the apply page
answered 500 on a workspace that is no id; an infinite MTU bound crashed a campaign; and the
coupon list read "Used 2, Remaining 0" for a maximum of 1."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing import services as billing
from coupons import services
from coupons.campaigns import create_campaign, launch_campaign
from coupons.errors import CouponError
from coupons.models import Redemption

from .factories import bills, coupon, paid_monthly


def redeem(ws, promo, day, by=None):
    return services.redeem_coupon(ws, promo.code, by=by, as_of=day)


def test_c1_c5_a_follow_up_changed_into_a_credit_coupon_is_applied_as_a_follow_up(db, support):
    """C1/C5: follow-ups are discounts (the catalogue's own rule: "a credit coupon neither has
    nor is one" — refused when the follow-up is chosen). But the follow-up coupon itself, not
    redeemed yet, could later be changed into a startup-program credit coupon: when FIRST (50%
    off, 1 month, from 2026-01-01) ran out on 2026-02-01 the system "redeemed" that credit
    coupon for the workspace as a follow-up, with no credit grant (CR1) and no discount: a
    startup-program redemption for a workspace that is no program member, which also blocks it
    from the program (C2's startup refusal, E4)."""
    later = coupon(code="LATER", percent_off="10", duration="once")
    first = coupon(percent_off="50", duration="repeating", duration_months=1, follow_up=later)
    ws = paid_monthly()
    redeem(ws, first, date(2026, 1, 1))
    with pytest.raises(CouponError, match="is the follow-up of"):
        services.update_coupon(
            later,
            by=support,
            reason="now a credit",
            kind="startup_program",
            percent_off=None,
            credit_amount=D("1000.00"),
        )
    billing.run_billing(as_of=date(2026, 3, 1))
    # January 120.00 - 60.00; then LATER, still a 10 % discount, once: 120.00 - 12.00.
    assert [(b[0], b[2], b[4]) for b in bills(ws)] == [
        (date(2026, 2, 1), D("60.00"), D("60.00")),
        (date(2026, 3, 1), D("12.00"), D("108.00")),
    ]


def test_r1_c2_apply_page_with_a_workspace_that_is_not_an_id_is_a_form_error(
    client, support, pin_today
):
    """C2/R1 bad input: support's "Apply a coupon" form posted with a workspace value that is
    not a row id ("abc", as a stale or hand-edited form sends) answered 500 (ValueError: Field
    'id' expected a number but got 'abc', raised while re-rendering the autocomplete widget)
    instead of showing "Select a valid choice" next to the field."""
    pin_today(date(2026, 2, 2))
    coupon(code="SPRING25", percent_off="25")
    client.force_login(support)
    client.raise_request_exception = False
    for value in ("abc", "99999999999999999999999"):
        response = client.post(
            reverse("admin:coupons_redemption_apply"),
            {"workspace": value, "coupon": "SPRING25", "reason": "ticket 12"},
        )
        assert response.status_code == 200, (value, response.status_code)
        assert response.context["form"].errors["workspace"]


@pytest.mark.parametrize("bad", [float("inf"), float("-inf")])
def test_g1_an_audience_with_an_infinite_mtu_bound_is_refused_by_name(db, bad):
    """G1, DESIGN (services refuse bad input with a BillingError fit to show a person): an
    audience `{"min_mtus": inf}` made `create_campaign` raise OverflowError ("cannot convert
    float infinity to integer") from `campaigns._count`, instead of CouponError naming it."""
    promo = coupon(code="SPRING25", percent_off="25")
    with pytest.raises(CouponError, match="MTUs"):
        create_campaign("Spring", promo.code, "25% off", "Hi", {"min_mtus": bad})


def test_g1_c1_a_campaign_never_announces_a_coupon_that_is_no_longer_a_promotion(
    db, support, django_capture_on_commit_callbacks
):
    """G1: "a campaign names a promotion coupon" — `create_campaign` refuses any other kind.
    But the draft's coupon, not redeemed yet, could then be changed (`update_coupon`) into a
    startup-program credit coupon ($25,000.00 a year); the launch did not look again and
    emailed the audience "$25,000.00 credit a year your Team bill ... code SPRING25", a coupon
    support cannot even apply (the picker leaves startup-program coupons out, S3/S4)."""
    from django.core import mail

    promo = coupon(code="SPRING25", percent_off="25")
    spaces = [paid_monthly(as_of=date(2026, 1, 1)) for _ in range(2)]
    campaign = create_campaign("Spring", promo.code, "25% off", "Spring!", {"plan": "team"})
    with pytest.raises(CouponError, match="is the promotion of the campaign"):
        services.update_coupon(
            promo,
            by=support,
            reason="reused",
            kind="startup_program",
            percent_off=None,
            credit_amount=D("25000.00"),
        )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=date(2026, 2, 2))
    assert len(spaces) == 2
    assert [m.body for m in mail.outbox if "credit a year" in m.body] == []


def test_c7_c8_r1_support_cannot_move_the_startup_programs_credit_by_linking_a_partner(
    db, support, reviewer
):
    """C8: STARTUP grants $25,000.00 a year; C7: a partner's own amount overrides it only for
    that partner's startups; a redeemed coupon's value is fixed (EDITABLE_AFTER_REDEMPTION).
    Yet `partner` was editable after redemption, and `credit_amount_for` reads the coupon's own
    partner: support (R1) linked the seeded STARTUP coupon to an active partner approved with
    $100,000.00, and the next startup *without* a partner was granted $100,000.00. Refused now:
    the seeded coupons belong to no partner, and a credit coupon's partner is fixed once
    redeemed."""
    from coupons.models import Coupon, CreditGrant

    first = paid_monthly()
    services.redeem_coupon(first, "STARTUP", by=None, as_of=date(2026, 1, 5))
    program = services.apply_as_partner(
        "Seedbed", contact_name="Mira", contact_email="mira@example.com", as_of=date(2026, 1, 2)
    )
    services.approve_partner(
        program, by=reviewer, as_of=date(2026, 1, 3), credit_amount="100000.00", note="deal"
    )
    startup = Coupon.objects.get(code="STARTUP")
    with pytest.raises(CouponError, match=r"cannot change \(partner\)"):
        services.update_coupon(startup, by=support, reason="linked", partner=program)
    later = paid_monthly()
    services.redeem_coupon(later, "STARTUP", by=None, as_of=date(2026, 1, 6))
    amounts = [g.amount for g in CreditGrant.objects.order_by("id")]
    startup.refresh_from_db()
    assert amounts == [D("25000.00"), D("25000.00")] and startup.active, (amounts, startup.active)


def test_c7_c8_deactivating_a_partner_linked_to_startup_switches_the_program_off(
    db, support, reviewer
):
    """Same root cause as above: once support linked STARTUP to a partner (allowed after
    redemption), the reviewers' `deactivate_partner` of that partner set STARTUP inactive and
    every startup approval (S4) was refused. STARTUP stays the program's own."""
    from coupons.models import Coupon

    services.redeem_coupon(paid_monthly(), "STARTUP", by=None, as_of=date(2026, 1, 5))
    program = services.apply_as_partner(
        "Seedbed", contact_name="Mira", contact_email="mira@example.com", as_of=date(2026, 1, 2)
    )
    services.approve_partner(program, by=reviewer, as_of=date(2026, 1, 3))
    startup = Coupon.objects.get(code="STARTUP")
    with pytest.raises(CouponError, match=r"cannot change \(partner\)"):
        services.update_coupon(startup, by=support, reason="linked", partner=program)
    services.deactivate_partner(program, by=reviewer, reason="ended", as_of=date(2026, 1, 6))
    services.redeem_coupon(paid_monthly(), "STARTUP", by=None, as_of=date(2026, 1, 7))


def test_c1_c5_coupon_list_used_and_remaining_agree_with_the_maximum(client, finance, pin_today):
    """LIMITED has a maximum of 1: one workspace gets it from staff, another as the system's
    follow-up (C5: the maximum does not apply to those). The list read "Used 2, Remaining 0";
    it says which was a follow-up."""
    pin_today(date(2026, 3, 2))
    limited = coupon(code="LIMITED", percent_off="10", max_redemptions=1)
    first = coupon(percent_off="50", duration="repeating", duration_months=1, follow_up=limited)
    services.redeem_coupon(paid_monthly(), limited.code, by=None, as_of=date(2026, 1, 5))
    services.redeem_coupon(paid_monthly(), first.code, by=None, as_of=date(2026, 1, 5))
    billing.run_billing(as_of=date(2026, 2, 1))  # FIRST runs out: LIMITED follows up
    assert Redemption.objects.filter(coupon=limited).count() == 2
    client.force_login(finance)
    response = client.get(reverse("admin:coupons_coupon_changelist"))
    admin_ = response.context["cl"].model_admin
    row = next(o for o in response.context["cl"].result_list if o.code == "LIMITED")
    assert (admin_.redeemed(row), admin_.remaining(row)) == ("2 (1 as a follow-up)", 0)


def test_c8_the_seeded_coupons_belong_to_no_partner(db, support, reviewer):
    """C8: NONPROFIT and STARTUP are the programs' own, redeemed or not: linked to a partner,
    the partner's deactivation switched them off for everyone."""
    from coupons.models import Coupon

    program = services.apply_as_partner(
        "Seedbed", contact_name="Mira", contact_email="mira@example.com", as_of=date(2026, 1, 2)
    )
    services.approve_partner(program, by=reviewer, as_of=date(2026, 1, 3))
    for code in ("STARTUP", "NONPROFIT"):
        with pytest.raises(CouponError, match=f"{code} is the program's own coupon"):
            services.update_coupon(
                Coupon.objects.get(code=code), by=support, reason="x", partner=program
            )


def test_g1_an_audience_date_is_read_only_as_yyyy_mm_dd(db):
    """The audience's dates took any ISO form ("2026-W01-1" as 2025-12-29), as run_billing
    --as-of and the daily task did: one parser (`months.parse_day`) for them all."""
    promo = coupon(code="SPRING25", percent_off="25")
    with pytest.raises(CouponError, match="2026-W01-1"):
        create_campaign("Spring", promo.code, "25% off", "Hi", {"created_before": "2026-W01-1"})


def test_c7_reactivating_a_partner_switches_back_on_the_coupons_its_deactivation_switched_off(
    db, support, reviewer
):
    """C7: Northstar's own coupon went off with Northstar's deactivation; approved as active
    again, the partner stayed without it, and reviewers (R2) cannot edit coupons (walk 7). The
    coupons its deactivation switched off come back; one support switched off itself stays off."""
    program = services.apply_as_partner(
        "Northstar", contact_name="Mira", contact_email="mira@example.com", as_of=date(2026, 1, 2)
    )
    services.approve_partner(program, by=reviewer, as_of=date(2026, 1, 3))
    own = coupon(code="NORTHSTAR", kind="startup_program", credit_amount="30000.00")
    kept_off = coupon(code="NORTHSTAR10", percent_off="10")
    for c in (own, kept_off):
        services.update_coupon(c, by=support, reason="Its own", partner=program)
    services.update_coupon(
        kept_off, by=support, reason="Ticket 4: withdrawn", as_of=date(2026, 1, 5), active=False
    )
    services.deactivate_partner(program, by=reviewer, reason="Paused", as_of=date(2026, 1, 6))
    own.refresh_from_db()
    assert not own.active
    # Renamed while inactive (the second attacker's walk): still its coupons.
    services.update_partner(program, by=reviewer, reason="New brand", name="Northstar Labs")
    services.approve_partner(program, by=reviewer, as_of=date(2026, 1, 9), note="Back")
    own.refresh_from_db()
    kept_off.refresh_from_db()
    assert (own.active, kept_off.active) == (True, False)
    assert own.history.first().history_change_reason == "Partner Northstar Labs active again"
    # D3: each switch dated the partner's decision; the one support made, its own day.
    assert list(own.switches.values_list("on", "active")) == [
        (date(2026, 1, 6), False),
        (date(2026, 1, 9), True),
    ]
    assert list(kept_off.switches.values_list("on", "active")) == [(date(2026, 1, 5), False)]


def test_c5_d3_switches_saved_before_they_were_dated_are_read_from_history(db):
    """Migration 0014 dates each change of a coupon's `active` flag in its history the day it
    was saved; a coupon created off and never switched has none (it reads as it is now)."""
    from datetime import UTC, datetime
    from importlib import import_module

    from django.apps import apps

    from billing.audit import save_with_reason
    from coupons.models import Coupon, CouponSwitch

    switched, never = coupon(code="SWITCHED"), coupon(code="NEVER", active=False)
    switched.history.update(history_date=datetime(2026, 1, 1, tzinfo=UTC))
    for active, saved_on in ((False, 3), (False, 4), (True, 9)):
        switched.active = active
        save_with_reason(switched, "Changed active", by=None)
        switched.history.filter(pk=switched.history.latest().pk).update(
            history_date=datetime(2026, 1, saved_on, 15, tzinfo=UTC)
        )
    CouponSwitch.objects.all().delete()
    import_module("coupons.migrations.0014_coupon_switches").switches_from_history(apps, None)
    assert list(CouponSwitch.objects.values_list("coupon__code", "on", "active")) == [
        ("SWITCHED", date(2026, 1, 3), False),
        ("SWITCHED", date(2026, 1, 9), True),
    ]
    switched, never = Coupon.objects.get(code="SWITCHED"), Coupon.objects.get(code="NEVER")
    assert [switched.active_on(date(2026, 1, d)) for d in (2, 3, 8, 9)] == [
        True,
        False,
        False,
        True,
    ]
    assert not never.active_on(date(2026, 1, 1))
