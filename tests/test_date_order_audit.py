"""D1–D4 and the rules of each step: a date-order audit of the dated services.

A step dated before the thing it acts on came to be (a certificate before its workspace signed
up, a decision before the request, a grant valid before the workspace existed) is refused by
`billing.errors.refuse_dated_before` or `billing.clock.take_in_date_order`, or by D2 when the
clock has processed the day. With the clock behind (never run past the 1st before the step's
day), D2 refuses nothing, so each test here sets the clock back like that and tries the step
one day before the fact it acts on, then on the fact's own day.

Twelve of these found the early step accepted (a certificate, a proof or a grant's first day
before the sign-up, a grant valid before the day it was made, a certificate decided before its
review started, a partner decided before it applied or before its last decision, year two
before year one, a relaunch before the first launch, a redemption credited to a campaign that
had not reached the workspace yet, an assignment before the submission); the others prove
refusals no other test covered. Dates are 2026 unless said otherwise."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.files.base import ContentFile

from billing import services
from billing.errors import BillingError
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.campaigns import create_campaign, launch_campaign
from coupons.errors import CouponRefused
from coupons.models import AcceleratorPartner, CreditGrant, Redemption
from startups import services as startups
from tests.billing.factories import certificate, paid_monthly, workspace
from tests.coupons.factories import PDF, coupon
from tests.startups.factories import application

EVE, DAY = date(2026, 3, 9), date(2026, 3, 10)  # the day before a fact, and the fact's day


def clock_through(day):
    """The billing clock, started by a Free workspace signed up on 1 January, has processed
    every day through `day` and no later: D2 refuses nothing dated after it (within the month
    after it: a change past a close not yet run must wait, `clock.refuse_processed`)."""
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=day)


def proof_document():
    return ContentFile(PDF, name="status.pdf")


# --- X4: exemption certificates -------------------------------------------------------------------


def test_x4_d3_a_certificate_submitted_before_the_workspace_signed_up_is_refused(db, finance):
    """The clock has processed through 1 March; `ws` (California) signs up on 10 March. A
    certificate submitted on 9 March, the day before the workspace existed, was taken, and
    finance could then approve it dated 9 March too (a review is only compared with the
    submission): the books showed a workspace's certificate submitted and approved before it
    existed. It is refused now; submitted on 10 March it is fine."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=DAY, business_region="CA")
    with pytest.raises(BillingError):
        certificate(ws, "CA", on=EVE)
    cert = certificate(ws, "CA", on=DAY)
    assert cert.submitted_on == DAY


def _approve_certificate(cert, finance, on):
    return services.approve_exemption(cert, by=finance, as_of=on)


def _reject_certificate(cert, finance, on):
    return services.reject_exemption(cert, by=finance, reason="Expired", as_of=on)


@pytest.mark.parametrize(
    "decide", [_approve_certificate, _reject_certificate], ids=["approve", "reject"]
)
def test_x4_a_decision_dated_before_the_certificates_review_started_is_refused(db, finance, decide):
    """The clock has processed through 1 March. A California certificate submitted on 5 March
    is taken into review on 10 March (submitted → in review). A decision dated 9 March, the day
    before its review started, was taken: the certificate read in review from 10 March and
    decided on 9 March. It is refused now; decided on 10 March, the day its review started,
    it is fine."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=date(2026, 3, 2), business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 3, 5))
    services.start_exemption_review(cert, by=finance, as_of=DAY)
    with pytest.raises(BillingError):
        decide(cert, finance, EVE)
    cert.refresh_from_db()
    assert (cert.status, cert.decided_on) == ("in_review", None)
    assert decide(cert, finance, DAY).decided_on == DAY


def _start_certificate_review(cert, finance, on):
    return services.start_exemption_review(cert, by=finance, as_of=on)


@pytest.mark.parametrize(
    "step", [_start_certificate_review, _reject_certificate], ids=["start_review", "reject"]
)
def test_x4_a_review_or_rejection_dated_before_the_certificate_was_submitted_is_refused(
    db, finance, step
):
    """The clock has processed through 1 March. A California certificate is submitted on 10
    March; taking it into review, or rejecting it, dated 9 March is refused naming both days
    and leaves it submitted (an approval is covered in tests/billing/test_exemptions.py). Dated
    10 March, it goes through."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=date(2026, 3, 2), business_region="CA")
    cert = certificate(ws, "CA", on=DAY)
    with pytest.raises(
        BillingError,
        match=rf"A review dated 9 Mar 2026 is before certificate #{cert.pk} was submitted "
        r"\(10 Mar 2026\)\.",
    ):
        step(cert, finance, EVE)
    cert.refresh_from_db()
    assert cert.status == "submitted"
    assert step(cert, finance, DAY).status in ("in_review", "rejected")


