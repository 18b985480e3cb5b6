"""C6 on the page you read: support approves or rejects a non-profit proof on its page, with
the document shown; approving with the discount (money) asks for a confirmation; a decided
proof's page says so. C2: the coupon picker offers what can be applied and names the rest."""

import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from coupons import services
from coupons.models import NonprofitProof, Redemption
from tests.admin_pages import as_shown

from .factories import PDF, PNG, coupon, paid_monthly


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


def proof_of(ws, support, on, content=PDF, name="501c3.pdf"):
    return services.submit_nonprofit_proof(
        ws, document=ContentFile(content, name=name), by=support, as_of=on
    )


def decide_url(proof, decision):
    return reverse("admin:coupons_proof_decide", args=[proof.pk, decision])


def test_c6_the_proof_page_shows_the_document_and_the_decisions(client, support, today):
    ws = paid_monthly(as_of=today, name="Food Bank")
    pdf_proof = proof_of(ws, support, today)
    png_proof = proof_of(paid_monthly(as_of=today), support, today, PNG, "scan.png")
    client.force_login(support)
    body = client.get(reverse("admin:coupons_nonprofitproof_change", args=[pdf_proof.pk]))
    body = body.content.decode()
    preview = reverse("coupons:proof-document", args=[pdf_proof.pk]) + "?preview=1"
    assert f'<iframe src="{preview}"' in body
    for decision in ("approve-and-apply", "approve", "reject"):
        assert decide_url(pdf_proof, decision) in body
    image = client.get(reverse("admin:coupons_nonprofitproof_change", args=[png_proof.pk]))
    png_preview = reverse("coupons:proof-document", args=[png_proof.pk]) + "?preview=1"
    assert f'<img src="{png_preview}"' in image.content.decode()
    inline = client.get(png_preview)
    assert inline["Content-Disposition"].startswith("inline;")
    assert inline["Content-Type"] == "image/png"


def test_c6_approving_with_the_discount_is_confirmed_then_applies_nonprofit(client, support, today):
    ws = paid_monthly(as_of=today - timedelta(days=3), name="Food Bank")
    proof = proof_of(ws, support, today - timedelta(days=1))
    client.force_login(support)
    asked = client.get(decide_url(proof, "approve-and-apply")).content.decode()
    assert "NONPROFIT takes $120.00 off each monthly Team bill of Food Bank" in asked
    assert 'value="Yes, approve and apply NONPROFIT"' in asked
    assert NonprofitProof.objects.get().status == "submitted"
    url = decide_url(proof, "approve-and-apply")
    client.post(url, as_shown(client, url))
    proof.refresh_from_db()
    assert (proof.status, proof.reviewed_by) == ("approved", support)
    assert Redemption.objects.get(workspace=ws).coupon.code == "NONPROFIT"
    # Decided: the page says so and offers nothing.
    body = client.get(decide_url(proof, "reject")).content.decode()
    assert "This proof was already approved on 10 Feb 2026: a decision is final." in body
    assert re.findall(r'<form method="post"', body) == []


def test_c6_rejecting_needs_a_reason(client, support, today):
    proof = proof_of(paid_monthly(as_of=today), support, today)
    client.force_login(support)
    client.post(decide_url(proof, "reject"), {"reason": ""})
    assert NonprofitProof.objects.get().status == "submitted"
    url = decide_url(proof, "reject")
    client.post(url, as_shown(client, url, {"reason": "Letter is ten years old"}))
    proof.refresh_from_db()
    assert (proof.status, proof.reason) == ("rejected", "Letter is ten years old")


@pytest.mark.parametrize("who", ["finance", "reviewer"])
def test_c6_only_support_decides_on_proofs(client, request, support, today, who):
    proof = proof_of(paid_monthly(as_of=today), support, today)
    client.force_login(request.getfixturevalue(who))
    assert client.post(decide_url(proof, "approve")).status_code == 403
    assert NonprofitProof.objects.get().status == "submitted"


def test_c2_the_picker_offers_only_coupons_that_can_be_applied_and_names_the_rest(
    client, support, today
):
    coupon(code="OPEN10")
    coupon(code="RETIRED", active=False)
    coupon(code="SPRING", redeem_by=today - timedelta(days=1))
    used = coupon(code="VIP", amount_off="100.00", max_redemptions=1)
    services.redeem_coupon(paid_monthly(as_of=today), used.code, by=support, as_of=today)
    client.force_login(support)
    body = client.get(reverse("admin:coupons_redemption_apply")).content.decode()
    offered = re.findall(r'<option value="([A-Z0-9]+)"', body)
    assert "OPEN10" in offered and "NONPROFIT" in offered
    assert not {"RETIRED", "SPRING", "VIP"} & set(offered)
    assert "RETIRED (inactive)" in body and "SPRING (expired)" in body and "VIP (used up)" in body


def test_c2_money_in_the_coupon_and_credit_lists(client, finance, today):
    coupon(code="BIGCREDIT", kind="startup_program", credit_amount="25000.00")
    client.force_login(finance)
    body = client.get(reverse("admin:coupons_coupon_changelist")).content.decode()
    assert "$25,000.00 credit a year" in body
