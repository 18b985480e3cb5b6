"""X5, C6: the private documents shared by certificates (billing) and non-profit proofs
(coupons) — one content check, storage under random names that a rollback cleans up, and the
permission-checked download (as an attachment, or inline for a preview)."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, connections, transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from billing import documents, tasks
from billing import services as billing_services
from billing.demo import certificate_pdf
from billing.documents import MAX_DOCUMENT_BYTES, document_type
from billing.errors import BillingError, InvalidDocument
from billing.models import TaxExemption
from coupons import services as coupon_services
from coupons.models import NonprofitProof

from .factories import workspace

PDF = certificate_pdf("Exemption certificate")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(64)  # a Windows program's header
DAY = date(2026, 1, 5)
NOT_A_DOCUMENT = (
    "The certificate must be a PDF, PNG or JPEG file, judged by its content: this file is none "
    "of those, whatever its name says."
)


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.MEDIA_ROOT


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def certificate(content=PDF, name="cert.pdf"):
    return billing_services.submit_exemption(
        workspace(business_country="US", business_region="CA"),
        region="CA",
        reason="nonprofit",
        document=ContentFile(content, name=name),
        valid_from=date(2026, 1, 1),
        as_of=DAY,
    )


def proof(content=PDF, name="proof.pdf"):
    return coupon_services.submit_nonprofit_proof(
        workspace(), document=ContentFile(content, name=name), by=None, as_of=DAY
    )


# --- The content check ----------------------------------------------------------------------


def test_x5_renamed_exe_named_cert_pdf_is_refused_with_the_message(db, private_media):
    with pytest.raises(InvalidDocument) as refused:
        document_type(ContentFile(EXE, name="cert.pdf"), what="certificate")
    assert str(refused.value) == NOT_A_DOCUMENT
    with pytest.raises(BillingError, match="The certificate must be a PDF, PNG or JPEG"):
        certificate(EXE, name="cert.pdf")
    assert not TaxExemption.objects.exists()
    assert stored_files(private_media) == []


def test_c6_renamed_exe_named_proof_pdf_is_refused_with_the_message(db, private_media):
    with pytest.raises(InvalidDocument, match="The proof must be a PDF, PNG or JPEG file"):
        proof(EXE, name="cert.pdf")
    assert not NonprofitProof.objects.exists()
    assert stored_files(private_media) == []


def test_x5_c6_an_empty_file_is_refused(db):
    with pytest.raises(InvalidDocument) as refused:
        document_type(ContentFile(b"", name="cert.pdf"), what="certificate")
    assert str(refused.value) == "The certificate file is empty: attach a PDF, PNG or JPEG file."
    with pytest.raises(InvalidDocument, match="The proof file is empty"):
        proof(b"")


def test_x5_c6_10_mb_and_one_byte_is_refused_exactly_10_mb_is_accepted(db):
    too_big = ContentFile(b"%PDF-" + bytes(MAX_DOCUMENT_BYTES - 4), name="big.pdf")
    with pytest.raises(InvalidDocument) as refused:
        document_type(too_big)
    assert str(refused.value) == (
        "The document file is 10,485,761 bytes: at most 10 MB is accepted (10,485,760 bytes)."
    )
    exactly = ContentFile(b"%PDF-" + bytes(MAX_DOCUMENT_BYTES - 5), name="big.pdf")
    assert document_type(exactly) == "application/pdf"


def test_x5_c6_no_file_asks_for_one(db):
    with pytest.raises(InvalidDocument, match="Attach the proof: a PDF, PNG or JPEG file"):
        document_type(None, what="proof")


@pytest.mark.parametrize(
    "content, content_type",
    [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")],
    ids=["pdf", "png", "jpeg"],
)
def test_x5_c6_pdf_png_and_jpeg_are_accepted_by_content_whatever_the_name(content, content_type):
    upload = ContentFile(content, name="scan.exe")
    assert document_type(upload) == content_type
    assert upload.tell() == 0  # read from the start again by whoever stores it


def test_x5_c6_form_check_gives_the_same_message():
    from django import forms

    with pytest.raises(forms.ValidationError) as refused:
        documents.clean_document(ContentFile(EXE, name="cert.pdf"), what="certificate")
    assert refused.value.messages == [NOT_A_DOCUMENT]
    upload = ContentFile(PNG, name="x.png")
    assert documents.clean_document(upload) is upload


# --- Storage under random names ---------------------------------------------------------------


@pytest.mark.parametrize(
    "submit, folder", [(certificate, "tax-exemptions"), (proof, "nonprofit-proofs")]
)
def test_x5_c6_stored_name_is_random_not_the_uploaded_name(db, private_media, submit, folder):
    first = submit(PNG, name="Our Letter.png")
    second = submit(PNG, name="Our Letter.png")
    for saved in (first, second):
        stored = Path(saved.document.path)
        assert saved.document.name.startswith(f"{folder}/")
        assert "Letter" not in saved.document.name
        assert stored.suffix == ".png"  # from the content, not the name
        assert len(stored.stem) == 32
        assert stored.is_relative_to(private_media)
        assert stored.read_bytes() == PNG
    assert first.document.name != second.document.name


def test_x5_c6_the_upload_to_is_one_serialisable_callable():
    for model in (TaxExemption, NonprofitProof):
        upload_to = model._meta.get_field("document").upload_to
        assert isinstance(upload_to, documents.PrivateUploadTo)
        path, args, kwargs = upload_to.deconstruct()
        assert path == "billing.documents.PrivateUploadTo"


# --- A rollback leaves no file behind ---------------------------------------------------------


def test_x5_certificate_whose_row_is_not_saved_leaves_no_file(db, private_media, monkeypatch):
    def fail(*args, **kwargs):
        raise DatabaseError("the row could not be written")

    monkeypatch.setattr(TaxExemption, "save", fail)
    with pytest.raises(DatabaseError):
        certificate()
    assert stored_files(private_media) == []


def test_c6_proof_whose_transaction_rolls_back_leaves_no_file(db, private_media, monkeypatch):
    def fail(*args, **kwargs):
        raise DatabaseError("the history could not be written")

    # The row is written, then something later in the same transaction fails.
    original = NonprofitProof.save

    def save_then_fail(self, *args, **kwargs):
        original(self, *args, **kwargs)
        fail()

    monkeypatch.setattr(NonprofitProof, "save", save_then_fail)
    with pytest.raises(DatabaseError):
        proof()
    assert not NonprofitProof.objects.exists()
    assert stored_files(private_media) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_x5_c6_a_commit_that_fails_leaves_no_file(private_media, monkeypatch):
    ws = workspace()

    def failing_commit():
        raise DatabaseError("could not serialize access")

    with monkeypatch.context() as patch:
        patch.setattr(connections["default"], "commit", failing_commit)
        with pytest.raises(DatabaseError, match="serialize"):
            coupon_services.submit_nonprofit_proof(
                ws, document=ContentFile(PDF, name="p.pdf"), by=None, as_of=DAY
            )
    assert not NonprofitProof.objects.exists()
    assert stored_files(private_media) == []


class FullDisk(ContentFile):
    """An upload whose store fails part-way, as on a full disk."""

    def chunks(self, chunk_size=None):
        yield self.read()[:100]
        raise OSError(28, "No space left on device")


def test_x5_c6_the_daily_sweep_deletes_the_files_no_row_names_a_day_later(db, private_media):
    """What `stored_until_rollback` cannot see: a certificate stored in a transaction of its
    caller's that then rolls back, and a proof whose store failed part-way, each leave a file
    that no row names. The sweep leaves them for a day (a transaction may still be about to
    commit its row), then deletes those two and only those: a certificate and a proof whose
    rows were committed keep theirs, and so does a file only a history row still names (the
    document a decision was made on)."""
    kept = [certificate(), proof(PNG)]
    with pytest.raises(RuntimeError), transaction.atomic():
        certificate()
        raise RuntimeError("a later step of the caller fails")
    with pytest.raises(OSError, match="No space left"):
        coupon_services.submit_nonprofit_proof(
            workspace(), document=FullDisk(PDF, name="p.pdf"), by=None, as_of=DAY
        )
    renamed = certificate(PNG)
    TaxExemption.objects.filter(pk=renamed.pk).update(document="tax-exemptions/elsewhere.png")
    named = {row.document.name for row in kept} | {renamed.document.name}
    stored = {str(p.relative_to(private_media)) for p in stored_files(private_media)}
    orphans = stored - named
    assert len(stored) == 5 and len(orphans) == 2

    now = timezone.now()
    assert documents.delete_orphan_documents(now=now) == []
    assert sorted(documents.delete_orphan_documents(now=now + timedelta(days=1, minutes=1))) == (
        sorted(orphans)
    )
    assert {str(p.relative_to(private_media)) for p in stored_files(private_media)} == named
    assert documents.delete_orphan_documents(now=now + timedelta(days=2)) == []


def test_x5_c6_the_sweep_of_orphan_documents_runs_daily_on_the_beat(db, private_media):
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "billing.tasks.sweep_orphan_documents"
    ]
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})
    certificate()
    assert tasks.sweep_orphan_documents() == 0  # a row names it


# --- The download -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name, submit, allowed, refused",
    [
        ("finance:certificate-document", certificate, ["support", "finance"], ["reviewer"]),
        ("coupons:proof-document", proof, ["support"], ["finance", "reviewer"]),
    ],
    ids=["x5-certificate", "c6-proof"],
)
def test_x5_c6_download_only_for_a_role_with_the_view_permission(
    db, client, request, url_name, submit, allowed, refused
):
    saved = submit(PDF)
    url = reverse(url_name, args=[saved.pk])
    signed_out = client.get(url)
    assert signed_out.status_code == 302
    assert signed_out.url.startswith(reverse("admin:login"))
    for role in refused:
        client.force_login(request.getfixturevalue(role))
        assert client.get(url).status_code == 403, role
    for role in allowed:
        client.force_login(request.getfixturevalue(role))
        response = client.get(url)
        assert response.status_code == 200, role
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment; filename=")
        assert response["Content-Disposition"].endswith(f'-{saved.pk}.pdf"')
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert response["Cache-Control"] == "private, no-store"
        assert b"".join(response.streaming_content) == PDF


def test_c6_proof_download_names_the_proof(db, client, support):
    saved = proof(JPEG)
    client.force_login(support)
    response = client.get(reverse("coupons:proof-document", args=[saved.pk]))
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == (
        f'attachment; filename="nonprofit-proof-{saved.pk}.jpg"'
    )


def test_x5_c6_a_missing_file_is_404(db, client, support):
    saved = proof(PDF)
    saved.document.storage.delete(saved.document.name)
    client.force_login(support)
    assert client.get(reverse("coupons:proof-document", args=[saved.pk])).status_code == 404
    with pytest.raises(Http404):
        documents.document_response(
            NonprofitProof(content_type="application/pdf").document,
            content_type="application/pdf",
            filename="x.pdf",
        )


@pytest.mark.parametrize(
    "content, content_type", [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")]
)
def test_x5_c6_inline_preview_keeps_the_sandbox(db, content, content_type):
    saved = proof(content)
    response = documents.document_response(
        saved.document, content_type=content_type, filename="preview", inline=True
    )
    assert response["Content-Disposition"] == 'inline; filename="preview"'
    assert response["Content-Type"] == content_type
    assert response["Content-Security-Policy"].startswith("default-src 'none'; sandbox")
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == content


def test_x5_c6_attachment_is_the_default_and_other_types_are_never_inline(db):
    saved = proof(PDF)
    download = documents.document_response(
        saved.document, content_type="application/pdf", filename="p.pdf"
    )
    assert download["Content-Disposition"] == 'attachment; filename="p.pdf"'
    assert "X-Frame-Options" not in download  # the site's DENY applies
    other = documents.document_response(
        saved.document, content_type="text/html", filename="p.html", inline=True
    )
    assert other["Content-Disposition"] == 'attachment; filename="p.html"'
    assert other["Content-Security-Policy"] == "default-src 'none'; sandbox"
