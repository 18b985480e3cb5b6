"""X4, X5: exemption certificates — upload checked by content, review by finance, and the
tax decision at issue time with a note that says why tax was charged or waived (the plans and
billing FAQ: "still in review while the invoice was issued", "covers a different state")."""

from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services
from billing.demo import certificate_pdf
from billing.errors import BillingError
from billing.models import Invoice, TaxExemption, TaxRate, Workspace
from billing.roles import SUPPORT
from billing.tax import TaxTable
from tests.admin_pages import action, as_shown, messages_of

from . import factories
from .factories import certificate, workspace

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.MEDIA_ROOT


def pdf(name="certificate.pdf"):
    return ContentFile(certificate_pdf("Exemption certificate"), name=name)


def paid_monthly(as_of, region, **kwargs):
    return factories.paid_monthly(as_of, business_region=region, **kwargs)


def invoice_on(ws, day):
    return Invoice.objects.get(workspace=ws, issue_date=day)


# --- X4: the tax decision at issue time ---------------------------------------------------------


def test_x4_approved_certificate_for_the_invoice_state_waives_the_tax_with_a_note(db, finance):
    ws = paid_monthly(date(2026, 1, 1), "CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 20))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert (invoice.tax, invoice.total, invoice.tax_rate) == (D("0.00"), D("120.00"), D("0.000"))
    assert invoice.tax_note == f"exempt: certificate #{cert.pk} (nonprofit)"
    assert not invoice.lines.filter(kind="tax").exists()


def test_x4_an_exempt_invoice_reads_exempt_not_a_rate_of_0(db, client, finance):
    """Its document, its admin page and the finance list said "Tax rate 0 %", which reads as
    a state without sales tax, not a waiver."""
    ws = paid_monthly(date(2026, 1, 1), "CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 20))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    client.force_login(finance)
    for url in (
        reverse("finance:invoice-document", args=[invoice.pk]),
        reverse("admin:billing_invoice_change", args=[invoice.pk]),
        reverse("finance:invoices"),
    ):
        body = client.get(url).content.decode()
        assert "exempt</" in body and "0 %" not in body, url


def test_x4_certificate_in_review_at_issue_time_is_taxed_with_a_note(db, finance):
    """FAQ: "The exemption certificate was still in review while the invoice was issued"."""
    ws = paid_monthly(date(2026, 1, 1), "CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 10))
    services.start_exemption_review(cert, by=finance, as_of=date(2026, 1, 15))
    # Approved on February 2nd; January's close runs late, on the 3rd: its invoice is dated
    # February 1st, when the certificate was still in review, so tax is charged.
    services.approve_exemption(cert, by=finance, as_of=date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 3, 1))
    january = invoice_on(ws, date(2026, 2, 1))
    assert (january.tax, january.total) == (D("8.70"), D("128.70"))
    assert january.tax_note == f"certificate #{cert.pk} still in review on 1 Feb 2026"
    february = invoice_on(ws, date(2026, 3, 1))
    assert (february.tax, february.tax_note) == (
        D("0.00"),
        f"exempt: certificate #{cert.pk} (nonprofit)",
    )


def test_x4_submitted_certificate_not_yet_reviewed_is_taxed_with_a_note(db):
    ws = paid_monthly(date(2026, 1, 1), "NY")
    cert = certificate(ws, "NY", on=date(2026, 1, 28))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert invoice.tax == D("4.80")
    assert invoice.tax_note == f"certificate #{cert.pk} still in review on 1 Feb 2026"


def test_x4_certificate_for_another_state_is_taxed_with_a_note(db, finance):
    """FAQ: "The exemption certificate covers a state that is different" from the business's."""
    ws = paid_monthly(date(2026, 1, 1), "VT")
    cert = certificate(ws, "NH", on=date(2026, 1, 5), reason="resale")
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 6))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert (invoice.tax, invoice.tax_region) == (D("7.20"), "VT")  # 6 % of 120.00
    assert invoice.tax_note == f"certificate #{cert.pk} covers NH, not VT"


def test_x4_a_workspace_may_hold_certificates_for_other_states_too(db, finance):
    ws = paid_monthly(date(2026, 1, 1), "TX")
    other = certificate(ws, "NH", on=date(2026, 1, 2))
    own = certificate(ws, "TX", on=date(2026, 1, 3))
    for cert in (other, own):
        services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 4))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert (invoice.tax, invoice.tax_note) == (
        D("0.00"),
        f"exempt: certificate #{own.pk} (nonprofit)",
    )


