"""Decide on the page you read (issue 13): finance approves or rejects a certificate on its
page with the document shown (X4, X5), and a credit note beside the invoice's refunded, pending
and left amounts (K3); every decision that moves money is confirmed; a page whose object's
state rules the action out says so instead of offering a form (I3, F5). Through the test
client, with the real role groups."""

import html
import re
from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from billing import services
from billing.demo import certificate_pdf
from billing.models import CreditNote, Invoice
from tests.admin_pages import as_shown, messages_of

from .factories import workspace

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


@pytest.fixture(autouse=True)
def today(pin_today):
    return pin_today(date(2026, 2, 10))


def forms_posting(body):
    return re.findall(r'<form method="post"', body)


def certificate(content=None, name="c.pdf"):
    ws = workspace(name="Harbor Food Bank", business_country="US", business_region="TX")
    return services.submit_exemption(
        ws,
        region="TX",
        reason="nonprofit",
        document=ContentFile(content or certificate_pdf("TX exemption"), name=name),
        valid_from=date(2026, 1, 1),
        as_of=date(2026, 2, 1),
    )


def decide_url(cert, decision):
    return reverse("admin:billing_taxexemption_decide", args=[cert.pk, decision])


# --- Certificates (X4, X5) ------------------------------------------------------------------


def test_x4_x5_the_certificate_page_shows_the_document_and_the_decisions(db, client, finance):
    cert = certificate()
    client.force_login(finance)
    body = client.get(reverse("admin:billing_taxexemption_change", args=[cert.pk])).content
    body = body.decode()
    preview = reverse("finance:certificate-document", args=[cert.pk]) + "?preview=1"
    assert f'<iframe src="{preview}"' in body
    for decision in ("review", "approve", "reject"):
        assert decide_url(cert, decision) in body
    # The preview is the same permission-checked view, shown inline in a sandbox.
    response = client.get(preview)
    assert response["Content-Disposition"].startswith("inline;")
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_x5_an_image_certificate_is_shown_as_an_image(db, client, finance):
    cert = certificate(PNG, name="scan.png")
    client.force_login(finance)
    body = client.get(reverse("admin:billing_taxexemption_change", args=[cert.pk])).content
    preview = reverse("finance:certificate-document", args=[cert.pk]) + "?preview=1"
    assert f'<img src="{preview}"'.encode() in body


def test_x4_finance_approves_from_the_page_after_a_confirmation(db, client, finance):
    cert = certificate()
    client.force_login(finance)
    asked = client.get(decide_url(cert, "approve")).content.decode()
    assert "From today, invoices of Harbor Food Bank for TX carry no sales tax" in asked
    assert 'value="Yes, approve"' in asked
    assert "<iframe" in asked  # the document again, beside the button
    cert.refresh_from_db()
    assert cert.status == "submitted"  # asking changed nothing

    url = decide_url(cert, "approve")
    response = client.post(url, as_shown(client, url), follow=True)
    assert f"Certificate #{cert.pk} approved" in messages_of(response)[0]
    cert.refresh_from_db()
    assert (cert.status, cert.reviewed_by, cert.decided_on) == (
        "approved",
        finance,
        date(2026, 2, 10),
    )


def test_x4_finance_rejects_from_the_page_with_a_reason(db, client, finance):
    cert = certificate()
    client.force_login(finance)
    refused = client.post(decide_url(cert, "reject"), {"reason": "  "})
    assert "Say why: the reason is kept in the history." in refused.content.decode()
    url = decide_url(cert, "reject")
    client.post(url, as_shown(client, url, {"reason": "Not signed"}))
    cert.refresh_from_db()
    assert (cert.status, cert.rejection_reason) == ("rejected", "Not signed")


def test_x4_a_decided_certificate_page_says_so_and_offers_no_form(db, client, finance):
    cert = certificate()
    services.approve_exemption(cert, by=finance, as_of=date(2026, 2, 2))
    client.force_login(finance)
    body = client.get(decide_url(cert, "reject")).content.decode()
    assert f"Certificate #{cert.pk} was already approved on 2 Feb 2026" in body
    assert forms_posting(body) == []
    client.post(decide_url(cert, "reject"), {"reason": "Changed my mind"})
    cert.refresh_from_db()
    assert cert.status == "approved"
    page = client.get(reverse("admin:billing_taxexemption_change", args=[cert.pk]))
    assert decide_url(cert, "reject") not in page.content.decode()


