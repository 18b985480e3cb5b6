"""Two staff confirming pages about one row at once, on PostgreSQL: each page's POST reads what
it shows only after the other's finished (`ServiceAdmin._one_post_at_a_time`), so the second
finds the state changed and does nothing, as `service_form_page` promises. Each side is a thread
with its own database connection and its own signed-in browser (a test client)."""

import threading
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
from django.contrib import admin
from django.db import connections
from django.test import Client, RequestFactory
from django.urls import reverse

from billing import services
from billing.admin_toolkit import WORKSPACE_PAGES
from billing.models import Invoice, TaxExemption, Workspace
from coupons import campaigns
from coupons import services as coupons
from coupons.models import Campaign, CampaignRecipient, Redemption
from startups.models import StartupApplication
from tests.admin_pages import as_shown
from tests.coupons.factories import coupon
from tests.services import another_backend_waits_on_a_lock, require_postgres
from tests.startups.factories import application

from .factories import certificate, paid_monthly, workspace

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _needs_postgres():
    require_postgres()  # SQLite serialises writers: these races cannot happen there


def page_of(response) -> str:
    # The page's own words: a test client's captured context mixes two threads' templates.
    return unescape(response.content.decode())


def second_confirms_while_the_first_is_held(monkeypatch, module, service, first, second):
    """Post `first` (client, url, data); once its page has checked what it showed and called
    `module.service`, hold it there and post `second`; let the first go on once the second
    waits for it (or, where nothing makes it wait, once it is done). Both pages, in order."""
    checked, go_on = threading.Event(), threading.Event()
    original = getattr(module, service)

    def held(*args, **kwargs):
        if threading.current_thread().name == "first":
            checked.set()
            assert go_on.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, service, held)
    pages = {}

    def post(name, client, url, data):
        try:
            pages[name] = client.post(url, data, follow=True)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=post, name=name, args=(name, *side))
        for name, side in (("first", first), ("second", second))
    ]
    threads[0].start()
    assert checked.wait(30)
    threads[1].start()
    another_backend_waits_on_a_lock(timeout=5)
    go_on.set()
    for thread in threads:
        thread.join(60)
    return page_of(pages["first"]), page_of(pages["second"])


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_k1_k3_a_colleague_moving_the_plan_to_annual_during_a_cancellation_does_nothing(
    support, today, monkeypatch
):
    """K1, K3: Ada opens the plan page of a workspace on monthly Team since 1 Jan 2026 (it says
    "Free from today, with a final invoice"); Ben opens its interval page. Ada confirms the
    cancellation and, once her page has checked what it showed and before her change takes
    the workspace's lock, Ben confirms annual billing. Ben's page waits for Ada's to finish,
    finds the workspace on Free, which it never showed, says Free has no interval to change
    and does nothing: one final invoice, 38.57 for 1–9 February 2026, and no annual term.
    Before, Ben's page checked what it showed before Ada's change was written and went through
    too: a year billed 1,440.00, and Ada's cancellation then landed on that annual term,
    cancelled at its end."""
    ws = paid_monthly(date(2026, 1, 1), slug="orbit")
    plan_url = reverse("admin:billing_workspace_action", args=[ws.pk, "plan"])
    interval_url = reverse("admin:billing_workspace_action", args=[ws.pk, "interval"])
    ada, ben = signed_in(support), signed_in(support)
    cancel = as_shown(ada, plan_url, {"plan": "free", "reason": "Ticket 1: cancel"})
    annual = as_shown(ben, interval_url, {"interval": "annual", "reason": "Ticket 2: annual"})

    adas, bens = second_confirms_while_the_first_is_held(
        monkeypatch,
        services,
        "change_to_free",
        (ada, plan_url, cancel),
        (ben, interval_url, annual),
    )

    assert "is on Free: Ticket 1: cancel. Issued final invoice" in adas
    assert (
        f"{ws.name} is on Free: only a Team subscription has a billing interval to change (K4)."
        in bens
    )
    current = ws.subscriptions.get(ended_on=None)
    assert (current.plan.code, current.cancel_at_term_end) == ("free", False)
    issued = Invoice.objects.filter(workspace=ws).order_by("number")
    assert [(i.kind, i.total) for i in issued] == [("final", Decimal("38.57"))]