def test_x4_approved_on_the_issue_date_waives_and_a_day_later_does_not(db, finance):
    on_time = paid_monthly(date(2026, 1, 1), "CA")
    late = paid_monthly(date(2026, 1, 1), "CA")
    services.approve_exemption(
        certificate(on_time, "CA", on=date(2026, 1, 20)), by=finance, as_of=date(2026, 2, 1)
    )
    late_cert = certificate(late, "CA", on=date(2026, 1, 20))
    services.approve_exemption(late_cert, by=finance, as_of=date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 2, 5))
    assert invoice_on(on_time, date(2026, 2, 1)).tax == D("0.00")
    late_invoice = invoice_on(late, date(2026, 2, 1))
    assert late_invoice.tax == D("8.70")
    assert late_invoice.tax_note == f"certificate #{late_cert.pk} still in review on 1 Feb 2026"


@pytest.mark.parametrize(
    "valid_from, valid_to, waived",
    [
        (date(2026, 2, 1), None, True),  # first day included
        (date(2025, 2, 1), date(2026, 2, 1), True),  # last day included
        (date(2025, 2, 1), date(2026, 1, 31), False),  # ended the day before
        (date(2026, 2, 2), None, False),  # starts the day after
    ],
)
def test_x4_validity_runs_from_its_first_day_through_its_last(
    db, finance, valid_from, valid_to, waived
):
    ws = paid_monthly(date(2026, 1, 1), "CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5), valid_from=valid_from, valid_to=valid_to)
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 6))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert (invoice.tax == 0) is waived
    if not waived:

        def written(d):  # as invoices write a day
            return f"{d.day} {d:%b %Y}"

        validity = (
            f"valid {written(valid_from)} to {written(valid_to)}"
            if valid_to
            else f"valid from {written(valid_from)}"
        )
        assert invoice.tax_note == f"certificate #{cert.pk} {validity}, not on 1 Feb 2026"


def test_x4_rejected_certificate_does_not_waive(db, finance):
    ws = paid_monthly(date(2026, 1, 1), "CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    services.reject_exemption(cert, by=finance, reason="Unsigned", as_of=date(2026, 1, 9))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert invoice.tax == D("8.70")
    assert invoice.tax_note == f"certificate #{cert.pk} rejected on 9 Jan 2026"


def test_x4_a_certificate_submitted_after_the_issue_date_is_not_mentioned(db):
    ws = paid_monthly(date(2026, 1, 1), "CA")
    certificate(ws, "CA", on=date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 2, 3))
    assert invoice_on(ws, date(2026, 2, 1)).tax_note == ""


def test_x4_no_rate_no_note_a_certificate_has_nothing_to_waive(db, finance):
    ws = paid_monthly(date(2026, 1, 1), "NH")  # no sales tax in New Hampshire
    services.approve_exemption(
        certificate(ws, "NH", on=date(2026, 1, 2)), by=finance, as_of=date(2026, 1, 3)
    )
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = invoice_on(ws, date(2026, 2, 1))
    assert (invoice.tax, invoice.tax_rate, invoice.tax_note) == (D("0.00"), None, "")


def test_x4_preview_shows_the_decision_too(db, client, finance, support, reviewer, pin_today):
    """The workspace page's preview shows the note too: after an approval its tax line went
    with no word of the certificate the invoice will name (walk 5). Not to reviewers, who may
    not read certificates (R2; an attacker's walk)."""
    ws = paid_monthly(date(2026, 1, 1), "CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    preview = services.preview_invoice(ws, month=date(2026, 1, 1), as_of=date(2026, 1, 10))
    assert preview.tax_note == f"certificate #{cert.pk} still in review on 1 Feb 2026"
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 10))
    pin_today(date(2026, 1, 10))
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert f"Tax: exempt: certificate #{cert.pk} (nonprofit) (X4)." in page
    client.force_login(reviewer)
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert "Preview: this month" in page and f"certificate #{cert.pk}" not in page


