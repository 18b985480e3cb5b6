"""S4 (membership follows the grants), S7 (approval of a workspace credits cannot reach) and
the amended CR3 (renewal 30 days ahead; a late confirmation credits nothing issued before)."""

import functools
from datetime import date
from decimal import Decimal as D

import pytest

from billing import services as billing
from billing.errors import BillingError
from billing.models import Invoice, Workspace
from billing.selectors import workspace_status
from coupons.models import CreditGrant
from startups import services
from startups.models import RenewalReview
from tests.billing.factories import workspace
from tests.coupons.factories import paid_annual, paid_monthly
from tests.startups.factories import application, confirm_year_two, renewal_review_due

DAY = date(2026, 1, 21)


def test_s7_approving_a_free_or_annual_workspace_needs_a_confirmation(db, reviewer):
    for ws, where in ((workspace(as_of=date(2026, 1, 2)), "on Free"), (paid_annual(), "annual")):
        app = application(workspace=ws)
        with pytest.raises(services.ApplicationError, match=f"{where}.*monthly Team invoices"):
            services.approve_application(app, by=reviewer, as_of=DAY)
        app.refresh_from_db()
        assert app.status == "submitted" and not CreditGrant.objects.filter(workspace=ws)
        services.approve_application(app, by=reviewer, as_of=DAY, credits_scope_confirmed=True)
        assert CreditGrant.objects.get(workspace=ws).amount == D("25000.00")
    monthly = paid_monthly()
    services.approve_application(application(workspace=monthly), by=reviewer, as_of=DAY)


def test_cr3_the_renewal_review_opens_thirty_days_before_the_anniversary(db, reviewer):
    app = services.approve_application(
        application(workspace=paid_monthly()), by=reviewer, as_of=DAY
    )
    assert services.open_renewal_reviews(date(2026, 12, 21)) == {}
    assert services.open_renewal_reviews(date(2026, 12, 22)) == {"renewal_reviews_opened": 1}
    review = RenewalReview.objects.get(application=app)
    assert (review.year, review.due_on) == (2, date(2027, 1, 21))
    assert services.open_renewal_reviews(date(2026, 12, 23)) == {}  # once


@pytest.mark.parametrize("funding", ["abc", "NaN", "1e30", "-1", None])
def test_cr3_a_confirmation_with_funding_that_is_not_an_amount_is_refused(db, reviewer, funding):
    app = services.approve_application(
        application(workspace=paid_monthly()), by=reviewer, as_of=DAY
    )
    services.open_renewal_reviews(date(2026, 12, 22))
    review = RenewalReview.objects.get(application=app)
    with pytest.raises(services.ApplicationError, match="total funding"):
        services.confirm_renewal(
            review, by=reviewer, total_funding=funding, country="DE", as_of=date(2026, 12, 23)
        )
    review.refresh_from_db()
    assert review.status == RenewalReview.Status.PENDING
    assert not app.workspace.credit_grants.filter(year=2).exists()


def test_cr3_s4_a_late_confirmation_credits_only_from_its_day(db, reviewer):
    ws = paid_monthly(as_of=date(2026, 1, 1))
    for month in range(1, 13):
        billing.record_usage(ws, month=date(2026, month, 1), mtus=10_000)
    services.approve_application(application(workspace=ws), by=reviewer, as_of=DAY)
    billing.run_billing(as_of=date(2027, 2, 5))
    review = RenewalReview.objects.get()
    ws.refresh_from_db()
    # S4: the year-one grant ended on 2027-01-21 and no year two yet: not a member.
    assert not ws.startup_member
    assert not workspace_status(ws, as_of=date(2027, 2, 5))["startup_member"]
    assert workspace_status(ws, as_of=date(2027, 1, 20))["startup_member"]

    services.confirm_renewal(
        review, by=reviewer, total_funding=D("2000000"), country="DE", as_of=date(2027, 2, 6)
    )
    grant = CreditGrant.objects.get(workspace=ws, year=2)
    assert (grant.valid_from, grant.valid_until) == (date(2027, 2, 6), date(2028, 1, 21))
    # Walk 7: the badge came back only when the clock next ran; the list's Program column and
    # filter, and campaigns, read it before then.
    assert Workspace.objects.get(pk=ws.pk).startup_member
    # The invoice issued on 2027-02-01 (between the anniversary and the confirmation) is not
    # credited again.
    february_first = Invoice.objects.get(workspace=ws, issue_date=date(2027, 2, 1))
    assert (february_first.credits, february_first.total) == (D("0.00"), D("120.00"))
    billing.run_billing(as_of=date(2027, 3, 1))
    march_first = Invoice.objects.get(workspace=ws, issue_date=date(2027, 3, 1))
    assert (march_first.credits, march_first.total) == (D("120.00"), D("0.00"))
    assert Workspace.objects.get(pk=ws.pk).startup_member  # S4: member again


