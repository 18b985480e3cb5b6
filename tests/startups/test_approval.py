"""S3, S4, S6, E4, CR3: approval in one transaction, exactly one acceptance email, overrides,
partner deals and the year-two review."""

from datetime import date
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.utils.html import strip_tags

from billing import services as billing
from billing.selectors import workspace_status
from coupons.models import AcceleratorPartner, CreditGrant, Redemption
from coupons.services import create_coupon, redeem_coupon
from startups import services
from startups.models import DealRequest, PartnerDeal, RenewalReview, StartupApplication
from tests.billing.factories import workspace

from .factories import application

Status = StartupApplication.Status
DAY = date(2026, 1, 20)


@pytest.fixture
def ws(db):
    return workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")


def accepted_emails():
    return [m for m in mail.outbox if m.subject.startswith("Welcome to the Startup Program")]


def test_s4_approval_redeems_startup_grants_credit_marks_member_and_emails_once(
    ws, reviewer, django_capture_on_commit_callbacks
):
    PartnerDeal.objects.create(company="WarehouseCo", title="6 months free", description="…")
    app = application(workspace=ws, company_name="Nimbus")
    with django_capture_on_commit_callbacks(execute=True):
        services.approve_application(
            app, by=reviewer, note="Great fit", as_of=DAY, credits_scope_confirmed=True
        )
    app.refresh_from_db()
    assert (app.status, app.decided_by, app.decided_on) == (Status.APPROVED, reviewer, DAY)
    assert Redemption.objects.get(workspace=ws).coupon.code == "STARTUP"
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.amount, grant.valid_from, grant.valid_until) == (
        Decimal("25000.00"),
        DAY,
        date(2027, 1, 20),
    )
    ws.refresh_from_db()
    status = workspace_status(ws, as_of=DAY)
    assert status["startup_member"] and status["credit_balance"] == Decimal("25000.00")
    (email,) = accepted_emails()
    assert email.to == [app.contact_email]
    assert "$25,000.00 in credit" in email.body and "WarehouseCo: 6 months free" in email.body
    # CR1: valid up to, not including, a year later (the last day with credit is the 19th).
    html = email.alternatives[0][0]
    assert "valid up to, not including, 20 Jan 2027" in html
    text = " ".join(email.body.split())
    assert "valid up to, not including, 20 Jan 2027" in text
    # S7: a Free workspace is told the credit waits for monthly Team (it read "now has
    # $25,000.00 in credit on the monthly Team plan").
    waits = "The credit pays monthly Team invoices only: none is used until the workspace is on"
    assert waits in text and waits in html
    assert "in credit for its monthly Team invoices" in text
    # Where to act and where to look (seeds: "How do I change my plan?", "Where can I view the
    # credits applied to my Segment account?").
    assert "Move it there (Settings > Usage & Billing > Plans) to start using it." in text
    assert "Move it there (<strong>Settings &gt; Usage &amp; Billing &gt; Plans</strong>)" in html
    assert "The credit left shows in your workspace under Settings > Usage & Billing." in text
    assert "under <strong>Settings &gt; Usage &amp; Billing</strong>." in html


def test_s4_s7_the_acceptance_email_of_a_monthly_team_workspace_says_the_credit_pays_now(
    reviewer, django_capture_on_commit_callbacks
):
    from tests.billing.factories import paid_monthly

    app = application(workspace=paid_monthly(as_of=date(2026, 1, 2)))
    with django_capture_on_commit_callbacks(execute=True):
        services.approve_application(app, by=reviewer, as_of=DAY)
    (email,) = accepted_emails()
    text = " ".join(email.body.split())
    assert "The workspace is on the monthly Team plan: the credit pays its invoices" in text
    assert "none is used" not in text and "Move it there" not in text
    assert "The credit left shows in your workspace under Settings > Usage & Billing." in text