def test_x4_exemptions_are_loaded_once_per_tax_table_not_per_invoice(db, finance):
    workspaces = []
    for n in range(12):
        ws = workspace(business_country="US", business_region="CA")
        services.approve_exemption(
            certificate(ws, "CA" if n % 2 else "NV", on=date(2026, 1, 2)),
            by=finance,
            as_of=date(2026, 1, 3),
        )
        workspaces.append(Workspace.objects.get(pk=ws.pk))
    with CaptureQueriesContext(connection) as queries:
        table = TaxTable()
        decisions = [table.decide(ws, date(2026, 2, 1)) for ws in workspaces]
    assert len(queries) == 2  # the rates, then the certificates
    assert sum(d.exempt for d in decisions) == 6


# --- X4: review ---------------------------------------------------------------------------------


def test_x4_review_submitted_then_in_review_then_approved(db, finance):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "ca", on=date(2026, 1, 5))
    assert (cert.status, cert.region, cert.submitted_on) == ("submitted", "CA", date(2026, 1, 5))
    cert = services.start_exemption_review(cert, by=finance, as_of=date(2026, 1, 6))
    assert (cert.status, cert.review_started_on) == ("in_review", date(2026, 1, 6))
    with pytest.raises(BillingError, match="already in review"):
        services.start_exemption_review(cert, by=finance, as_of=date(2026, 1, 7))
    cert = services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 8))
    assert (cert.status, cert.decided_on, cert.reviewed_by) == (
        "approved",
        date(2026, 1, 8),
        finance,
    )


def test_x4_a_decision_may_come_straight_from_submitted(db, finance):
    ws = workspace(business_country="US", business_region="CA")
    approved = services.approve_exemption(
        certificate(ws, "CA", on=date(2026, 1, 5)), by=finance, as_of=date(2026, 1, 5)
    )
    rejected = services.reject_exemption(
        certificate(ws, "TX", on=date(2026, 1, 5)),
        by=finance,
        reason="Expired form",
        as_of=date(2026, 1, 6),
    )
    assert (approved.status, approved.review_started_on) == ("approved", None)
    assert (rejected.status, rejected.rejection_reason) == ("rejected", "Expired form")


def test_x4_a_decided_certificate_cannot_be_decided_again(db, finance):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 6))
    for decide in (
        lambda: services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 7)),
        lambda: services.reject_exemption(cert, by=finance, reason="x", as_of=date(2026, 1, 7)),
        lambda: services.start_exemption_review(cert, by=finance, as_of=date(2026, 1, 7)),
    ):
        with pytest.raises(BillingError, match="already approved on 6 Jan 2026"):
            decide()
    cert.refresh_from_db()
    assert (cert.status, cert.decided_on) == ("approved", date(2026, 1, 6))


def test_x4_rejection_needs_a_reason_and_no_decision_before_submission(db, finance):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    with pytest.raises(BillingError, match="Say why"):
        services.reject_exemption(cert, by=finance, reason="  ", as_of=date(2026, 1, 6))
    with pytest.raises(BillingError) as refused:
        services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 4))
    # Both days are facts (the submission, the day of the decision), written as days.
    assert str(refused.value) == (
        f"A review dated 4 Jan 2026 is before certificate #{cert.pk} was submitted (5 Jan 2026)."
    )
    cert.refresh_from_db()
    assert cert.status == "submitted"


def test_x4_every_change_is_kept_with_who_and_why(db, support, finance):
    """R4: a certificate's history says who, when and why."""
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(
        ws, "CA", on=date(2026, 1, 5), valid_from=date(2026, 1, 1), reason="government", by=support
    )
    services.start_exemption_review(cert, by=finance, as_of=date(2026, 1, 6))
    services.reject_exemption(cert, by=finance, reason="Wrong entity name", as_of=date(2026, 1, 7))
    history = [
        (h.status, h.history_user, h.history_change_reason)
        for h in cert.history.order_by("history_date", "history_id")
    ]
    assert history == [
        ("submitted", support, "Submitted for CA (government)"),
        ("in_review", finance, "Review started"),
        ("rejected", finance, "Rejected: Wrong entity name"),
    ]