# --- C6: non-profit proofs ------------------------------------------------------------------------


def test_c6_d3_a_proof_submitted_before_the_workspace_signed_up_is_refused(db, support):
    """The clock has processed through 1 March; `ws` signs up on 10 March. A proof of
    non-profit status submitted on 9 March was taken, and support could approve it dated 9 March
    without the discount (only the NONPROFIT redemption, when applied, meets the workspace's
    date order): an approved proof dated before the workspace existed, which C6 then reads
    as "approved on or before" every later day. It is refused now; submitted on 10 March it
    is fine."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=DAY)
    with pytest.raises(BillingError):
        coupons.submit_nonprofit_proof(ws, document=proof_document(), by=support, as_of=EVE)
    proof = coupons.submit_nonprofit_proof(ws, document=proof_document(), by=support, as_of=DAY)
    assert proof.submitted_on == DAY


def test_c6_d3_the_nonprofit_coupon_dated_before_its_proof_was_approved_is_refused(db, support):
    """Paid monthly Team from 1 January; the clock has processed through 1 March. A proof
    submitted on 5 March is approved (without the discount) on 10 March, entered ahead. The
    NONPROFIT coupon dated 9 March is refused: no proof was approved on or before that day
    (C6, D3). Dated 10 March, the approval's day, it is applied."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    proof = coupons.submit_nonprofit_proof(
        ws, document=proof_document(), by=support, as_of=date(2026, 3, 5)
    )
    coupons.approve_nonprofit_proof(proof, by=support, as_of=DAY, apply_discount=False)
    with pytest.raises(CouponRefused, match="has no approved proof of non-profit status"):
        coupons.redeem_coupon(ws, "NONPROFIT", by=support, as_of=EVE)
    assert not Redemption.objects.filter(workspace=ws).exists()
    assert coupons.redeem_coupon(ws, "NONPROFIT", by=support, as_of=DAY).redeemed_on == DAY


# --- C7: accelerator partners ---------------------------------------------------------------------


def _seedcamp(applied_on):
    return coupons.apply_as_partner(
        "Seedcamp", contact_name="Sam", contact_email="sam@example.com", as_of=applied_on
    )


def _approve_partner(partner, reviewer, on):
    return coupons.approve_partner(partner, by=reviewer, as_of=on)


def _decline_partner(partner, reviewer, on):
    return coupons.decline_partner(partner, by=reviewer, reason="Not a program", as_of=on)


@pytest.mark.parametrize("decide", [_approve_partner, _decline_partner], ids=["approve", "decline"])
def test_c7_a_partner_decision_dated_before_the_program_applied_is_refused(db, reviewer, decide):
    """The clock has processed through 1 March. Seedcamp applies through the public form on
    10 March. A reviewer's approval (or decline) dated 9 March, before there was an
    application to decide, was taken: an active partner from 9 March, whose startups' grants
    then read its amount from that day. It is refused now; decided on 10 March it is fine."""
    clock_through(date(2026, 3, 1))
    partner = _seedcamp(DAY)
    with pytest.raises(BillingError):
        decide(partner, reviewer, EVE)
    partner.refresh_from_db()
    assert (partner.status, partner.reviewed_on) == ("applied", None)
    assert decide(partner, reviewer, DAY).reviewed_on == DAY


def _deactivation_before_approval(partner, reviewer):
    coupons.approve_partner(partner, by=reviewer, as_of=DAY)
    return lambda on: coupons.deactivate_partner(
        partner, by=reviewer, reason="Program closed", as_of=on
    )


def _approval_before_deactivation(partner, reviewer):
    coupons.approve_partner(partner, by=reviewer, as_of=date(2026, 3, 5))
    coupons.deactivate_partner(partner, by=reviewer, reason="Paused", as_of=DAY)
    return lambda on: coupons.approve_partner(partner, by=reviewer, as_of=on)