@pytest.mark.parametrize("confirmed_first", [True, False])
def test_cr3_d4_a_year_two_confirmed_after_a_cancellation_that_day_is_refused(
    db, reviewer, confirmed_first
):
    """CR3, CR2, D4: monthly Team since 1 Jan 2026, approved on 21 Jan 2026; its year two is
    confirmed late, on 6 Feb 2027, the day it is also cancelled (K1: a final invoice for
    1–5 February, 120 × 5/28 = 21.43). Confirmed first, the final invoice draws 21.43 of year
    two's credit (0.00 to pay). Cancelled first, the confirmation was taken and the final
    invoice, issued already, was never credited (21.43 to pay): the same day's changes gave
    another invoice in another order. It is refused now, as year one's coupon is."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.approve_application(application(workspace=ws), by=reviewer, as_of=DAY)
    billing.run_billing(as_of=date(2027, 2, 5))
    on = date(2027, 2, 6)
    if confirmed_first:
        confirm_year_two(RenewalReview.objects.get().application, by=reviewer, as_of=on)
    billing.change_to_free(ws, as_of=on)
    final = Invoice.objects.get(workspace=ws, kind="final")
    if confirmed_first:
        assert (final.subtotal, final.credits, final.total) == (D("21.43"), D("21.43"), D("0.00"))
        return
    with pytest.raises(BillingError) as refused:
        confirm_year_two(RenewalReview.objects.get().application, by=reviewer, as_of=on)
    assert str(refused.value).startswith(
        f"A credit grant dated 6 Feb 2027 is refused: invoice {final.number}, dated 6 Feb 2027, "
        "was issued already"
    )
    assert not CreditGrant.objects.filter(workspace=ws, year=2).exists()
    assert RenewalReview.objects.get().status == "pending"  # still to decide


@pytest.mark.parametrize(
    "country, refusal",
    [
        (" de ", None),
        ("zz", "“ZZ” is not an ISO 3166-1 country code."),
        ("ru", "Year two needs E2 and E3 to pass: Russia is not an eligible territory."),
    ],
)
def test_cr3_e3_a_confirmation_reads_the_country_as_the_forms_do(db, reviewer, country, refusal):
    """CR3, E3: year two confirmed with "de" was refused as "de is not an eligible territory"
    (the forms and the decline read the code in capitals); an unknown code is named as one."""
    review = renewal_review_due(by=reviewer)
    confirm = functools.partial(
        services.confirm_renewal,
        review,
        by=reviewer,
        total_funding=D("1000000"),
        as_of=date(2027, 1, 22),
    )
    if refusal is None:
        assert confirm(country=country).country == "DE"
        return
    with pytest.raises(BillingError) as refused:
        confirm(country=country)
    assert str(refused.value) == refusal


def test_w1_cr3_no_renewal_review_opens_for_a_closed_workspace(db, reviewer, support):
    closed, kept = paid_monthly(), paid_monthly()
    for ws in (closed, kept):
        services.approve_application(application(workspace=ws), by=reviewer, as_of=DAY)
    billing.close_workspace(closed, by=support, reason="Deleted, ticket 5", as_of=date(2026, 6, 1))
    # The closure lapsed its credit: there is no second year to review.
    assert services.open_renewal_reviews(date(2026, 12, 22)) == {"renewal_reviews_opened": 1}
    assert list(RenewalReview.objects.values_list("application__workspace", flat=True)) == [kept.pk]


@pytest.mark.parametrize("day", [date(2028, 1, 21), date(2028, 3, 1)])
def test_cr3_a_renewal_confirmed_once_year_two_would_have_ended_is_refused(db, reviewer, day):
    app = services.approve_application(
        application(workspace=paid_monthly()), by=reviewer, as_of=DAY
    )
    services.open_renewal_reviews(date(2026, 12, 22))
    review = RenewalReview.objects.get(application=app)
    # Year two would run 2027-01-21 .. 2028-01-21 (exclusive): nothing is left to credit.
    with pytest.raises(services.ApplicationError, match="Year two ended on 2028-01-21"):
        services.confirm_renewal(
            review, by=reviewer, total_funding=D("100000"), country="DE", as_of=day
        )
    review.refresh_from_db()
    assert review.status == RenewalReview.Status.PENDING
    assert not app.workspace.credit_grants.filter(year=2).exists()
    services.decline_renewal(review, by=reviewer, note="Too late for year two", as_of=day)


def test_c7_cr3_year_two_of_a_partner_deactivated_since_takes_the_programs_amount(
    db, reviewer, support
):
    """A partner with its own $50,000.00 credit: its startup's year one (approved 21 January)
    is 50,000.00. The partner is deactivated on 1 June, after which its startups get the
    STARTUP coupon's 25,000.00. Year two, confirmed on 5 January 2027, copied year one's
    50,000.00; a new grant, it is now 25,000.00. An active partner's stays its own."""
    from coupons import services as coupons
    from coupons.models import AcceleratorPartner

    def partner(name):
        return AcceleratorPartner.objects.create(
            name=name,
            contact_name="Mira",
            contact_email=f"{name.lower()}@example.com",
            status=AcceleratorPartner.Status.ACTIVE,
            credit_amount=D("50000.00"),
            applied_on=date(2025, 1, 1),
        )

    ended, going = partner("Seedbed"), partner("Sprout")
    apps = {}
    for who in (ended, going):
        ws = paid_monthly()
        apps[who.name] = application(workspace=ws, partner=who, as_of=date(2026, 1, 10))
        services.approve_application(apps[who.name], by=reviewer, as_of=date(2026, 1, 21))
    coupons.deactivate_partner(ended, by=support, reason="Program ended", as_of=date(2026, 6, 1))

    services.open_renewal_reviews(date(2026, 12, 22))
    for app in apps.values():
        confirm_year_two(app, by=reviewer, as_of=date(2027, 1, 5))
    amounts = {
        name: list(
            CreditGrant.objects.filter(workspace=app.workspace)
            .order_by("year")
            .values_list("amount", flat=True)
        )
        for name, app in apps.items()
    }
    assert amounts == {
        "Seedbed": [D("50000.00"), D("25000.00")],
        "Sprout": [D("50000.00"), D("50000.00")],
    }