# --- X5: the document -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, content_type, extension",
    [
        (certificate_pdf("x"), "application/pdf", ".pdf"),
        (PNG, "image/png", ".png"),
        (JPEG, "image/jpeg", ".jpg"),
    ],
)
def test_x5_pdf_png_and_jpeg_are_accepted_by_content_and_stored_privately(
    db, private_media, content, content_type, extension
):
    ws = workspace(business_country="US", business_region="CA")
    document = ContentFile(content, name="My Scan (final).bin")
    cert = certificate(
        ws, "CA", on=date(2026, 1, 5), valid_from=date(2026, 1, 1), document=document
    )
    stored = Path(cert.document.path)
    assert cert.content_type == content_type
    assert stored.read_bytes() == content
    assert stored.is_relative_to(private_media)
    assert not stored.is_relative_to(settings.STATIC_ROOT)
    # A random name: nothing of the uploader's file name reaches the disk.
    assert "Scan" not in cert.document.name and stored.suffix == extension
    assert len(stored.stem) == 32


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("certificate.pdf", HTML, "must be a PDF, PNG or JPEG"),  # HTML renamed .pdf
        ("certificate.pdf", b"", "empty"),
        ("huge.pdf", b"%PDF-" + bytes(10 * 1024 * 1024), "at most 10 MB"),
        ("certificate.png", b"GIF89a" + bytes(20), "must be a PDF, PNG or JPEG"),
    ],
    ids=["html-renamed-pdf", "empty", "over-10-mb", "gif"],
)
def test_x5_other_uploads_are_refused_and_nothing_is_stored(
    db, private_media, name, content, message
):
    ws = workspace(business_country="US", business_region="CA")
    with pytest.raises(BillingError, match=message):
        certificate(ws, "CA", on=date(2026, 1, 5), document=ContentFile(content, name=name))
    assert not TaxExemption.objects.exists()
    assert not any(private_media.rglob("*.*")) if private_media.exists() else True


def test_x5_exactly_10_mb_is_accepted(db):
    ws = workspace(business_country="US", business_region="CA")
    content = b"%PDF-" + bytes(10 * 1024 * 1024 - 5)
    cert = certificate(ws, "CA", on=date(2026, 1, 5), document=ContentFile(content, name="big.pdf"))
    assert cert.document.size == 10 * 1024 * 1024


def test_x4_submission_names_every_problem(db):
    ws = workspace(business_country="US", business_region="CA")
    with pytest.raises(BillingError) as refused:
        certificate(
            ws,
            "ZZ",
            on=date(2026, 1, 5),
            valid_from=date(2026, 3, 1),
            valid_to=date(2026, 2, 1),
            reason="charity",
        )
    message = str(refused.value)
    assert "“ZZ” is not a US state code" in message
    assert "“charity” is not an exemption reason" in message
    assert "cannot end (1 Feb 2026) before it starts (1 Mar 2026)" in message


# --- X5: the download ---------------------------------------------------------------------------


@pytest.fixture
def non_staff(db):
    user = User.objects.create_user(username="outsider", password="pass-for-tests")
    user.groups.add(Group.objects.get(name=SUPPORT))
    return user


@pytest.mark.parametrize(
    "who, expected",
    [
        ("support", 200),
        ("finance", 200),
        ("reviewer", 403),
        ("non_staff", 403),
        ("anonymous", "login"),
    ],
)
def test_x5_document_is_served_only_to_staff_with_the_permission(
    db, client, request, who, expected
):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    url = reverse("finance:certificate-document", args=[cert.pk])
    response = client.get(url)
    if expected == "login":
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    else:
        assert response.status_code == expected


