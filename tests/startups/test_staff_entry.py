"""S1, C7: staff enter an application with its partner in the admin, through the service."""

from datetime import date

import pytest
from django.urls import reverse

from coupons import services as coupons
from startups import services as startups
from startups.errors import ApplicationError
from startups.models import StartupApplication
from tests.billing.factories import workspace
from tests.startups.factories import application


def test_s1_c7_staff_enter_an_application_with_its_partner(client, db, reviewer, today):
    partner = coupons.apply_as_partner(
        "Launchpad", contact_name="Lee", contact_email="lee@example.com", as_of=date(2026, 1, 2)
    )
    coupons.approve_partner(partner, by=reviewer, as_of=date(2026, 1, 3))
    client.force_login(reviewer)
    response = client.post(
        reverse("admin:startups_startupapplication_add"),
        {
            "company_name": "Acme Robotics",
            "website": "https://acme.example.com",
            "contact_name": "Ada",
            "contact_email": "ada@acme.example.com",
            "incorporation_date": "2025-06-01",
            "total_funding": "1500000.00",
            "country": "DE",
            "partner": partner.pk,
            "partner_name": "",
        },
    )
    assert response.status_code == 302
    entered = StartupApplication.objects.get(company_name="Acme Robotics")
    assert (entered.source, entered.partner, entered.partner_name) == (
        "staff",
        partner,
        "Launchpad",
    )
    assert entered.history.get().history_user == reviewer


def test_c7_s2_a_reviewer_links_workspace_and_partner_and_the_checks_follow(
    client, db, reviewer, support, today
):
    partner = coupons.apply_as_partner(
        "Seedcamp", contact_name="Sam", contact_email="sam@example.com", as_of=date(2026, 1, 2)
    )
    app = application()
    ws = workspace(as_of=date(2026, 1, 2))
    client.force_login(reviewer)
    url = reverse("admin:startups_startupapplication_change", args=[app.pk])
    # R4: the form asks why and refuses an empty reason; nothing is linked then.
    page = client.post(url, {"workspace": ws.pk, "partner": partner.pk, "change_reason": " "})
    assert "Say why" in page.content.decode()
    app.refresh_from_db()
    assert (app.workspace, app.partner) == (None, None)
    client.post(url, {"workspace": ws.pk, "partner": partner.pk, "change_reason": "Ticket 12"})
    app.refresh_from_db()
    assert (app.workspace, app.partner) == (ws, partner)
    assert app.history.first().history_change_reason == (
        f"Linked: workspace {ws.slug}, partner Seedcamp: Ticket 12"
    )
    # Support may read applications but not link them.
    client.force_login(support)
    other = workspace(as_of=date(2026, 1, 2))
    assert client.post(url, {"workspace": other.pk}).status_code == 403
    app.refresh_from_db()
    assert app.workspace == ws


def test_s2_a_decided_application_cannot_be_linked_and_says_so(db, reviewer, today):
    app = application(as_of=date(2026, 1, 2))
    startups.withdraw_application(app, by=reviewer, as_of=date(2026, 1, 5), reason="Founder asked")
    with pytest.raises(ApplicationError, match=r"already withdrawn.*: it cannot be linked\.$"):
        startups.link_application(
            app,
            by=reviewer,
            workspace=workspace(as_of=date(2026, 1, 2)),
            partner=None,
            as_of=date(2026, 1, 6),
            reason="Ticket 12",
        )