def test_c7_cr3_year_two_after_a_partners_own_coupon_was_switched_off_is_startups(
    db, reviewer, support
):
    """C7: Seedbed's own startup coupon SEEDBED gives 40,000.00 (no amount on the partner's
    row): its startup approved 21 January gets year one = 40,000.00. Seedbed is deactivated on
    1 June, its coupon switched off with it. Year two, confirmed 5 January 2027, took the
    switched-off coupon's 40,000.00; it is the STARTUP coupon's 25,000.00, as for a partner
    whose row set the amount."""
    from coupons import services as coupons
    from coupons.models import AcceleratorPartner

    seedbed = AcceleratorPartner.objects.create(
        name="Seedbed",
        contact_name="Mira",
        contact_email="mira@example.com",
        status=AcceleratorPartner.Status.ACTIVE,
        applied_on=date(2025, 1, 1),
    )
    coupons.create_coupon(
        "SEEDBED", "Seedbed startups", "startup_program", credit_amount="40000.00", partner=seedbed
    )
    ws = paid_monthly()
    app = application(workspace=ws, partner=seedbed, as_of=date(2026, 1, 10))
    services.approve_application(app, by=reviewer, as_of=date(2026, 1, 21))
    coupons.deactivate_partner(seedbed, by=support, reason="Program ended", as_of=date(2026, 6, 1))
    services.open_renewal_reviews(date(2026, 12, 22))
    confirm_year_two(app, by=reviewer, as_of=date(2027, 1, 5))
    assert list(
        CreditGrant.objects.filter(workspace=ws).order_by("year").values_list("amount", flat=True)
    ) == [D("40000.00"), D("25000.00")]