@pytest.mark.parametrize("who", ["support", "reviewer"])
def test_x4_only_finance_decides(db, client, request, who):
    cert = certificate()
    client.force_login(request.getfixturevalue(who))
    assert client.post(decide_url(cert, "approve")).status_code == 403
    cert.refresh_from_db()
    assert cert.status == "submitted"
    if who == "support":  # may see the certificate, not decide on it
        page = client.get(reverse("admin:billing_taxexemption_change", args=[cert.pk]))
        assert decide_url(cert, "approve") not in page.content.decode()


# --- Invoices and credit notes (K3, I3) -----------------------------------------------------


@pytest.fixture
def invoice(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True, name="Acme")
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 1, 1))
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    return Invoice.objects.get(workspace=ws)  # $120.00, Oregon: no tax


def figures(body):
    table = re.search(r'<table class="figures".*?</table>', body, re.S).group(0)
    return re.findall(r'<th scope="row">([^<]+)</th><td>([^<]+)</td>', table)


def test_k3_the_invoice_page_shows_refunded_pending_and_left(db, client, support, finance, invoice):
    approved = services.request_credit_note(
        invoice, by=support, amount="20.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(approved, by=finance, approve=True, as_of=date(2026, 2, 3))
    waiting = services.request_credit_note(
        invoice, by=support, amount="30.50", reason="Goodwill", as_of=date(2026, 2, 4)
    )
    client.force_login(finance)
    body = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk])).content.decode()
    assert figures(body) == [
        ("Invoice total", "$120.00"),
        ("Refunded (approved credit notes)", "$20.00"),
        ("Requested, waiting for finance", "$30.50"),
        ("Not refunded yet", "$100.00"),
        ("Left to request, after those waiting", "$69.50"),  # 120.00 − 20.00 − 30.50
    ]
    approve = reverse("admin:billing_creditnote_decide", args=[waiting.pk, "approve"])
    assert approve in body
    assert reverse("admin:billing_creditnote_decide", args=[approved.pk, "approve"]) not in body
    assert reverse("finance:credit-note-document", args=[approved.pk]) in body


def test_k3_finance_approves_a_credit_note_beside_the_invoice_figures(
    db, client, support, finance, invoice
):
    note = services.request_credit_note(
        invoice, by=support, amount="45.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_decide", args=[note.pk, "approve"])
    asked = client.get(url).content.decode()
    assert 'value="Yes, approve $45.00"' in asked
    assert ("Not refunded yet", "$120.00") in figures(asked)
    note.refresh_from_db()
    assert note.status == "requested"
    response = client.post(
        url, as_shown(client, url, {"reason": "Refunded to the card"}), follow=True
    )
    assert messages_of(response) == [f"Credit note of $45.00 on {invoice.number} approved."]
    note.refresh_from_db()
    assert (note.status, note.decided_by, note.decision_note) == (
        "approved",
        finance,
        "Refunded to the card",
    )
    # Decided: its page says so.
    body = client.get(url).content.decode()
    assert "This credit note was already approved on 10 Feb 2026" in body
    assert forms_posting(body) == []


def test_k3_rejecting_a_credit_note_needs_a_reason(db, client, support, finance, invoice):
    note = services.request_credit_note(
        invoice, by=support, amount="45.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_decide", args=[note.pk, "reject"])
    client.post(url, as_shown(client, url, {"reason": ""}))
    assert CreditNote.objects.get().status == "requested"
    client.post(url, as_shown(client, url, {"reason": "Covered by the SLA credit already"}))
    assert CreditNote.objects.get().status == "rejected"


def test_k3_a_rejected_credit_note_says_rejected(db, client, support, finance, invoice):
    note = services.request_credit_note(
        invoice, by=support, amount="12.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_decide", args=[note.pk, "reject"])
    response = client.post(url, as_shown(client, url, {"reason": "No basis"}), follow=True)
    assert f"Credit note of $12.00 on {invoice.number} rejected." in messages_of(response)