@pytest.mark.parametrize("card", [False, True])
def test_s4_s7_t4_the_acceptance_email_of_a_monthly_trial_says_when_the_credit_starts(
    reviewer, django_capture_on_commit_callbacks, card
):
    """S4, S7, T4: a workspace on a monthly Team trial from 10 January 2026 (its end date 24
    January) is approved on 20 January. The email said "The workspace is on the monthly Team
    plan: the credit pays its invoices", also without a card on file, when it moves to Free
    on its end date. It says the trial ends on 24 Jan 2026 and the credit pays from then, and
    without a card, where to add one by when."""
    app = application(workspace=workspace(plan="team", card=card, as_of=date(2026, 1, 10)))
    with django_capture_on_commit_callbacks(execute=True):
        services.approve_application(app, by=reviewer, as_of=date(2026, 1, 20))
    (email,) = accepted_emails()
    needs_card = (
        "No payment method is on file yet: add one on your workspace's Payment Information page "
        "by 24 Jan 2026 (that day included), or the workspace moves to the Free plan, whose "
        "bills the credit does not pay."
    )
    html = unescape(strip_tags(email.alternatives[0][0]))
    for part in (" ".join(email.body.split()), " ".join(html.split())):
        assert (
            "The workspace is on a monthly Team trial that ends on 24 Jan 2026; from then the "
            "credit pays its invoices up to the amount."
        ) in part, part
        assert (needs_card in part) is not card, part
        assert "is on the monthly Team plan" not in part


def test_s3_second_approval_is_refused_and_changes_nothing(
    ws, reviewer, django_capture_on_commit_callbacks
):
    app = application(workspace=ws)
    with django_capture_on_commit_callbacks(execute=True):
        services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
        with pytest.raises(services.ApplicationError, match="is already approved on 20 Jan 2026"):
            services.approve_application(
                app, by=reviewer, as_of=date(2026, 1, 21), credits_scope_confirmed=True
            )
    assert Redemption.objects.count() == 1 and CreditGrant.objects.count() == 1
    assert len(accepted_emails()) == 1


def test_s4_email_once_even_when_the_send_task_is_retried(
    ws, reviewer, django_capture_on_commit_callbacks
):
    from billing.models import OutboundEmail
    from billing.tasks import send_emails

    with django_capture_on_commit_callbacks(execute=True):
        services.approve_application(
            application(workspace=ws), by=reviewer, as_of=DAY, credits_scope_confirmed=True
        )
    email = OutboundEmail.objects.get(kind="startup_application_accepted")
    send_emails.apply(args=[[email.pk]])
    send_emails.apply(args=[[email.pk]])
    assert len(accepted_emails()) == 1


def test_s3_approval_needs_a_linked_workspace(db, reviewer):
    app = application()
    with pytest.raises(services.ApplicationError, match="Link the applicant's workspace"):
        services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
    app.refresh_from_db()
    assert app.status == Status.SUBMITTED


def test_s3_failing_check_needs_an_override_reason_from_a_user_allowed_to(ws, reviewer, support):
    app = application(workspace=ws, total_funding=Decimal("7000000"))
    with pytest.raises(
        services.ApplicationError, match=r"E2: Raised \$7,000,000.00.*override reason"
    ):
        services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
    support.user_permissions.add(Permission.objects.get(codename="review_application"))
    with pytest.raises(services.ApplicationError, match="you may not override"):
        services.approve_application(
            app, by=support, override_reason="VC", as_of=DAY, credits_scope_confirmed=True
        )
    assert not Redemption.objects.exists()
    services.approve_application(
        app,
        by=reviewer,
        override_reason="Funding is a grant",
        as_of=DAY,
        credits_scope_confirmed=True,
    )
    app.refresh_from_db()
    assert (app.status, app.override_reason) == (Status.APPROVED, "Funding is a grant")


def test_e4_a_workspace_that_had_a_coupon_fails_and_override_lifts_the_coupon_refusal(
    ws, reviewer, support
):
    create_coupon("WELCOME10", name="Welcome", kind="promotion", percent_off=Decimal(10))
    redeem_coupon(ws, "WELCOME10", by=support, as_of=date(2026, 1, 5))
    app = application(workspace=ws)
    assert app.failing_checks == "E4"
    assert app.checks[3]["reason"] == (
        "Workspace nimbus has received a coupon or credit: WELCOME10 on 5 Jan 2026"
    )
    services.approve_application(
        app,
        by=reviewer,
        override_reason="Promo was our mistake",
        as_of=DAY,
        credits_scope_confirmed=True,
    )
    redemption = Redemption.objects.get(workspace=ws, coupon__code="STARTUP")
    assert redemption.override_reason == "Promo was our mistake"


