"""D4, C7: a startup's grant reads its partner's status (the partner's amount while active), so
an approval and the partner's decisions go in date order. Entered ahead of a lagging clock, an
approval dated 20 January after the partner's approval dated 25 January gave the partner's
50,000.00 where, in date order, it was 25,000.00; after a deactivation dated 25 January it gave
25,000.00 where it was the active partner's 50,000.00."""

from datetime import date
from decimal import Decimal as D

import pytest

from coupons import services as coupons
from coupons.errors import CouponError
from coupons.models import CreditGrant
from startups import services
from tests.billing.factories import workspace

from .factories import application, confirm_year_two


def seedcamp(reviewer, *, active_from=None):
    partner = coupons.apply_as_partner(
        "Seedcamp", contact_name="Sam", contact_email="sam@example.com", as_of=date(2026, 1, 2)
    )
    if active_from:
        coupons.approve_partner(
            partner, by=reviewer, as_of=active_from, credit_amount="50000.00", note="Cohorts"
        )
    return partner


def approve(app, reviewer, day):
    return services.approve_application(app, by=reviewer, as_of=day, credits_scope_confirmed=True)


def test_d4_c7_an_approval_dated_before_its_partners_decision_entered_already_is_refused(
    db, reviewer
):
    activated = seedcamp(reviewer)
    app = application(
        workspace=workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus"),
        partner=activated,
        as_of=date(2026, 1, 10),
    )
    coupons.approve_partner(
        activated, by=reviewer, as_of=date(2026, 1, 25), credit_amount="50000.00", note="Big"
    )
    with pytest.raises(
        services.ApplicationError,
        match="cannot be dated 20 Jan 2026: Seedcamp's decision dated 25 Jan 2026",
    ):
        approve(app, reviewer, date(2026, 1, 20))
    assert not CreditGrant.objects.exists()
    approve(app, reviewer, date(2026, 1, 25))  # dated with or after it: the active partner's
    assert CreditGrant.objects.get().amount == D("50000.00")


def test_d4_c7_a_partner_decision_dated_before_a_grant_entered_already_is_refused(db, reviewer):
    partner = seedcamp(reviewer, active_from=date(2026, 1, 3))
    app = application(
        workspace=workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus"),
        partner=partner,
        as_of=date(2026, 1, 10),
    )
    approve(app, reviewer, date(2026, 1, 20))
    assert CreditGrant.objects.get().amount == D("50000.00")
    with pytest.raises(CouponError, match="a grant to one of its startups dated 20 Jan 2026"):
        coupons.deactivate_partner(partner, by=reviewer, reason="Closed", as_of=date(2026, 1, 15))
    coupons.deactivate_partner(partner, by=reviewer, reason="Closed", as_of=date(2026, 1, 20))


def test_d4_c7_a_deactivation_dated_after_a_confirmation_is_in_date_order(db, reviewer, support):
    """A year-two grant is valid from the anniversary (21 January), not its confirmation (28
    December): a deactivation dated 5 January, after every change entered, was refused as if
    dated before that grant. Only year-one grants (dated their approval) count there."""
    from coupons.models import AcceleratorPartner
    from tests.coupons.factories import paid_monthly

    partner = AcceleratorPartner.objects.create(
        name="Seedbed",
        contact_name="Mira",
        contact_email="seedbed@example.com",
        status=AcceleratorPartner.Status.ACTIVE,
        credit_amount=D("50000.00"),
        applied_on=date(2025, 1, 1),
    )
    app = application(workspace=paid_monthly(), partner=partner, as_of=date(2026, 1, 10))
    services.approve_application(app, by=reviewer, as_of=date(2026, 1, 21))
    services.open_renewal_reviews(date(2026, 12, 22))
    # Confirmed on 28 December, ahead of the 21 January anniversary (CR3: 30 days ahead).
    confirm_year_two(app, by=reviewer, as_of=date(2026, 12, 28))
    coupons.deactivate_partner(partner, by=support, reason="Program ended", as_of=date(2027, 1, 5))
    partner.refresh_from_db()
    assert partner.status == AcceleratorPartner.Status.INACTIVE