@pytest.mark.parametrize(
    "url_name", ["admin:billing_creditnote_decide", "admin:billing_taxexemption_decide"]
)
def test_r5_a_mistyped_decision_is_not_found_and_a_role_without_it_is_refused(
    db, client, support, finance, invoice, url_name
):
    """A decision the page does not know is a 404 for finance (it said "Your role does not
    include this page"); a role without the permission still gets 403, whatever the URL."""
    note = services.request_credit_note(
        invoice, by=support, amount="12.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    assert client.get(reverse(url_name, args=[note.pk, "approve_and_apply"])).status_code == 404
    client.force_login(support)
    assert client.get(reverse(url_name, args=[note.pk, "approve_and_apply"])).status_code == 403


def test_k3_support_cannot_decide_a_credit_note(db, client, support, invoice):
    note = services.request_credit_note(
        invoice, by=support, amount="45.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(support)
    url = reverse("admin:billing_creditnote_decide", args=[note.pk, "approve"])
    assert client.post(url).status_code == 403
    page = client.get(reverse("admin:billing_creditnote_change", args=[note.pk]))
    assert url not in page.content.decode()


def test_k3_the_request_form_shows_pending_requests_and_refuses_in_dollars_and_cents(
    db, client, support, finance, invoice
):
    first = services.request_credit_note(
        invoice, by=support, amount="100.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(first, by=finance, approve=True, as_of=date(2026, 2, 3))
    services.request_credit_note(
        invoice, by=support, amount="15.00", reason="Late fix", as_of=date(2026, 2, 4)
    )
    client.force_login(support)
    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
    body = client.get(url).content.decode()
    assert ("Requested, waiting for finance", "$15.00") in figures(body)
    # The same status reads the same on every page: "Requested", as in the credit-note list.
    assert "Late fix" in body and '<span class="badge waiting">Requested</span>' in body
    assert "Waiting for finance" not in body
    # Over the $20.00 left, with $15.00 of it waiting: the refusal names the $5.00 that fits.
    response = client.post(url, as_shown(client, url, {"amount": "20.01", "reason": "More"}))
    assert messages_of(response) == [
        f"A credit note on {invoice.number} can be at most $5.00 now: $15.00 of what is left "
        "unrefunded is requested already and waiting for finance. Not $20.01."
    ]
    assert CreditNote.objects.count() == 2


def test_k3_a_fully_refunded_invoice_offers_no_request(db, client, support, finance, invoice):
    note = services.request_credit_note(
        invoice, by=support, amount="120.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    client.force_login(support)
    body = client.get(reverse("admin:billing_invoice_credit_note", args=[invoice.pk]))
    body = body.content.decode()
    assert f"{invoice.number} is refunded in full ($120.00)." in body
    assert forms_posting(body) == []


def test_k3_an_invoice_of_nothing_offers_no_request(db, client, support, coupon_adjustments):
    """K3 (walk 9): January billed 120.00 less 100 % off is a 0.00 invoice (M1: issued even
    so). Its request page said "is refunded in full ($0.00)", though nothing was ever refunded:
    it says there is nothing to refund, and offers no form."""
    from coupons.services import redeem_coupon
    from tests.coupons.factories import coupon

    ws = workspace(as_of=date(2026, 1, 1), card=True, name="Acme")
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 1, 1))
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    free = coupon(percent_off="100", duration="once")
    redeem_coupon(ws, free.code, by=support, as_of=date(2026, 1, 2), reason="Goodwill")
    services.run_billing(as_of=date(2026, 2, 1))
    nothing = Invoice.objects.get(workspace=ws)
    assert nothing.total == 0
    client.force_login(support)
    body = client.get(reverse("admin:billing_invoice_credit_note", args=[nothing.pk]))
    body = body.content.decode()
    assert f"{nothing.number} came to $0.00: there is nothing to refund." in body
    assert "refunded in full" not in body and forms_posting(body) == []


def test_i3_voiding_a_void_invoice_says_so(db, client, finance, invoice):
    services.void_invoice(invoice, by=finance, reason="Duplicate", as_of=date(2026, 2, 2))
    client.force_login(finance)
    url = reverse("admin:billing_invoice_void", args=[invoice.pk])
    body = client.get(url).content.decode()
    assert f"{invoice.number} is already void (since 2 Feb 2026): Duplicate" in body
    assert forms_posting(body) == []
    assert client.post(url, {"reason": "again"}).status_code == 200
    invoice.refresh_from_db()
    assert invoice.void_reason == "Duplicate"
    # And the invoice page offers neither a void nor a credit note.
    page = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk])).content
    assert url.encode() not in page
    assert reverse("admin:billing_invoice_credit_note", args=[invoice.pk]).encode() not in page