def test_x5_document_is_an_attachment_the_browser_must_not_sniff(db, client, finance):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    response = client.get(reverse("finance:certificate-document", args=[cert.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="certificate-{cert.pk}.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == cert.document.open("rb").read()


# --- X4, X5 in the admin ------------------------------------------------------------------------


def add_in_the_admin(client, ws, document, region="CA"):
    """Support's upload through the admin's add form: a nonprofit certificate from 2026-01-01."""
    return client.post(
        reverse("admin:billing_taxexemption_add"),
        {
            "workspace": ws.pk,
            "region": region,
            "reason": "nonprofit",
            "document": document,
            "valid_from": "2026-01-01",
            "valid_to": "",
        },
    )


def test_x5_support_uploads_a_certificate_in_the_admin(db, client, support, today):
    ws = workspace(business_country="US", business_region="CA")
    client.force_login(support)
    # The form names the field as the list does ("State"; it read "Region").
    form = client.get(reverse("admin:billing_taxexemption_add")).context["adminform"].form
    assert form.fields["region"].label == "State"
    response = add_in_the_admin(client, ws, pdf("scan.pdf"), region="ca")
    assert response.status_code == 302, response.content.decode()[:2000]
    cert = TaxExemption.objects.get()
    assert (cert.workspace, cert.region, cert.status) == (ws, "CA", "submitted")
    assert cert.history.get().history_user == support
    # Support may not review it.
    response = client.post(
        reverse("admin:billing_taxexemption_changelist"), action("approve", cert)
    )
    cert.refresh_from_db()
    assert cert.status == "submitted"


def test_x5_a_document_with_a_long_file_name_is_taken(db, client, support):
    """A certificate named with 255 characters was refused ("Ensure this filename has at most
    200 characters (it has 255)"), though the upload's name is never kept: the file is stored
    under a random name (attacker's walk 8)."""
    ws = workspace(business_country="US", business_region="CA")
    client.force_login(support)

    response = add_in_the_admin(client, ws, pdf("c" * 251 + ".pdf"))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(TaxExemption.objects.get().document.name) < 100


def test_x5_the_admin_upload_refuses_html_renamed_pdf(db, client, support):
    ws = workspace(business_country="US", business_region="CA")
    client.force_login(support)
    response = add_in_the_admin(client, ws, ContentFile(HTML, name="certificate.pdf"))
    assert response.status_code == 200
    assert "must be a PDF, PNG or JPEG" in response.content.decode()
    assert not TaxExemption.objects.exists()


def test_x4_finance_reviews_and_approves_in_the_admin(db, client, finance, today):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    changelist = reverse("admin:billing_taxexemption_changelist")
    page = client.get(changelist).content.decode()
    assert reverse("finance:certificate-document", args=[cert.pk]) in page
    response = client.post(changelist, action("start_review", cert), follow=True)
    assert "1 certificate(s) taken into review." in messages_of(response)
    asked = client.post(changelist, action("approve", cert))
    assert "Yes, approve certificates" in asked.content.decode()
    response = client.post(changelist, action("approve", cert, confirm=True), follow=True)
    assert "1 certificate(s) approved." in messages_of(response)
    cert.refresh_from_db()
    assert (cert.status, cert.reviewed_by) == ("approved", finance)
    response = client.post(changelist, action("approve", cert, confirm=True), follow=True)
    assert any("a decision is final" in m for m in messages_of(response))


def test_x4_one_certificate_that_fails_does_not_stop_the_others_in_a_bulk_action(
    db, client, finance, today, monkeypatch, caplog
):
    """One bad row never stops the others: three certificates taken into review at once, the
    second hitting a deadlock, end as `in_review`, `submitted`, `in_review`; the page names
    the second as not done and counts two, and the log keeps the error. Before, the action
    stopped at the second with a server error: the first in review with no log entry, the
    third never tried."""
    certs = [
        certificate(workspace(business_country="US", business_region="CA"), "CA", on=day)
        for day in (date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7))
    ]
    start_review = services.start_exemption_review

    def deadlocked_on_the_second(cert, **kwargs):
        if cert.pk == certs[1].pk:
            raise OperationalError("deadlock detected")
        return start_review(cert, **kwargs)

    monkeypatch.setattr(services, "start_exemption_review", deadlocked_on_the_second)
    client.force_login(finance)
    changelist = reverse("admin:billing_taxexemption_changelist")
    response = client.post(changelist, action("start_review", *certs), follow=True)
    assert [TaxExemption.objects.get(pk=c.pk).status for c in certs] == [
        "in_review",
        "submitted",
        "in_review",
    ]
    assert messages_of(response) == [
        f"{certs[1]}: not done, an unexpected error; nothing of it was changed. Try it again; "
        "the error log says what went wrong.",
        "2 certificate(s) taken into review.",
    ]
    assert "deadlock detected" in caplog.text
    assert LogEntry.objects.filter(object_id__in=[certs[0].pk, certs[2].pk]).count() == 2


def test_x4_the_bulk_approval_warns_of_a_certificate_for_another_state(db, client, finance, today):
    """Walk 5: "Approve selected certificates…" approved #36 (NV, for a business in NY)
    without the warning its own approve page gives; the confirmation now lists it with it."""
    ny = workspace(name="Empire", business_country="US", business_region="NY")
    ca = workspace(name="Golden", business_country="US", business_region="CA")
    elsewhere = certificate(ny, "NV", on=date(2026, 1, 5))
    own = certificate(ca, "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    changelist = reverse("admin:billing_taxexemption_changelist")
    page = client.post(changelist, action("approve", elsewhere, own)).content.decode()
    assert (
        f"#{elsewhere.pk} Empire, NV (submitted): it covers NV, not NY, so it waives none of "
        "its invoices"
    ) in page
    assert f"#{own.pk} Golden, CA (submitted)<" in page


def test_x4_finance_rejects_with_a_reason_in_the_admin(db, client, finance, today):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    changelist = reverse("admin:billing_taxexemption_changelist")
    asked = client.post(changelist, action("reject", cert))
    assert asked.status_code == 200 and "Reject certificates" in asked.content.decode()
    cert.refresh_from_db()
    assert cert.status == "submitted"
    response = client.post(
        changelist,
        action("reject", cert, confirm=True, reason="Signed by someone else"),
        follow=True,
    )
    assert "1 certificate(s) rejected." in messages_of(response)
    cert.refresh_from_db()
    assert (cert.status, cert.rejection_reason) == ("rejected", "Signed by someone else")


def test_x5_certificate_page_is_read_only_and_links_to_the_download(db, client, finance):
    ws = workspace(business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    page = client.get(reverse("admin:billing_taxexemption_change", args=[cert.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert reverse("finance:certificate-document", args=[cert.pk]) in body
    assert 'name="region"' not in body  # nothing is edited by hand: review goes by the actions
    assert cert.document.name not in body  # the stored path is not shown


@pytest.mark.parametrize("who, expected", [("support", 200), ("finance", 200), ("reviewer", 403)])
def test_x5_certificate_admin_pages_by_role(db, client, request, who, expected):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("admin:billing_taxexemption_changelist"))
    assert response.status_code == expected


def test_x4_x2_d4_a_decision_dated_the_day_of_an_invoice_issued_already_is_refused(db, finance):
    """California 7.25 %; a certificate submitted on 5 February. On the 15th the workspace is
    cancelled first: its final invoice (14/28 × 120 = 60.00) is taxed 4.35, the certificate
    being in review. An approval or a new rate dated the 15th would, in the other order, have
    changed that invoice's tax; an issued invoice is never edited, so they are dated later."""
    from .factories import paid_monthly

    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    services.run_billing(as_of=date(2026, 2, 1))
    cert = certificate(ws, "CA", on=date(2026, 2, 5))
    day = date(2026, 2, 15)
    services.change_to_free(ws, as_of=day)
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.subtotal, final.tax) == (D("60.00"), D("4.35"))
    dated_later = f"invoice {final.number}, dated 15 Feb 2026, was issued already.*16 Feb 2026"
    with pytest.raises(
        BillingError, match=f"An approval dated 15 Feb 2026 is refused: {dated_later}"
    ):
        services.approve_exemption(cert, by=finance, as_of=day)
    with pytest.raises(
        BillingError, match=f"A tax rate dated 15 Feb 2026 is refused: {dated_later}"
    ):
        services.set_tax_rate("US", region="CA", rate="10", name="CA", valid_from=day)
    cert.refresh_from_db()
    assert cert.status != "approved" and not TaxRate.objects.filter(valid_from=day).exists()
    services.approve_exemption(cert, by=finance, as_of=date(2026, 2, 16))
    services.set_tax_rate("US", region="CA", rate="10", name="CA", valid_from=date(2026, 2, 16))
    services.set_tax_rate("US", region="NY", rate="4", name="NY", valid_from=day)  # elsewhere


def test_x4_d2_d4_a_submission_or_rejection_dated_before_an_issued_note_is_refused(db, finance):
    """California 7.25 %, clock through 1 January. Cancelled on 25 January, the final invoice
    (24/31 × 120 = 92.90, tax 6.74) notes nothing: no certificate yet. A certificate then
    submitted dated the 20th was taken, so the invoice lacked the "still in review" note the
    other order gives; likewise a rejection dated the 20th after the invoice noted "still in
    review" (the other order notes "rejected"). Both are dated after the invoice instead, and a
    submission is refused on a day the clock has processed (the daily clock's notes were
    written then)."""
    from .factories import paid_monthly

    ws, other = (paid_monthly(date(2026, 1, 1), business_region="CA") for _ in range(2))
    services.run_billing(as_of=date(2026, 1, 1))
    waiting = certificate(other, "CA", on=date(2026, 1, 5))
    for cancelled in (ws, other):
        services.change_to_free(cancelled, as_of=date(2026, 1, 25))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.subtotal, final.tax, final.tax_note) == (D("92.90"), D("6.74"), "")
    noted = Invoice.objects.get(workspace=other, kind="final")
    assert noted.tax_note == f"certificate #{waiting.pk} still in review on 25 Jan 2026"
    issued = "invoice {}, dated 25 Jan 2026, was issued already.*26 Jan 2026 or later"
    with pytest.raises(
        BillingError,
        match="A tax exemption certificate dated 20 Jan 2026 is refused: "
        + issued.format(final.number),
    ):
        certificate(ws, "CA", on=date(2026, 1, 20))
    with pytest.raises(
        BillingError,
        match="A rejection dated 20 Jan 2026 is refused: " + issued.format(noted.number),
    ):
        services.reject_exemption(waiting, by=finance, reason="Unsigned", as_of=date(2026, 1, 20))
    assert not TaxExemption.objects.filter(workspace=ws).exists()
    waiting.refresh_from_db()
    assert waiting.status == "submitted"
    services.reject_exemption(waiting, by=finance, reason="Unsigned", as_of=date(2026, 1, 26))
    certificate(ws, "CA", on=date(2026, 1, 26))
    services.run_billing(as_of=date(2026, 2, 3))
    with pytest.raises(BillingError, match="processed every day through 3 Feb 2026"):
        certificate(other, "CA", on=date(2026, 2, 3))


@pytest.mark.parametrize(
    "valid_from, valid_to",
    [
        (date(1, 1, 1), None),
        (date(1999, 12, 31), date(2026, 12, 31)),
        (date(2026, 1, 1), date(2100, 1, 1)),
        (date(2026, 1, 1), date(9999, 12, 31)),
    ],
)
def test_x4_i6_a_certificate_is_dated_within_the_years_billed(db, valid_from, valid_to):
    """A certificate's dates are typed by a person: like every other date, they fall within the
    years this system bills (2000 to 2099); one open to the end has no end date. A certificate
    valid from 0001-01-01 to 9999-12-31 was taken."""
    ws = workspace(business_country="US", business_region="NH")
    with pytest.raises(BillingError, match=r"outside the years this system bills \(2000 to 2099\)"):
        certificate(ws, "NH", on=date(2026, 3, 2), valid_from=valid_from, valid_to=valid_to)
    assert not TaxExemption.objects.exists()


@pytest.mark.parametrize(
    "country, region, said",
    [
        ("US", "CA", "approved: {ws}'s invoices from 10 Feb 2026 carry no CA sales tax while"),
        ("DE", "", "approved. It covers CA, not DE: {ws}'s invoices are still taxed where"),
    ],
)
def test_x4_the_approval_message_says_what_the_page_said(
    db, client, finance, today, country, region, said
):
    """A certificate for a state the business is not in was approved with "CA invoices of
    Pied Piper carry no tax", after its page had said it waives nothing there."""
    ws = workspace(business_country=country, business_region=region)
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    url = reverse("admin:billing_taxexemption_decide", args=[cert.pk, "approve"])
    response = client.post(url, as_shown(client, url), follow=True)
    assert any(said.format(ws=ws.name) in m for m in messages_of(response)), messages_of(response)


def test_x4_a_second_certificate_for_a_state_waits_for_the_first_decision(db, finance):
    """Three identical CA certificates of one workspace were all accepted for review. While
    one for a state waits for finance, another for that state is refused; once it is
    decided, a new one is taken (a replacement, a renewal)."""
    ws = workspace(business_country="US", business_region="CA")
    first = certificate(ws, "CA", on=date(2026, 1, 5))
    with pytest.raises(BillingError, match=rf"Certificate #{first.pk} for CA, submitted on 5 Jan"):
        certificate(ws, "CA", on=date(2026, 1, 6))
    certificate(ws, "NV", on=date(2026, 1, 6))  # another state: its own review
    services.reject_exemption(first, by=finance, reason="Unsigned", as_of=date(2026, 1, 7))
    assert certificate(ws, "CA", on=date(2026, 1, 8)).status == "submitted"
    assert TaxExemption.objects.filter(workspace=ws, region="CA").count() == 2


def test_x4_the_workspace_page_lists_its_certificates(db, client, support, finance, today):
    """Walk 5: the workspace page did not list its certificates; each opens its page."""
    ws = workspace(name="Golden", business_country="US", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 1, 5))
    url = reverse("admin:billing_workspace_change", args=[ws.pk])
    for user in (support, finance):
        client.force_login(user)
        body = client.get(url).content.decode()
        assert "Tax exemption certificates" in body
        assert reverse("admin:billing_taxexemption_change", args=[cert.pk]) in body