def test_c7_partner_credit_amount_and_coupon_apply_on_approval(ws, reviewer):
    partner = AcceleratorPartner.objects.create(
        name="Seedcamp",
        contact_name="Sam",
        contact_email="sam@seedcamp.example",
        status=AcceleratorPartner.Status.ACTIVE,
        credit_amount=Decimal("50000.00"),
        applied_on=date(2025, 12, 1),
    )
    app = application(workspace=ws, partner=partner)
    assert app.partner_name == "Seedcamp"
    services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
    assert CreditGrant.objects.get(workspace=ws).amount == Decimal("50000.00")


def test_s4_a_refused_redemption_leaves_nothing_half_done(ws, reviewer):
    from coupons.models import Coupon

    Coupon.objects.filter(code="STARTUP").update(active=False)
    app = application(workspace=ws)
    with pytest.raises(Exception, match="inactive|not active"):
        services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
    app.refresh_from_db()
    ws.refresh_from_db()
    assert app.status == Status.SUBMITTED and not ws.startup_member
    assert not CreditGrant.objects.exists()


def test_s6_accepted_startups_request_deals_and_staff_decide_once(ws, reviewer):
    deal = PartnerDeal.objects.create(company="MailCo", title="20% off", description="…")
    pending = application()
    with pytest.raises(services.ApplicationError, match="Only startups accepted"):
        services.request_deal(pending, deal=deal, as_of=DAY)
    app = services.approve_application(
        application(workspace=ws), by=reviewer, as_of=DAY, credits_scope_confirmed=True
    )
    request = services.request_deal(app, deal=deal, as_of=DAY)
    with pytest.raises(services.ApplicationError, match="already requested"):
        services.request_deal(app, deal=deal, as_of=DAY)
    services.decide_deal_request(request, by=reviewer, fulfil=True, as_of=DAY, note="Code sent")
    assert DealRequest.objects.get().status == "fulfilled"
    with pytest.raises(services.ApplicationError, match="already fulfilled"):
        services.decide_deal_request(request, by=reviewer, fulfil=False, as_of=DAY)


def test_cr3_anniversary_opens_a_review_and_confirming_grants_year_two_never_three(ws, reviewer):
    app = application(workspace=ws)
    services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
    billing.run_billing(as_of=date(2026, 12, 20))
    assert not RenewalReview.objects.exists()
    billing.run_billing(as_of=date(2026, 12, 21))  # 30 days before the anniversary (CR3)
    review = RenewalReview.objects.get()
    assert (review.year, review.due_on) == (2, date(2027, 1, 20))
    billing.run_billing(as_of=date(2027, 1, 21))
    with pytest.raises(services.ApplicationError, match="more than the"):
        services.confirm_renewal(
            review, by=reviewer, total_funding="6000000", country="DE", as_of=date(2027, 1, 22)
        )
    services.confirm_renewal(
        review, by=reviewer, total_funding="3000000", country="DE", as_of=date(2027, 1, 22)
    )
    year_two = CreditGrant.objects.get(workspace=ws, year=2)
    # Confirmed two days late: valid from the confirmation to the second anniversary.
    assert (year_two.valid_from, year_two.valid_until) == (date(2027, 1, 22), date(2028, 1, 20))
    billing.run_billing(as_of=date(2028, 1, 25))
    assert RenewalReview.objects.count() == 1  # never a third year
    with pytest.raises(services.ApplicationError, match="already confirmed"):
        services.confirm_renewal(
            review, by=reviewer, total_funding="1", country="DE", as_of=date(2028, 1, 26)
        )


def test_cr3_year_two_needs_e3_too(ws, reviewer):
    services.approve_application(
        application(workspace=ws), by=reviewer, as_of=DAY, credits_scope_confirmed=True
    )
    billing.run_billing(as_of=date(2027, 1, 20))
    review = RenewalReview.objects.get()
    with pytest.raises(services.ApplicationError, match="is not an eligible territory"):
        services.confirm_renewal(
            review, by=reviewer, total_funding="100", country="RU", as_of=date(2027, 1, 21)
        )
    services.decline_renewal(
        review, by=reviewer, note="Moved to an excluded country", as_of=date(2027, 1, 21)
    )
    assert not CreditGrant.objects.filter(year=2).exists()