@pytest.mark.parametrize(
    "decided_first",
    [_deactivation_before_approval, _approval_before_deactivation],
    ids=["deactivate_before_approval", "approve_again_before_deactivation"],
)
def test_c7_d4_a_partner_decision_dated_before_its_last_decision_is_refused(
    db, reviewer, decided_first
):
    """The clock has processed through 1 March; Seedcamp applied on 2 March. Either it is
    approved on 10 March and then deactivated dated 9 March, or approved on 5 March,
    deactivated on 10 March and approved again dated 9 March. Each was taken, and the partner's
    row kept the later-entered decision dated before the one it replaced (reviewed_on goes
    back to 9 March): the approval of a startup dated between them reads a status no date
    order gives (`partner_date_order_problem` compares with reviewed_on only). Each is refused
    now; dated 10 March, the last decision's day, each is fine."""
    clock_through(date(2026, 3, 1))
    partner = _seedcamp(date(2026, 3, 2))
    decide = decided_first(partner, reviewer)
    status_before = AcceleratorPartner.objects.get(pk=partner.pk).status
    with pytest.raises(BillingError, match=r"before its last decision \(10 Mar 2026\)"):
        decide(EVE)
    partner.refresh_from_db()
    assert (partner.status, partner.reviewed_on) == (status_before, DAY)
    assert decide(DAY).reviewed_on == DAY


# --- CR1, CR3: credit grants ----------------------------------------------------------------------


def test_cr1_d3_a_grant_valid_from_before_the_workspace_signed_up_is_refused(db, support):
    """The clock has processed through 1 March; `ws` signs up on 10 March. A credit grant
    entered on 10 March but valid from 9 March was taken (dated 9 March as a whole it is
    refused, tests/billing/test_date_order.py): workspace_status of 9 March then showed a
    program member with 1,000.00 of credit, a day before the workspace existed (D3). It is
    refused now; valid from 10 March it is fine."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=DAY)
    with pytest.raises(BillingError):
        coupons.grant_credits(ws, amount="1000.00", as_of=DAY, valid_from=EVE, year=1, by=support)
    assert not CreditGrant.objects.filter(workspace=ws).exists()
    grant = coupons.grant_credits(
        ws, amount="1000.00", as_of=DAY, valid_from=DAY, year=1, by=support
    )
    assert grant.valid_from == DAY
    assert workspace_status(ws, as_of=EVE)["startup_member"] is False


def test_cr1_d3_a_grant_valid_from_before_the_day_it_is_made_is_refused(db, support):
    """`ws` is on paid monthly Team from 1 January; the clock has processed through 19 March,
    so February's invoice (120.00, issued 1 March) is issued without credit. A grant of
    1,000.00 made on 20 March but valid from 1 February was taken: workspace_status then
    showed 1,000.00 of credit and a program member on 1 March, the day that invoice drew
    nothing, and the program year ran to 1 February 2027, seven weeks short of a year from the
    grant. The past changed after the fact (D3), and CR3 never credits an issued invoice
    again. It is refused now, with nothing written; valid from 20 March it is fine, and
    1 March still reads as it stood."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 19))
    made_on = date(2026, 3, 20)
    with pytest.raises(BillingError, match="cannot be valid from 1 Feb 2026, before it is made"):
        coupons.grant_credits(
            ws, amount="1000.00", as_of=made_on, valid_from=date(2026, 2, 1), year=1, by=support
        )
    assert not CreditGrant.objects.filter(workspace=ws).exists()
    grant = coupons.grant_credits(ws, amount="1000.00", as_of=made_on, year=1, by=support)
    assert (grant.valid_from, grant.valid_until) == (made_on, date(2027, 3, 20))
    on_the_first = workspace_status(ws, as_of=date(2026, 3, 1))
    assert (on_the_first["credit_balance"], on_the_first["startup_member"]) == (D("0.00"), False)
    assert workspace_status(ws, as_of=made_on)["credit_balance"] == D("1000.00")
    february = ws.invoices.get(period_start=date(2026, 2, 1))
    assert (february.total, february.credits) == (D("120.00"), D("0.00"))


