"""C6: proof of non-profit status, judged by its content, stored privately, reviewed by support."""

from datetime import date

import pytest
from django.core.files.base import ContentFile

from billing.documents import MAX_DOCUMENT_BYTES
from billing.errors import InvalidDocument
from coupons import services
from coupons.errors import CouponError, CouponRefused
from coupons.models import NonprofitProof, Redemption

from .factories import JPEG, PDF, PNG, coupon, paid_monthly

DAY = date(2026, 1, 10)


def submit(ws, content, name="proof.pdf", by=None):
    return services.submit_nonprofit_proof(
        ws, document=ContentFile(content, name=name), by=by, as_of=DAY
    )


@pytest.mark.parametrize(
    "content, name, problem",
    [
        (b"<html><script>alert(1)</script></html>", "proof.pdf", "must be a PDF, PNG or JPEG"),
        (b"", "proof.pdf", "The proof file is empty"),
        (b"%PDF-" + b"0" * MAX_DOCUMENT_BYTES, "big.pdf", "at most 10 MB is accepted"),
        (b"GIF89a" + b"\x00" * 20, "logo.png", "must be a PDF, PNG or JPEG"),
    ],
    ids=["html-renamed-pdf", "empty", "oversize", "gif-renamed-png"],
)
def test_c6_upload_refused_by_content(db, content, name, problem):
    with pytest.raises(InvalidDocument, match=problem):
        submit(paid_monthly(), content, name)
    assert not NonprofitProof.objects.exists()


@pytest.mark.parametrize(
    "content, content_type, extension",
    [(PDF, "application/pdf", ".pdf"), (PNG, "image/png", ".png"), (JPEG, "image/jpeg", ".jpg")],
)
def test_c6_upload_accepted_under_a_random_private_name(
    db, support, content, content_type, extension
):
    proof = submit(paid_monthly(), content, name="../../etc/Our status letter.exe", by=support)
    assert (proof.content_type, proof.status, proof.submitted_by) == (
        content_type,
        "submitted",
        support,
    )
    assert proof.original_name == "Our status letter.exe"
    assert proof.document.name.startswith("nonprofit-proofs/")
    assert proof.document.name.endswith(extension)
    assert "status" not in proof.document.name
    with proof.document.open("rb") as handle:
        assert handle.read() == content


def test_c6_exactly_10_mb_is_accepted(db):
    proof = submit(paid_monthly(), b"%PDF-" + b"0" * (MAX_DOCUMENT_BYTES - 5))
    assert proof.size == MAX_DOCUMENT_BYTES


def test_c6_approval_applies_the_discount_and_a_proof_is_decided_once(db, support):
    ws = paid_monthly()
    proof = submit(ws, PDF)
    redemption = services.approve_nonprofit_proof(proof, by=support, as_of=DAY)
    assert (redemption.coupon.code, redemption.by) == ("NONPROFIT", support)
    proof.refresh_from_db()
    assert (proof.status, proof.reviewed_by, proof.reviewed_on) == ("approved", support, DAY)
    with pytest.raises(CouponError, match="already approved on 10 Jan 2026"):
        services.reject_nonprofit_proof(proof, by=support, reason="Oops", as_of=DAY)


def test_c6_rejection_needs_a_reason_and_gives_no_discount(db, support):
    ws = paid_monthly()
    proof = submit(ws, PDF)
    with pytest.raises(CouponError, match="Say why"):
        services.reject_nonprofit_proof(proof, by=support, reason=" ", as_of=DAY)
    services.reject_nonprofit_proof(proof, by=support, reason="Expired letter", as_of=DAY)
    with pytest.raises(CouponRefused, match="no approved proof"):
        services.redeem_coupon(ws, "NONPROFIT", by=support, as_of=DAY)


def test_c6_approval_refused_by_c2_approves_nothing(db, support):
    ws = paid_monthly()
    services.redeem_coupon(ws, coupon(duration="forever").code, by=support, as_of=DAY)
    proof = submit(ws, PDF)
    with pytest.raises(CouponRefused, match="The proof was not approved: .* active discount"):
        services.approve_nonprofit_proof(proof, by=support, as_of=DAY)
    proof.refresh_from_db()
    assert proof.status == "submitted"
    # Approving alone lets support apply the discount later, once the other one is removed.
    services.approve_nonprofit_proof(proof, by=support, as_of=DAY, apply_discount=False)
    services.remove_discount(ws, by=support, reason="Non-profit rate instead", as_of=DAY)
    services.redeem_coupon(ws, "NONPROFIT", by=support, as_of=DAY)
    assert Redemption.objects.filter(workspace=ws, coupon__code="NONPROFIT").exists()