def test_g2_a_campaign_launched_from_two_pages_at_once_is_launched_once(
    support, today, monkeypatch
):
    """G2: two people confirm the launch of one campaign (5 Free workspaces) at once. The
    second page waits for the first, finds the campaign launched with nobody new to reach,
    says so and launches nothing: one launch, 5 recipients, one history row. Before, both
    went through, the second as "Launched again … 0 workspace(s) added", and the campaign
    counted two launches."""
    for _ in range(5):
        workspace(as_of=date(2026, 1, 1))
    promo = coupon(percent_off="25", duration="once")
    campaign = coupons.create_campaign(
        "Spring", promo.code, "25% off", "Spring is here.", {"plan": "free"}, by=support
    )
    url = reverse("admin:coupons_campaign_launch", args=[campaign.pk])
    ada, ben = signed_in(support), signed_in(support)
    launch = as_shown(ada, url)
    assert as_shown(ben, url) == launch

    adas, bens = second_confirms_while_the_first_is_held(
        monkeypatch, campaigns, "launch_campaign", (ada, url, launch), (ben, url, launch)
    )

    assert "5 workspace" in adas
    assert "Nobody new would be emailed: the 5 workspace(s) reached before" in bens
    launched = Campaign.objects.get(pk=campaign.pk)
    assert (launched.launches, launched.launched_on) == (1, today)
    assert launched.history.filter(history_change_reason__startswith="Launched").count() == 1
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 5


def test_w1_x4_a_certificate_approved_during_a_closure_waits_for_its_final_invoice(
    support, finance, today, monkeypatch
):
    """W1, X4: Ada opens the closure page of a workspace on monthly Team in California since
    1 Jan 2026: its final invoice for 1–9 February 2026 is 38.57 and 2.80 tax (7.25 %), 41.37.
    Ben (finance) opens the workspace's California certificate's Approve page. Ada confirms
    the closure and, once her page has checked what it showed, Ben confirms the approval. The
    certificate is another row than the workspace, but its page changes what the closure page
    showed, so Ben's page waits for Ada's: the final invoice is the 41.37 her page showed, and
    Ben's page then says the workspace is closed and approves nothing. Before, Ben's approval
    went through first and Ada's closure issued a final invoice of 38.57 without tax, which
    her page never showed."""
    ws = paid_monthly(date(2026, 1, 1), slug="orbit", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 2, 5))
    close_url = reverse("admin:billing_workspace_close", args=[ws.pk])
    approve_url = reverse("admin:billing_taxexemption_decide", args=[cert.pk, "approve"])
    ada, ben = signed_in(support), signed_in(finance)
    close = as_shown(ada, close_url, {"reason": "Ticket 3: deletion request"})
    approve = as_shown(ben, approve_url)

    adas, bens = second_confirms_while_the_first_is_held(
        monkeypatch,
        services,
        "close_workspace",
        (ada, close_url, close),
        (ben, approve_url, approve),
    )

    assert "closed: Ticket 3: deletion request" in adas
    assert (
        f"Approving a certificate is refused: {ws.name} was closed on 10 Feb 2026. A closed "
        "workspace accepts no change" in bens
    )
    assert TaxExemption.objects.get(pk=cert.pk).status == "submitted"
    final = Invoice.objects.get(workspace=ws, kind="final")
    figures = (final.subtotal, final.tax, final.total)
    assert figures == (Decimal("38.57"), Decimal("2.80"), Decimal("41.37"))


def test_w1_c2_a_coupon_applied_during_a_closure_waits_for_its_final_invoice(
    support, today, monkeypatch
):
    """W1, C2: Ada confirms the closure of a workspace on monthly Team since 1 Jan 2026 (its
    page shows a final invoice of 38.57 for 1–9 February 2026); Ben applies a 25 % coupon to
    it on the apply page, where the workspace is picked in the form, not in the address. Ben's
    page waits for Ada's, then says the workspace is closed and applies nothing: the final
    invoice is the 38.57 Ada's page showed. Before, Ben's coupon went on first and the final
    invoice took 9.64 off, which her page never showed."""
    ws = paid_monthly(date(2026, 1, 1), slug="orbit")
    promo = coupon(percent_off="25", duration="once")
    close_url = reverse("admin:billing_workspace_close", args=[ws.pk])
    apply_url = reverse("admin:coupons_redemption_apply")
    ada, ben = signed_in(support), signed_in(support)
    close = as_shown(ada, close_url, {"reason": "Ticket 3: deletion request"})
    apply = {"workspace": ws.pk, "coupon": promo.code, "reason": "Ticket 4: goodwill"}

    adas, bens = second_confirms_while_the_first_is_held(
        monkeypatch,
        services,
        "close_workspace",
        (ada, close_url, close),
        (ben, apply_url, apply),
    )

    assert "closed: Ticket 3: deletion request" in adas
    assert f"{ws.name} was closed on 10 Feb 2026" in bens
    assert not Redemption.objects.filter(workspace=ws).exists()
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.discount, final.total) == (Decimal("0.00"), Decimal("38.57"))


