"""`manage.py seed_demo` (what `make run` shows): the logins with the address it is given, and
demo data that leaves every role something to do today and nothing dated in the future."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.emails import resend_email
from billing.models import CreditNote, Invoice, OutboundEmail, TaxExemption, WorkspaceClosure
from coupons.campaigns import campaign_results
from coupons.models import Campaign, CreditGrant, Redemption
from startups.models import DealRequest, StartupApplication


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


@pytest.fixture
def laptop(settings):
    """`make run` and README's worker setup seed with DEBUG=true."""
    settings.DEBUG = True


def test_seed_demo_refuses_production_settings_and_takes_over_no_account(db, settings):
    """Run with production settings (DEBUG=false), seed_demo took over the real superuser
    named "finance": its password was replaced by one printed on the terminal (the old one no
    longer signed in), it stayed a superuser and was put in the Finance group; 300 made-up
    workspaces were created and the clock issued their invoices (81 for 20 workspaces) in the
    real INV-YYYY sequence, never to be deleted (I3). It refuses now, changing nothing, unless
    told --allow-production."""
    settings.DEBUG = False
    admin = User.objects.create_user(
        "finance", password="Real-Strong-Passw0rd!", is_staff=True, is_superuser=True
    )

    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", workspaces=40, stdout=StringIO())

    admin.refresh_from_db()
    assert admin.check_password("Real-Strong-Passw0rd!")
    assert not admin.groups.exists()
    assert list(User.objects.values_list("username", flat=True)) == ["finance"]
    assert not Invoice.objects.exists()
    assert not StartupApplication.objects.exists()


@pytest.mark.parametrize("count", [-5, 0, 30, 39, 10_001])
def test_seed_demo_refuses_a_number_of_workspaces_it_cannot_build_and_writes_nothing(
    db, laptop, count
):
    """With 30 workspaces every monthly Team customer already had a discount, so the demo's
    campaign reached nobody and the command stopped with a CouponError half-way, its
    workspaces and users written (a second run then found "demo data exists already")."""
    with pytest.raises(CommandError, match=f"--workspaces must be 40 to 10,000, not {count:,}"):
        call_command("seed_demo", workspaces=count, stdout=StringIO())
    assert not User.objects.exists()
    assert not Invoice.objects.exists()


def test_seed_demo_prints_the_address_and_leaves_work_for_every_role(db, laptop):
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
    waiting = TaxExemption.objects.filter(status__in=["submitted", "in_review"])
    # …of which some cover their own workspace's state: approving them changes invoices (X4).
    own_state = [
        c for c in waiting.select_related("workspace") if c.workspace.business_region == c.region
    ]
    assert len(own_state) >= 2, [(c.region, c.workspace.business_region) for c in waiting]
    # X4: approved certificates exempt invoices of workspaces located in their state, so the
    # tax report's exempt column has figures to show (it showed 0.00 in every month).
    exempt = Invoice.objects.filter(tax_note__startswith="exempt: ", tax=0, total__gt=0)
    assert exempt.count() >= 5
    assert set(StartupApplication.objects.values_list("status", flat=True)) == {
        "submitted",
        "in_review",
        "approved",
        "rejected",
        "withdrawn",
    }

    # Support: a workspace closed at its customer's request (W1), with its reason and final
    # invoice; a launched campaign with what it brought in (G2, G3) and a draft (G1).
    closure = WorkspaceClosure.objects.select_related("final_invoice").get()
    assert closure.reason.startswith("Ticket 5120") and closure.closed_on < today
    assert closure.final_invoice.kind == "final" and closure.final_invoice.total > 0
    assert closure.closed_by.username == "support"
    launched = Campaign.objects.get(status="launched")
    results = campaign_results(launched)
    assert results["notified"] > 0 and results["redeemed"] > 0 and results["discount"] > 0
    assert Campaign.objects.filter(status="draft").count() == 1
    assert not Campaign.objects.filter(launched_on__gt=today).exists()
    assert not Invoice.objects.filter(issue_date__gt=today).exists()
    assert not WorkspaceClosure.objects.filter(closed_on__gt=today).exists()

    again = StringIO()
    call_command("seed_demo", workspaces=40, stdout=again)  # once: a second run adds nothing
    assert "Demo data exists already" in again.getvalue()
    assert CreditNote.objects.count() == 4
    assert (WorkspaceClosure.objects.count(), Campaign.objects.count()) == (1, 2)


def test_f6_seed_demo_leaves_one_failed_email_to_resend(
    db, laptop, mailoutbox, django_capture_on_commit_callbacks
):
    """Support and finance resend emails that failed (F6, R1), but the demo had none to
    practise on: every demo email was sent. The closed workspace's confirmation fails as it
    would with the mail server down (a connection refused, through the real sender), and a
    resend sends it."""
    call_command("seed_demo", workspaces=40, stdout=StringIO())

    failed = OutboundEmail.objects.get(status=OutboundEmail.Status.FAILED)
    closure = WorkspaceClosure.objects.select_related("workspace").get()
    assert (failed.kind, failed.object_key) == ("workspace_closed", f"closure:{closure.pk}")
    assert failed.to == closure.workspace.billing_email
    assert failed.last_error.startswith("Given up after ")
    assert "ConnectionRefusedError" in failed.last_error

    call_command("seed_demo", workspaces=40, stdout=StringIO())  # once
    assert OutboundEmail.objects.filter(status=OutboundEmail.Status.FAILED).count() == 1

    sent_before = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        resend_email(failed, by=User.objects.get(username="support"))
    failed.refresh_from_db()
    assert failed.status == OutboundEmail.Status.SENT
    assert len(mailoutbox) == sent_before + 1 and mailoutbox[-1].to == [failed.to]


def test_d4_seed_demo_gives_its_annual_workspaces_the_annual10_discount(db, laptop):
    """The demo dated ANNUAL10 on the sign-up day, after the move to annual Team it had entered
    for a few days later: refused since changes to a workspace go in date order, and dropped
    without a word (no annual invoice showed the 144.00 off 1,440.00). It is dated the move's
    day now."""
    from billing.models import Subscription

    call_command("seed_demo", workspaces=40, stdout=StringIO())
    annual = Subscription.objects.filter(
        ended_on=None, plan__code="team", interval="annual", workspace__slug__startswith="demo-"
    )
    offered = min(3, annual.count())  # coupons.demo offers it to three at most
    assert offered
    assert Redemption.objects.filter(coupon__code="ANNUAL10").count() == offered
    assert Invoice.objects.filter(kind="annual", discount__gt=0).count() == offered