def test_i3_k3_the_void_page_of_a_refunded_invoice_says_why_before_a_reason_is_typed(
    db, client, support, finance, invoice
):
    """$120.00 with a $10.00 request waiting, then approved: the void page used to take a
    reason and then refuse. It now says why at once and offers no form; nothing is voided.
    It names the $110.00 left to refund; refunded in full, it said to request a credit note
    "for what is left" when nothing was."""
    note = services.request_credit_note(
        invoice, by=support, amount="10.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    url = reverse("admin:billing_invoice_void", args=[invoice.pk])
    body = client.get(url).content.decode()
    assert (
        f"{invoice.number} cannot be voided while a credit note on it waits for a decision: "
        "decide it first." in body
    )
    assert forms_posting(body) == []
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    body = client.get(url).content.decode()
    assert (
        f"{invoice.number} cannot be voided: $10.00 of it was refunded already (approved credit "
        "notes). Request a credit note for what is left ($110.00) instead." in body
    )
    assert "This cannot be undone" not in body  # what a void would do, when none can be done
    assert forms_posting(body) == []
    client.post(url, {"reason": "Wrong plan"})
    invoice.refresh_from_db()
    assert invoice.status != "void"
    # Refunded in full, it no longer sends finance to ask for a credit note of $0.00.
    rest = services.request_credit_note(
        invoice, by=support, amount="110.00", reason="Outage", as_of=date(2026, 2, 3)
    )
    services.decide_credit_note(rest, by=finance, approve=True, as_of=date(2026, 2, 3))
    body = client.get(url).content.decode()
    assert (
        f"{invoice.number} cannot be voided: $120.00 of it was refunded already (approved "
        "credit notes). Nothing is left to refund." in body
    )


def test_f5_unlocking_an_unlocked_workspace_says_so(db, client, support):
    ws = workspace(name="Calm Co")
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "unlock"])
    body = client.get(url).content.decode()
    assert "Calm Co is not locked: there is nothing to unlock." in body
    assert forms_posting(body) == []


# --- Readable lists ---------------------------------------------------------------------------


def test_lists_show_money_months_rates_and_labels(db, client, finance, invoice):
    client.force_login(finance)
    body = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    assert '<td class="field-total_display">$120.00</td>' in body
    assert '<td class="field-period_in_list">January 2026</td>' in body
    assert '<td class="field-issued">1 Feb 2026</td>' in body
    assert '<span class="badge waiting">Issued</span>' in body
    rates = client.get(reverse("admin:billing_taxrate_changelist") + "?q=CA").content.decode()
    assert "7.25 %" in rates
    plans = client.get(reverse("admin:billing_plan_changelist")).content.decode()
    assert "$1,440.00" in plans and "10,000" in plans
    usage = client.get(reverse("admin:billing_usage_changelist")).content.decode()
    assert "Dec." not in usage


def test_the_history_names_each_change_by_its_label(db, client, support):
    ws = workspace(name="Acme")
    services.add_payment_method(ws, as_of=date(2026, 1, 2), last4="4242")
    client.force_login(support)
    body = client.get(reverse("admin:billing_workspace_history", args=[ws.pk])).content.decode()
    assert "<strong>Payment method added on:</strong> — → 2 Jan 2026" in body
    assert "payment_method_added_on" not in body
    assert "Historical" not in body


def test_an_outbound_email_shows_its_kind_as_a_label(db, client, finance):
    from billing.emails import queue_email

    ws = workspace(name="Acme")
    queue_email(
        kind="unlocked",
        object_key="test:1",
        to="a@example.com",
        template="unlocked",
        context={"workspace": ws},
    )
    client.force_login(finance)
    body = client.get(reverse("admin:billing_outboundemail_changelist")).content.decode()
    assert "Workspace unlocked" in body


def test_an_email_page_names_its_kind_as_the_list_does(db, client, finance):
    """The outbox list said "Startup application rejected"; the email's own page said
    "startup_application_rejected", the template's name."""
    from billing.models import OutboundEmail

    email = OutboundEmail.objects.create(
        kind="startup_application_rejected",
        object_key="application:1",
        to="ada@example.com",
        subject="Your application",
        body_text="Hello",
    )
    client.force_login(finance)
    body = client.get(reverse("admin:billing_outboundemail_change", args=[email.pk]))
    page = body.content.decode()
    assert '<div class="readonly">Startup application rejected</div>' in page
    assert "startup_application_rejected" not in page