def test_w1_s4_an_application_approved_during_a_closure_waits_for_its_final_invoice(
    support, reviewer, today, monkeypatch
):
    """W1, S4, CR2: Ada confirms the closure of a workspace on monthly Team since 1 Jan 2026
    (a final invoice of 38.57 to pay); Ben, a reviewer, approves a startup application for it,
    the workspace picked on the Approve page. Ben's page waits for Ada's, then says the
    workspace is closed and grants nothing: the final invoice is the 38.57 Ada's page showed.
    Before, the approval's 25,000.00 of credit went on first and the final invoice drew 38.57
    of it (0.00 to pay), which her page never showed."""
    ws = paid_monthly(date(2026, 1, 1), slug="orbit")
    app = application(workspace=ws, as_of=date(2026, 2, 2))
    close_url = reverse("admin:billing_workspace_close", args=[ws.pk])
    approve_url = reverse("admin:startups_application_action", args=[app.pk, "approve"])
    ada, ben = signed_in(support), signed_in(reviewer)
    close = as_shown(ada, close_url, {"reason": "Ticket 3: deletion request"})
    approve = as_shown(ben, approve_url, {"workspace": ws.pk, "note": "Fits the program"})

    adas, bens = second_confirms_while_the_first_is_held(
        monkeypatch,
        services,
        "close_workspace",
        (ada, close_url, close),
        (ben, approve_url, approve),
    )

    assert "closed: Ticket 3: deletion request" in adas
    assert f"{ws.name} was closed on 10 Feb 2026" in bens
    assert not ws.credit_grants.exists()
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.credits, final.total) == (Decimal("0.00"), Decimal("38.57"))


def test_pages_of_a_workspaces_rows_take_turns_with_the_workspaces_own_pages():
    """Every admin whose row belongs to a workspace names the path to it: it leads to a
    workspace, and a row's key is its workspace's, the key of the workspace's own pages (a row
    not found keeps its own)."""
    by_workspace = {
        model._meta.label: model_admin
        for model, model_admin in admin.site._registry.items()
        if getattr(model_admin, "workspace_of_row", None) not in (None, "pk")
    }
    assert set(by_workspace) >= {
        "billing.Invoice",
        "billing.CreditNote",
        "billing.TaxExemption",
        "coupons.NonprofitProof",
        "coupons.Redemption",
        "startups.RenewalReview",
    }
    for label, model_admin in by_workspace.items():
        model = model_admin.model
        for name in model_admin.workspace_of_row.split("__"):
            model = model._meta.get_field(name).related_model
        assert model is Workspace, label
        assert model_admin._turn(0) == (f"page {label}", "0")
    ws = workspace(as_of=date(2026, 1, 1))
    invoices = admin.site._registry[Invoice]
    cert = certificate(ws, "OR", on=date(2026, 1, 5))
    assert admin.site._registry[TaxExemption]._turn(cert.pk) == (WORKSPACE_PAGES, str(ws.pk))
    assert admin.site._registry[Workspace]._turn(ws.pk) == (WORKSPACE_PAGES, str(ws.pk))
    assert invoices._turn(12345) == ("page billing.Invoice", "12345")


def test_a_post_takes_one_workspaces_turn_at_most_and_takes_it_last(support):
    """A page where the workspace is picked takes its turn after the row's; a row's page whose
    key is already a workspace's takes no other (two keys of workspaces, taken in either order
    by two POSTs, could wait on each other)."""
    ws, other = workspace(as_of=date(2026, 1, 1)), workspace(as_of=date(2026, 1, 1))
    app = application(workspace=ws)
    redemptions = admin.site._registry[Redemption]
    applications = admin.site._registry[StartupApplication]
    picked = RequestFactory().post("/", {"workspace": str(ws.pk)})
    assert redemptions._turns(picked, {}) == [(WORKSPACE_PAGES, str(ws.pk))]
    assert applications._turns(picked, {"pk": app.pk}) == [
        ("page startups.StartupApplication", str(app.pk)),
        (WORKSPACE_PAGES, str(ws.pk)),
    ]
    promo = coupons.redeem_coupon(
        other, coupon(percent_off="10").code, by=support, as_of=date(2026, 1, 1)
    )
    assert redemptions._turns(picked, {"pk": promo.pk}) == [(WORKSPACE_PAGES, str(other.pk))]
    not_a_row = RequestFactory().post("/", {"workspace": "1; drop"})
    assert redemptions._turns(not_a_row, {}) == []
    assert redemptions._turns(RequestFactory().get("/", {"workspace": ws.pk}), {}) == []
