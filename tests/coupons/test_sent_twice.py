"""A form sent twice, at once or again later (the run-twice walk): a coupon's add page, a
campaign's, a non-profit proof's upload. The second does nothing and says why. On PostgreSQL
each request is a thread with its own connection (tests/conftest.py's run_together)."""

from datetime import date

import pytest
from django.core.files.base import ContentFile

from coupons import services
from coupons.errors import CouponError
from coupons.models import Campaign, Coupon, NonprofitProof
from tests.billing.factories import workspace
from tests.services import require_postgres

from .factories import PDF, coupon


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.PRIVATE_MEDIA_ROOT


def spring(code):
    return lambda: services.create_coupon(code, "Spring", "promotion", percent_off="15")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_c1_a_coupon_added_twice_at_once_is_created_once(run_together):
    """Two support sessions adding TWICE1 at the same moment: one 302, one 500 (the code's
    unique index refused the second's row). The second now waits and is told the code is
    taken, as one sent later is."""
    require_postgres()
    first, second = run_together(spring("TWICE1"), spring("twice1 "), refusals=(CouponError,))
    refused = first if isinstance(first, CouponError) else second
    assert str(refused) == "The code TWICE1 is already used by another coupon."
    assert Coupon.objects.filter(code="TWICE1").count() == 1


def launch_of(name):
    return lambda: services.create_campaign(name, "SPRING26", "Spring", "15 % off", {})


def test_g1_g2_a_campaign_added_again_is_refused_by_its_name(db):
    """The add page sent again (back, resend) made a second 'Winter promo': launching both
    emailed each of 185 workspaces twice. A campaign's name is its own, in any capitals;
    renaming a draft to a taken name is refused too, keeping its own is not."""
    coupon(code="SPRING26")
    first = launch_of("Winter promo")()
    with pytest.raises(
        CouponError, match=r"A campaign named “Winter promo” exists already \(a draft\)\."
    ):
        launch_of("winter PROMO")()
    other = launch_of("Spring promo")()
    with pytest.raises(CouponError, match="“Winter promo” exists already"):
        services.update_campaign(other, by=None, reason="Rename", name="Winter promo")
    services.update_campaign(first, by=None, reason="Same name", subject="Winter: 15 % off")
    assert Campaign.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_g1_g2_a_campaign_added_twice_at_once_is_created_once(run_together):
    require_postgres()
    coupon(code="SPRING26")
    add = launch_of("Winter promo")
    outcomes = run_together(add, add, add, refusals=(CouponError,))
    assert sum(isinstance(o, CouponError) for o in outcomes) == 2
    assert Campaign.objects.filter(name="Winter promo").count() == 1


def upload(ws, on=date(2026, 1, 5)):
    return lambda: services.submit_nonprofit_proof(
        ws, document=ContentFile(PDF, name="status.pdf"), by=None, as_of=on
    )


def test_c6_a_proof_uploaded_again_while_one_waits_is_refused(db, support):
    """Uploaded twice (a double click): two proofs, both approved later, one waiting for
    nothing. One waits at a time; once rejected, a new one is taken."""
    ws = workspace(name="Harbor Food Bank")
    waiting = upload(ws)()
    with pytest.raises(CouponError) as refused:
        upload(ws, date(2026, 1, 6))()
    assert str(refused.value) == (
        "A proof of Harbor Food Bank's non-profit status, submitted on 5 Jan 2026, waits for "
        "review already: support decides it first (a rejected one can then be replaced)."
    )
    services.reject_nonprofit_proof(waiting, by=support, reason="A draft", as_of=date(2026, 1, 7))
    upload(ws, date(2026, 1, 8))()
    assert NonprofitProof.objects.filter(workspace=ws).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_c6_a_proof_uploaded_twice_at_once_is_stored_once(run_together, private_media):
    require_postgres()
    ws = workspace()
    outcomes = run_together(upload(ws), upload(ws), refusals=(CouponError,))
    assert sum(isinstance(o, CouponError) for o in outcomes) == 1
    assert NonprofitProof.objects.filter(workspace=ws).count() == 1
    assert len(list(private_media.rglob("*.*"))) == 1  # the refused upload's file went again