def test_w1_an_email_page_links_the_workspace_and_final_invoice_it_is_about(db, client, support):
    """W1 (the third walk): a closure's confirmation showed its key, "closure:1", and no way
    to the workspace or the final invoice its text quotes. It links both; a key of the apps
    above (an application) is shown as it is."""
    from billing.models import OutboundEmail
    from tests.coupons.factories import paid_monthly

    ws = paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    closure = services.close_workspace(
        ws, by=support, reason="Asked to delete", as_of=date(2026, 1, 25)
    )
    final = closure.final_invoice
    email = OutboundEmail.objects.get(kind="workspace_closed")
    client.force_login(support)
    page = client.get(reverse("admin:billing_outboundemail_change", args=[email.pk]))
    page = page.content.decode()
    workspace_url = reverse("admin:billing_workspace_change", args=[ws.pk])
    invoice_url = reverse("admin:billing_invoice_change", args=[final.pk])
    assert (
        f'<div class="readonly"><a href="{workspace_url}">Acme</a>, '
        f'<a href="{invoice_url}">{final.number}</a></div>'
    ) in page
    other = OutboundEmail.objects.create(
        kind="startup_application_rejected", object_key="application:1", to="a@example.com"
    )
    page = client.get(reverse("admin:billing_outboundemail_change", args=[other.pk]))
    assert '<div class="readonly">application:1</div>' in page.content.decode()


def test_a_forbidden_page_is_the_back_office_s_own_403(db, client, reviewer, invoice):
    client.force_login(reviewer)
    response = client.get(reverse("finance:invoice-document", args=[invoice.pk]))
    assert response.status_code == 403
    body = response.content.decode()
    assert "You may not open this page" in body
    assert 'href="/admin/"' in body and "Billing back office" in body
    assert "Nothing was changed." in body


def test_k3_the_same_request_posted_twice_files_one(db, client, support, finance, invoice):
    """K3: support's request for 50.00 on January's 120.00 posted twice (a double click, a
    browser resubmitting) filed two; finance saw 100.00 waiting and could approve both, both
    fitting the 120.00 left: twice the refund asked for. The second is now refused: a double
    click by the page's digest (its figures changed), the same request from the page as it is
    now by the service, saying the first waits; another request (another amount or reason)
    still goes in."""
    client.force_login(support)
    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
    form = as_shown(client, url, {"amount": "50.00", "reason": "Outage on 12 January, ticket 31"})
    client.post(url, form)
    # The double click: the page's figures (50.00 waiting now) are not the ones it showed.
    again = client.post(url, form)
    assert f"{invoice.number} changed since this page was opened" in messages_of(again)[-1]
    assert CreditNote.objects.count() == 1
    # The same request from the page as it is now: the service refuses it.
    response = client.post(url, as_shown(client, url, form))
    assert messages_of(response)[-1:] == [
        f"This credit note ($50.00 on {invoice.number}, for the same reason) was requested on "
        "10 Feb 2026 already and is waiting for finance."
    ]
    client.post(
        url, as_shown(client, url, {"amount": "10.00", "reason": "Second outage, ticket 40"})
    )
    assert sorted(CreditNote.objects.values_list("amount", flat=True)) == [10, 50]


def test_k3_a_request_sent_again_after_finance_approved_it_files_nothing(
    db, client, support, finance, invoice
):
    """K3: support requests 10.00 on January's 120.00; finance approves it; support's browser
    sends the page again (back, resubmit). It filed a second 10.00 request, finance approved
    it too: 20.00 refunded for one ask. The page showed nothing refunded and nothing waiting:
    sent with that page's figures, it files nothing now and shows the page as it is."""
    client.force_login(support)
    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
    form = as_shown(client, url, {"amount": "10.00", "reason": "Outage on 12 January"})
    client.post(url, form)
    note = CreditNote.objects.get()
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 10))
    response = client.post(url, form)
    assert "changed since this page was opened" in messages_of(response)[-1]
    assert CreditNote.objects.count() == 1
    assert "$10.00" in response.content.decode()  # the page as it is now: 10.00 refunded


