"""R1–R3: a staff page offers a role no link that the role is then refused (403). Found by
crawling the demo data as each role."""

import re
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from billing import services as billing
from billing.models import WorkspaceClosure
from coupons.models import CreditLedgerEntry
from startups import services
from startups.models import RenewalReview
from tests.billing.factories import paid_monthly, workspace
from tests.startups.factories import application
from tests.test_side_doors import _url, registered, world  # noqa: F401  (world: a row of each model)


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


def _refused_links(client, pages) -> dict[str, str]:
    """Each link to an admin page found on `pages` that answers 403, with the page it is on."""
    refused, answers = {}, {}
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        for link in links(response):
            if not link.startswith("/admin/") or "?" in link:
                continue
            if link not in answers:
                answers[link] = client.get(link).status_code
            if answers[link] == 403:
                refused.setdefault(link, page)
    return refused


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("role", ["support", "reviewer", "finance"])
def test_r1_r2_r3_no_row_page_or_history_links_a_page_the_role_is_refused(request, client, role):
    """A read-only field that points at another row was drawn as a link to that row's page
    whoever read it, and a history's "Changed by" as a link to the user's page: a reviewer on
    a credit ledger entry or a discount was sent to an invoice (403), support and finance on an
    application to its accelerator partner (403), everyone to /admin/auth/user/<id>/change/
    (403) from a closure, a credit grant or any history. The row's name is shown; a link only
    to who may open it."""
    user = request.getfixturevalue(role)
    client.force_login(user)
    pages = []
    for model, model_admin in registered():
        if not model_admin.has_view_permission(_as(user)):
            continue
        for obj in model._default_manager.order_by("pk")[:2]:
            pages.append(_url(model, "change", obj.pk))
            pages.append(_url(model, "history", obj.pk))
    assert _refused_links(client, pages) == {}


@pytest.mark.usefixtures("world")
def test_r1_r2_r3_a_related_row_is_named_to_all_and_linked_for_who_may_open_it(client, reviewer):
    """A reviewer reads a credit ledger entry's invoice number and a closure's user, unlinked;
    the superuser (who may open every page) keeps Django's links to them, and from a history
    to who changed the row."""
    entry = CreditLedgerEntry.objects.exclude(invoice=None).select_related("invoice").first()
    closure = WorkspaceClosure.objects.select_related("closed_by").first()
    invoice_url = reverse("admin:billing_invoice_change", args=[entry.invoice_id])
    user_url = reverse("admin:auth_user_change", args=[closure.closed_by_id])
    entry_page = _url(CreditLedgerEntry, "change", entry.pk)
    closure_page = _url(WorkspaceClosure, "change", closure.pk)
    history_page = _url(WorkspaceClosure, "history", closure.pk)

    client.force_login(reviewer)
    page = client.get(entry_page)
    assert entry.invoice.number in page.content.decode() and invoice_url not in links(page)
    page = client.get(closure_page)
    assert closure.closed_by.username in page.content.decode() and user_url not in links(page)
    assert user_url not in links(client.get(history_page))

    client.force_login(User.objects.create_superuser("root", "root@example.com", "pass-for-tests"))
    assert invoice_url in links(client.get(entry_page))
    assert user_url in links(client.get(closure_page))
    assert user_url in links(client.get(history_page))


def _as(user):
    request = RequestFactory().get("/")
    request.user = user
    return request