def test_cr3_a_year_two_grant_valid_before_year_one_is_refused(db, support):
    """The clock has processed through 1 March. `ws` (signed up 2 March) gets its year-one
    grant of 1,000.00 valid from 10 March 2026 to 10 March 2027. A year-two grant valid from
    9 March 2026, the day before year one starts, was taken: two program years where year two
    comes first (CR3: year two follows year one, from its first anniversary at the earliest).
    It is refused now; valid from year one's end, 10 March 2027, it is fine."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=date(2026, 3, 2))
    coupons.grant_credits(ws, amount="1000.00", as_of=DAY, year=1, by=support)
    with pytest.raises(BillingError):
        coupons.grant_credits(ws, amount="1000.00", as_of=DAY, valid_from=EVE, year=2, by=support)
    assert list(CreditGrant.objects.filter(workspace=ws).values_list("year", flat=True)) == [1]
    anniversary = date(2027, 3, 10)
    year_two = coupons.grant_credits(
        ws, amount="1000.00", as_of=DAY, valid_from=anniversary, year=2, by=support
    )
    assert (year_two.valid_from, year_two.valid_until) == (anniversary, date(2028, 3, 10))


# --- G2, G3: campaigns ----------------------------------------------------------------------------


def _spring_campaign(support):
    promo = coupon(code="SPRING", percent_off="25", duration="once")
    return create_campaign(
        "Spring", promo.code, "25% off", "Spring is here.", {"plan": "team"}, by=support
    )


def test_g2_a_launch_dated_before_the_campaigns_first_launch_is_refused(db, support):
    """Paid monthly Team from 1 January; the clock has processed through 1 March. The campaign
    (Team workspaces) is launched on 10 March and reaches it. A second paid workspace signs up
    on 2 March; launching again dated 9 March was taken and recorded it as reached on 9 March,
    before the campaign was launched at all (G2: a launch again reaches those who joined
    since). It is refused now; launched again on 10 March it reaches the newcomer."""
    paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    campaign = _spring_campaign(support)
    assert launch_campaign(campaign, by=support, as_of=DAY) == 1
    paid_monthly(date(2026, 3, 2))
    with pytest.raises(BillingError):
        launch_campaign(campaign, by=support, as_of=EVE)
    assert campaign.recipients.count() == 1
    assert launch_campaign(campaign, by=support, as_of=DAY) == 1


def test_g3_a_redemption_dated_before_the_campaign_reached_the_workspace_is_not_attributed(
    db, support, django_capture_on_commit_callbacks
):
    """Two paid monthly workspaces from 1 January; the clock has processed through 1 March.
    The campaign for SPRING is launched on 10 March and its emails go to both. Support then
    enters SPRING for the first dated 9 March (the clock is behind: accepted, rightly) and
    for the second dated 10 March. The first was attributed to the campaign, though on 9 March
    it had not been told of it: the campaign's page counted a redemption it did not bring
    (G3). Now only the second, dated the launch's day, is the campaign's."""
    early, on_day = paid_monthly(date(2026, 1, 1)), paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    campaign = _spring_campaign(support)
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=DAY) == 2
    coupons.redeem_coupon(early, "SPRING", by=support, as_of=EVE)
    coupons.redeem_coupon(on_day, "SPRING", by=support, as_of=DAY)
    assert Redemption.objects.get(workspace=early).campaign_id is None
    assert Redemption.objects.get(workspace=on_day).campaign_id == campaign.pk


# --- S3: applications -----------------------------------------------------------------------------


def test_s3_r4_an_assignment_dated_before_the_application_was_submitted_is_refused(db, reviewer):
    """The clock has processed through 1 March. An application submitted on 10 March is
    assigned to a reviewer dated 9 March: it was taken, and its history (R4) read "Assigned to …
    on 9 Mar 2026" before "Submitted" on 10 March; a review dated 9 March is refused by the
    same service family (`start_review`). It is refused now; assigned on 10 March it is fine."""
    clock_through(date(2026, 3, 1))
    app = application(as_of=DAY)
    with pytest.raises(BillingError):
        startups.assign_application(app, reviewer=reviewer, by=reviewer, as_of=EVE)
    app.refresh_from_db()
    assert app.assigned_to is None
    startups.assign_application(app, reviewer=reviewer, by=reviewer, as_of=DAY)


def _start_review(app, reviewer, on):
    return startups.start_review(app, by=reviewer, as_of=on)


def _withdraw(app, reviewer, on):
    return startups.withdraw_application(app, by=reviewer, as_of=on, reason="Raised a round")


@pytest.mark.parametrize(
    ("step", "what"),
    [(_start_review, "A review"), (_withdraw, "A withdrawal")],
    ids=["start_review", "withdraw"],
)
def test_s3_a_review_or_withdrawal_dated_before_the_application_was_submitted_is_refused(
    db, reviewer, step, what
):
    """The clock has processed through 1 March. An application submitted on 10 March cannot be
    taken into review or withdrawn dated 9 March: refused naming both days, still submitted
    (decisions are covered in tests/test_edge_days_tenth.py). Dated 10 March, it goes
    through."""
    clock_through(date(2026, 3, 1))
    app = application(as_of=DAY)
    with pytest.raises(
        BillingError,
        match=rf"{what} dated 9 Mar 2026 is before application #{app.pk} was submitted "
        r"\(10 Mar 2026\)\.",
    ):
        step(app, reviewer, EVE)
    app.refresh_from_db()
    assert app.status == "submitted"
    assert step(app, reviewer, DAY).status in ("in_review", "withdrawn")


def test_s3_s4_d3_an_approval_dated_before_the_workspace_signed_up_is_refused(db, reviewer):
    """The clock has processed through 1 March. An application submitted on 5 March is linked
    to `ws`, which signed up on 10 March. An approval dated 9 March is refused (the STARTUP
    coupon goes in the workspace's date order: it signed up on 10 March): still submitted, no
    redemption, no grant. Approved on 10 March (S7 confirmed: it is on Free), its year-one
    grant is valid from 10 March."""
    clock_through(date(2026, 3, 1))
    app = application(as_of=date(2026, 3, 5))
    ws = workspace(as_of=DAY)
    startups.link_application(
        app, by=reviewer, workspace=ws, partner=None, as_of=DAY, reason="Their workspace"
    )
    with pytest.raises(BillingError, match="cannot be dated 9 Mar 2026: it signed up on 10 Mar"):
        startups.approve_application(app, by=reviewer, as_of=EVE, credits_scope_confirmed=True)
    app.refresh_from_db()
    assert app.status == "submitted"
    assert not Redemption.objects.filter(workspace=ws).exists()
    startups.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
    assert CreditGrant.objects.get(workspace=ws).valid_from == DAY


# --- T1, T5, K1, K4, W1, D3: workspace changes before the sign-up ---------------------------------


def _close(ws, support, on):
    services.close_workspace(ws, by=support, reason="Customer asked", as_of=on)


def _to_team(ws, support, on):
    services.change_to_team(ws, as_of=on)


def _to_free(ws, support, on):
    services.change_to_free(ws, as_of=on)


def _to_annual(ws, support, on):
    services.change_interval(ws, interval="annual", as_of=on)


def _remove_card(ws, support, on):
    services.remove_payment_method(ws, as_of=on)


@pytest.mark.parametrize(
    ("change", "plan"),
    [
        (_close, "free"),
        (_to_team, "free"),
        (_to_free, "team"),
        (_to_annual, "team"),
        (_remove_card, "free"),
    ],
    ids=["close_workspace", "change_to_team", "change_to_free", "change_interval", "remove_card"],
)
def test_d3_w1_k4_changes_dated_before_the_workspace_signed_up_are_refused(
    db, support, change, plan
):
    """The clock has processed through 1 March; `ws` signs up on 10 March with a card (Free, or
    straight into a Team trial). A closure, a move to Team or to Free, an interval change or
    removing the card dated 9 March is refused: it signed up on 10 March (the card, a coupon,
    a move and a grant are covered in tests/billing/test_date_order.py). Dated 10 March, its
    first day, each goes through."""
    clock_through(date(2026, 3, 1))
    ws = workspace(as_of=DAY, card=True, plan=plan)
    with pytest.raises(BillingError, match="cannot be dated 9 Mar 2026: it signed up on 10 Mar"):
        change(ws, support, EVE)
    change(ws, support, DAY)