def test_x1_x4_the_approve_page_says_when_the_certificate_is_for_another_state(db, client, finance):
    """X1, X4: a workspace may hold a certificate for a state other than its own, and such a
    certificate waives none of its tax. The approve page of Acme's HI certificate (Acme is
    located in CA) said "From today, invoices of Acme for HI carry no sales tax", as if it
    would; its summary read "submitted (submitted 2026-02-01)"."""
    ws = workspace(name="Acme", business_country="US", business_region="CA")
    cert = services.submit_exemption(
        ws,
        region="HI",
        reason="resale",
        document=ContentFile(certificate_pdf("HI exemption"), name="c.pdf"),
        valid_from=date(2026, 1, 1),
        as_of=date(2026, 2, 1),
    )
    client.force_login(finance)
    asked = html.unescape(client.get(decide_url(cert, "approve")).content.decode())
    assert "carry no sales tax" not in asked
    assert (
        "Acme is taxed where its business is located: this certificate covers HI, not CA, so "
        "approving it waives the tax of none of Acme's invoices while it stays there."
    ) in asked
    assert "HI sales tax, resale; valid from 1 Jan 2026, no end date; submitted 1 Feb 2026." in (
        asked
    )
    # The same state: the page says the tax is waived.
    texas = certificate()
    assert "From today, invoices of Harbor Food Bank for TX carry no sales tax" in (
        client.get(decide_url(texas, "approve")).content.decode()
    )


def test_r4_history_says_each_change_as_people_read_it(db, client, support, finance, invoice):
    """R4: the credit note's history read "Decided by: Deleted user (pk=None) → finance",
    "Decided on: None → 2026-02-03" and "Status: requested → approved" (stored values), and a
    change made by no one signed in (the clock, a task) was "Changed by: None". Each value is
    shown as on the note's page; nothing becomes "—"."""
    note = services.request_credit_note(
        invoice, by=support, amount="45.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_history", args=[note.pk])
    changes = html.unescape(client.get(url).content.decode())
    changes = " ".join(re.sub(r"<[^>]+>", "", changes).split())
    for shown in (
        "Decided by: — → finance",
        "Decided on: — → 3 Feb 2026",
        "Status: Requested → Approved",
    ):
        assert shown in changes, shown
    for raw in ("pk=None", "None →", "requested →"):
        assert raw not in changes, raw
    version = note.history.order_by("history_id").first()
    page = client.get(
        reverse("admin:billing_creditnote_simple_history", args=[note.pk, version.history_id])
    ).content.decode()
    assert "None" not in page.split('id="content"')[1]

    ws = invoice.workspace  # the clock issued its invoice: no one signed in changed it
    clock = client.get(reverse("admin:billing_invoice_history", args=[invoice.pk]))
    body = clock.content.decode().split('id="content"')[1]
    assert ">None<" not in body.replace(" ", "").replace("\n", ""), ws


