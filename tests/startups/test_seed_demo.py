"""`manage.py seed_demo` (what `make run` shows): the logins with the address it is given, and
demo data that leaves every role something to do today and nothing dated in the future."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import CreditNote, TaxExemption
from coupons.models import CreditGrant, Redemption
from startups.models import DealRequest, StartupApplication


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


def test_seed_demo_prints_the_address_and_leaves_work_for_every_role(db):
    out = StringIO()
    call_command("seed_demo", workspaces=40, url="http://127.0.0.1:8123/admin/", stdout=out)
    printed = out.getvalue()
    assert "Open http://127.0.0.1:8123/admin/ and sign in with one of them." in printed
    assert len(printed.splitlines()) < 12  # the logins, not a wall of task lines

    today = timezone.now().date()
    assert not Redemption.objects.filter(redeemed_on__gt=today).exists()
    assert not CreditGrant.objects.filter(valid_from__gt=today).exists()
    assert not DealRequest.objects.filter(requested_on__gt=today).exists()
    # Finance: credit notes waiting, certificates to review; reviewers: open applications.
    assert CreditNote.objects.filter(status="requested").count() >= 2
    assert CreditNote.objects.filter(status="approved").exists()
    assert TaxExemption.objects.filter(status__in=["submitted", "in_review"]).exists()
    assert set(StartupApplication.objects.values_list("status", flat=True)) == {
        "submitted",
        "in_review",
        "approved",
        "rejected",
        "withdrawn",
    }

    again = StringIO()
    call_command("seed_demo", workspaces=40, stdout=again)  # once: a second run adds nothing
    assert "Demo data exists already" in again.getvalue()
    assert CreditNote.objects.count() == 4