def test_s7_t4_approving_on_the_day_a_cardless_trial_ends_needs_the_confirmation(db, reviewer):
    """T3, T4: straight into Team without a card on 7 January, the trial's end date is 21
    January; with no card that day it is on Free from it. Approved on 21 January, before the
    clock processed the day, it went through without S7's confirmation (approving on the 22nd
    asked for it). It now asks, and a card on file that day needs none."""
    ws = workspace(as_of=date(2026, 1, 7), plan="team")
    app = application(workspace=ws, as_of=date(2026, 1, 20))
    with pytest.raises(services.ApplicationError, match="no card on file.*monthly Team invoices"):
        services.approve_application(app, by=reviewer, as_of=date(2026, 1, 21))
    services.approve_application(
        app, by=reviewer, as_of=date(2026, 1, 21), credits_scope_confirmed=True
    )
    carded = workspace(slug="carded", as_of=date(2026, 1, 7), plan="team")
    billing.add_payment_method(carded, as_of=date(2026, 1, 21))
    approved = services.approve_application(
        application(workspace=carded, as_of=date(2026, 1, 20)), by=reviewer, as_of=date(2026, 1, 21)
    )
    assert approved.status == "approved"
    billing.run_billing(as_of=date(2026, 1, 21))
    assert workspace_status(ws, as_of=date(2026, 1, 21))["plan"] == "free"
    assert workspace_status(carded, as_of=date(2026, 1, 21))["plan"] == "team"


def test_s4_w1_a_workspace_closed_is_no_program_member_from_the_day_its_credit_lapsed(
    db, support, reviewer
):
    """S4, W1: approved on 6 January 2026 (25,000.00, year one to 6 January 2027) and closed on
    21 January, which lapsed its credit that day. Its status and badge still said "program
    member" on the 22nd, and after it was reopened on Free on 5 February, until January 2027
    (and a campaign for members reached it). A grant lapsed by a closure is valid no more."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    app = application(as_of=date(2026, 1, 5), workspace=ws)
    services.approve_application(app, by=reviewer, note="ok", as_of=date(2026, 1, 6))
    billing.run_billing(as_of=date(2026, 1, 20))
    assert workspace_status(ws, as_of=date(2026, 1, 20))["startup_member"] is True

    billing.close_workspace(ws, by=support, reason="Deleted, ticket 9", as_of=date(2026, 1, 21))
    # Walk 6: the workspace list's "Program" column and filter read the badge, which kept
    # saying "member" until the clock next ran: the closure takes it off itself.
    assert Workspace.objects.get(pk=ws.pk).startup_member is False
    billing.run_billing(as_of=date(2026, 1, 22))
    after = workspace_status(ws, as_of=date(2026, 1, 22))
    assert (after["credit_balance"], after["startup_member"]) == (0, False)
    assert workspace_status(ws, as_of=date(2026, 1, 20))["startup_member"] is True  # D3
    assert Workspace.objects.get(pk=ws.pk).startup_member is False

    billing.run_billing(as_of=date(2026, 2, 4))
    billing.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 2, 5))
    billing.run_billing(as_of=date(2026, 2, 6))
    assert workspace_status(ws, as_of=date(2026, 2, 6))["startup_member"] is False
    assert Workspace.objects.get(pk=ws.pk).startup_member is False