def test_f6_k1_record_pages_are_titled_in_words(db, client, support):
    """F6, K1: a lock change's page was titled "acme: locked → unlocked on 2026-02-10" and a
    subscription's "acme: team/monthly from 2026-01-01" (stored codes); an email's, by its
    kind's code. Each says it in the words of its page."""
    from billing.emails import queue_email
    from billing.models import LockEvent, OutboundEmail, Subscription

    ws = workspace(name="Acme", slug="acme", as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    queue_email(
        kind="unlocked",
        object_key="test:1",
        to="a@example.com",
        template="unlocked",
        context={"workspace": ws},
    )
    event = LockEvent.objects.create(
        workspace=ws, on=date(2026, 2, 10), from_lock="locked", to_lock="unlocked", cause="manual"
    )
    subscription = Subscription.objects.get(workspace=ws, plan__code="team")
    email = OutboundEmail.objects.get()
    client.force_login(support)
    for obj, title in (
        (event, "Acme: Locked (data still flows) → Unlocked on 10 Feb 2026"),
        (subscription, "Acme: Team, billed monthly, from 1 Jan 2026"),
        (email, f"“{email.subject}” to a@example.com (pending)"),
    ):
        opts = obj._meta
        page = client.get(reverse(f"admin:billing_{opts.model_name}_change", args=[obj.pk]))
        assert f"<h2>{html.escape(title, quote=False)}</h2>" in page.content.decode(), title


def test_r4_a_change_kept_without_a_reason_reads_a_dash_in_the_history_list(db, client, support):
    """R4: a subscription the service started (no reason given) and a workspace without a card
    showed "None" in the history list's "Change reason" column and its "Payment method added
    on" column. Nothing reads "None"."""
    from billing.models import Subscription

    ws = workspace(as_of=date(2026, 1, 1), name="Calm Co")
    client.force_login(support)
    subscription = Subscription.objects.get(workspace=ws)
    for url in (
        reverse("admin:billing_subscription_history", args=[subscription.pk]),
        reverse("admin:billing_workspace_history", args=[ws.pk]),
    ):
        body = client.get(url).content.decode().split('id="content"')[1]
        assert ">None<" not in body.replace(" ", "").replace("\n", ""), url


# --- Decision queues: the longest waiting first (R3) -------------------------------------------


def listed(client, url):
    """The rows of a changelist in the order shown, as their primary keys."""
    return [row.pk for row in client.get(url).context["cl"].result_list]


def test_x4_r3_the_certificate_list_puts_the_longest_waiting_first(db, client, finance):
    """Submitted 1, 2, 4 and 3 Feb; the first approved on 8 Feb, the second rejected on
    9 Feb, the fourth in review since 5 Feb: in review (3 Feb) and submitted (4 Feb) first,
    then rejected (9 Feb), approved (8 Feb)."""

    def submitted(on):
        ws = workspace(name=f"Food bank {on:%d}", business_country="US", business_region="TX")
        return services.submit_exemption(
            ws,
            region="TX",
            reason="nonprofit",
            document=ContentFile(certificate_pdf("TX exemption"), name="c.pdf"),
            valid_from=date(2026, 1, 1),
            as_of=on,
        )

    approved, rejected, waiting, in_review = (submitted(date(2026, 2, d)) for d in (1, 2, 4, 3))
    services.approve_exemption(approved, by=finance, as_of=date(2026, 2, 8))
    services.reject_exemption(rejected, by=finance, reason="Unsigned", as_of=date(2026, 2, 9))
    services.start_exemption_review(in_review, by=finance, as_of=date(2026, 2, 5))
    client.force_login(finance)
    url = reverse("admin:billing_taxexemption_changelist")
    assert listed(client, url) == [in_review.pk, waiting.pk, rejected.pk, approved.pk]
    # A column clicked orders by it: submitted, the latest first.
    assert listed(client, f"{url}?o=-6") == [waiting.pk, in_review.pk, rejected.pk, approved.pk]


def test_k3_r3_the_credit_note_list_puts_the_longest_waiting_first(
    db, client, support, finance, invoice
):
    """Requested 2 Feb (approved 5 Feb), 3 Feb (rejected 7 Feb), 4 Feb and 2 Feb (waiting):
    the two waiting, 2 Feb's first, then the rejection, then the approval."""

    def requested(on, reason):
        return services.request_credit_note(
            invoice, by=support, amount="10.00", reason=reason, as_of=on
        )

    approved, rejected, later, earlier = (
        requested(date(2026, 2, d), f"Outage {n}") for n, d in enumerate((2, 3, 4, 2))
    )
    services.decide_credit_note(approved, by=finance, approve=True, as_of=date(2026, 2, 5))
    services.decide_credit_note(
        rejected, by=finance, approve=False, note_text="Not owed", as_of=date(2026, 2, 7)
    )
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_changelist")
    assert listed(client, url) == [earlier.pk, later.pk, rejected.pk, approved.pk]


def test_c6_r3_the_non_profit_proof_list_puts_the_longest_waiting_first(db, client, support):
    """Submitted 1 Feb (approved 3 Feb), 2 Feb and 1 Feb (waiting): waiting, 1 Feb's
    first, then the approved one."""
    from coupons import services as coupons

    def submitted(on):
        return coupons.submit_nonprofit_proof(
            workspace(), document=ContentFile(PNG, name="p.png"), by=support, as_of=on
        )

    approved, later, earlier = (submitted(date(2026, 2, d)) for d in (1, 2, 1))
    coupons.approve_nonprofit_proof(approved, by=support, as_of=date(2026, 2, 3))
    client.force_login(support)
    url = reverse("admin:coupons_nonprofitproof_changelist")
    assert listed(client, url) == [earlier.pk, later.pk, approved.pk]
