"""R1–R3: a staff page offers a role no link that the role is then refused (403). Found by
crawling the demo data as each role."""

import re
from datetime import date

from django.urls import reverse

from billing import services as billing
from startups import services
from startups.models import RenewalReview
from tests.billing.factories import paid_monthly, workspace
from tests.startups.factories import application


def links(response) -> set[str]:
    return set(re.findall(r'href="(/[^"]+)"', response.content.decode()))


def test_r2_a_reviewer_sees_a_workspaces_invoice_numbers_without_links(
    client, db, reviewer, support, pin_today
):
    """The workspace page linked each invoice to its page, which a reviewer may not open."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 2, 1))
    pin_today(date(2026, 2, 10))
    invoice = ws.invoices.get()
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])
    page = reverse("admin:billing_workspace_change", args=[ws.pk])

    client.force_login(reviewer)
    response = client.get(page)
    assert invoice.number in response.content.decode() and url not in links(response)
    assert client.get(url).status_code == 403

    client.force_login(support)
    assert url in links(client.get(page))
    assert client.get(url).status_code == 200


def test_r3_cr3_finance_sees_the_renewals_due_without_the_reviewers_decide_links(
    client, db, reviewer, finance, pin_today
):
    """Finance may read the review queue; its "Review year two" links led to a page only a
    reviewer may open."""
    services.approve_application(
        application(workspace=workspace(as_of=date(2026, 1, 2))),
        by=reviewer,
        as_of=date(2026, 1, 21),
        credits_scope_confirmed=True,
    )
    billing.run_billing(as_of=date(2027, 1, 1))
    pin_today(date(2027, 1, 2))
    decide = reverse("admin:startups_renewal_decide", args=[RenewalReview.objects.get().pk])

    client.force_login(finance)
    queue = client.get(reverse("startups:queue"))
    assert "Year-two renewals due" in queue.content.decode() and decide not in links(queue)
    assert client.get(decide).status_code == 403

    client.force_login(reviewer)
    assert decide in links(client.get(reverse("startups:queue")))
    assert client.get(decide).status_code == 200
