"""Two staff at once, or a service run twice at once, on PostgreSQL: every rule that must happen
only once holds when the two race. Each side is a thread with its own database connection
(tests/conftest.py's `run_together`); the end state is asserted in the database, and the loser
gets a refusal (a `BillingError`), never an IntegrityError or a deadlock (a 500).

The races tests/billing/test_concurrency.py, tests/coupons/test_concurrency.py, the
`test_sent_twice.py` files and the startups race files stage already are not repeated here.
Where a race needs both sides past their check before either writes, the test holds them there
(a barrier or an event inside the service), as two requests a few milliseconds apart would."""

import contextlib
import threading
import time
from datetime import date
from decimal import Decimal as D

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from billing import services, usage_import
from billing import usage as usage_module
from billing.errors import BillingError
from billing.models import (
    CreditNote,
    Invoice,
    LockEvent,
    OutboundEmail,
    SetAsideInvoice,
    Subscription,
    TaxExemption,
    Usage,
    Workspace,
    WorkspaceClosure,
)
from coupons import services as coupons
from coupons.models import (
    AcceleratorPartner,
    Campaign,
    CampaignRecipient,
    CreditGrant,
    CreditLedgerEntry,
    NonprofitProof,
    Redemption,
)
from startups import services as startups
from startups.models import DealRequest, EligibleTerritory, StartupApplication
from tests.billing.factories import certificate, paid_monthly, workspace
from tests.coupons.factories import PDF, coupon
from tests.services import another_backend_waits_on_a_lock, require_postgres
from tests.startups.factories import application, confirm_year_two, renewal_review_due

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

JAN = date(2026, 1, 1)


@pytest.fixture(autouse=True)
def _needs_postgres():
    require_postgres()  # SQLite serialises writers: none of these races can happen there


def fresh(obj):
    """The row as the database has it now (each side of a race reads its own copy)."""
    return type(obj).objects.get(pk=obj.pk)


def one_won(outcomes):
    """Exactly one side went through; every other was refused with a message for a person."""
    refused = [o for o in outcomes if isinstance(o, BillingError)]
    assert len(refused) == len(outcomes) - 1, outcomes
    assert all(str(r) for r in refused)
    return next(o for o in outcomes if not isinstance(o, BillingError))


def emails(kind, **filters):
    return OutboundEmail.objects.filter(kind=kind, **filters).count()


def both_checked_then_write(monkeypatch, module, name, parties=2):
    """Hold the callers of `module.name` (the write after a service's checks) until `parties`
    of them got there: both requests checked before either wrote."""
    real = getattr(module, name)
    barrier = threading.Barrier(parties, timeout=5)

    def held(*args, **kwargs):
        # A broken barrier: the other side waits on a lock (its check is serialised).
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, held)


# --- U1, U2, W1: usage written by hand and by file ------------------------------------------------


def test_u1_u2_the_same_file_imported_twice_at_once_writes_each_figure_once(
    tmp_path, run_together, support
):
    """Two operators import the same usage file at the same moment: every figure is written
    once, with one history row each; the second import finds them on file (unchanged)."""
    for slug in ("alpha", "beta", "gamma"):
        workspace(slug=slug, as_of=JAN)
    services.record_usage(Workspace.objects.get(slug="beta"), month=JAN, mtus=100)
    path = tmp_path / "usage.csv"
    path.write_text(
        "workspace,month,mtus\nalpha,2026-01,4000\nbeta,2026-01,5000\ngamma,2026-01,6000\n"
    )

    outcomes = run_together(
        lambda: services.import_usage(str(path), by=support),
        lambda: services.import_usage(str(path), by=support),
        refusals=(BillingError,),
    )

    assert sorted(outcomes, key=lambda o: o["unchanged"]) == [
        {"created": 2, "replaced": 1, "unchanged": 0},
        {"created": 0, "replaced": 0, "unchanged": 3},
    ]
    assert dict(Usage.objects.values_list("workspace__slug", "mtus")) == {
        "alpha": 4000,
        "beta": 5000,
        "gamma": 6000,
    }
    # One creation each for alpha and gamma, beta's hand figure and its one replacement.
    assert Usage.history.count() == 4


def test_u1_a_figure_recorded_while_an_import_writes_the_same_month_is_not_a_500(
    monkeypatch, run_together
):
    """An import holds the usage table while it writes (share row exclusive), and writes
    alpha's January figure (4,000). Support records alpha's January figure by hand (5,000) in
    the meantime. `record_usage` held alpha's row, found no January figure (the import's was
    not committed), waited for the table, and inserted once the import committed: an
    IntegrityError on `one_usage_per_month` (the page answered 500). It now waits for the
    table first and replaces the imported figure (U1: the later report wins)."""
    ws = workspace(slug="alpha", as_of=JAN)
    written = threading.Event()
    real_upsert = usage_import._upsert

    def upsert(*args, **kwargs):
        result = real_upsert(*args, **kwargs)
        written.set()  # the import's rows are written, not committed
        another_backend_waits_on_a_lock()  # support's figure waits on the table
        return result

    monkeypatch.setattr(usage_import, "_upsert", upsert)

    def import_file():
        row = {"workspace": "alpha", "month": "2026-01", "mtus": "4000"}
        return services.import_usage([(2, row)])

    def by_hand():
        assert written.wait(20)
        return services.record_usage(fresh(ws), month=JAN, mtus=5000)

    imported, recorded = run_together(import_file, by_hand, refusals=(BillingError,))

    assert imported["created"] == 1
    usage = Usage.objects.get(workspace=ws, month=JAN)
    if isinstance(recorded, BillingError):
        assert usage.mtus == 4000
    else:
        assert (usage.mtus, recorded.figure_before) == (5000, 4000)


def test_u1_i6_a_set_aside_figure_corrected_by_hand_and_by_file_at_once_take_turns(
    monkeypatch, run_together
):
    """I6: alpha's January invoice was set aside (a figure of 10^13 MTUs). Support corrects the
    figure by hand (12,000) while an import corrects it too (13,000). `record_usage` held
    alpha's row and then wrote usage; the import holds the usage table and then alpha's row
    (`_refuse_billed_meanwhile`): each waited for the other, and PostgreSQL aborted one with a
    deadlock (a 500). Now both take the table first: one waits for the other."""
    ws = paid_monthly(JAN, slug="alpha")
    Usage.objects.create(workspace=ws, month=JAN, mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    assert SetAsideInvoice.objects.filter(workspace=ws, resolved_on=None).exists()

    row_held, table_held = threading.Event(), threading.Event()
    real_refuse_closed = usage_module.refuse_closed
    real_meanwhile = usage_import._refuse_closed_meanwhile

    def refuse_closed(*args, **kwargs):  # record_usage: alpha's row is held
        real_refuse_closed(*args, **kwargs)
        row_held.set()
        table_held.wait(5)

    def meanwhile(*args, **kwargs):  # import_usage: the usage table is held
        row_held.wait(5)
        table_held.set()
        return real_meanwhile(*args, **kwargs)

    monkeypatch.setattr(usage_module, "refuse_closed", refuse_closed)
    monkeypatch.setattr(usage_import, "_refuse_closed_meanwhile", meanwhile)

    def import_file():
        row = {"workspace": "alpha", "month": "2026-01", "mtus": "13000"}
        return services.import_usage([(2, row)], as_of=date(2026, 2, 2))

    def by_hand():
        return services.record_usage(fresh(ws), month=JAN, mtus=12_000, as_of=date(2026, 2, 2))

    outcomes = run_together(import_file, by_hand, refusals=(BillingError,))
    assert not all(isinstance(o, BillingError) for o in outcomes)
    assert Usage.objects.get(workspace=ws, month=JAN).mtus in (12_000, 13_000)


# --- F4, F5, F6: unlocking ------------------------------------------------------------------------


@pytest.fixture
def locked():
    """A Free workspace locked by January's close (2,000 MTUs: a strike, F1, F2)."""
    ws = workspace(as_of=JAN, card=True)
    services.record_usage(ws, month=JAN, mtus=2_000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert fresh(ws).lock == "locked"
    return ws


def test_f5_f6_two_agents_unlocking_at_once_unlock_once_and_email_once(
    locked, run_together, support
):
    unlock = lambda: services.unlock_workspace(  # noqa: E731
        fresh(locked), by=support, reason="Customer called", as_of=date(2026, 2, 5)
    )
    one_won(run_together(unlock, unlock, refusals=(BillingError,)))
    unlocks = LockEvent.objects.filter(workspace=locked, to_lock="unlocked")
    assert list(unlocks.values_list("cause", flat=True)) == ["manual"]
    assert emails("unlocked", to=locked.billing_email) == 1


def test_f4_f5_an_unlock_and_a_move_to_team_at_once_unlock_once(locked, run_together, support):
    """Support unlocks by hand while another agent moves the workspace to Team (which unlocks,
    F4): one unlock event and one email, whichever came first; the move goes through."""
    outcomes = run_together(
        lambda: services.unlock_workspace(
            fresh(locked), by=support, reason="Customer called", as_of=date(2026, 2, 5)
        ),
        lambda: services.change_to_team(fresh(locked), as_of=date(2026, 2, 5)),
        refusals=(BillingError,),
    )
    assert isinstance(outcomes[1], Subscription)
    assert LockEvent.objects.filter(workspace=locked, to_lock="unlocked").count() == 1
    assert emails("unlocked", to=locked.billing_email) == 1
    assert fresh(locked).lock == "unlocked"


# --- T1, T2, K1, K4: plan and interval changes ----------------------------------------------------


def test_t1_two_moves_to_team_at_once_start_one_trial(run_together):
    ws = workspace(as_of=JAN, card=True)
    move = lambda: services.change_to_team(fresh(ws), as_of=date(2026, 1, 10))  # noqa: E731
    one_won(run_together(move, move, refusals=(BillingError,)))
    team = Subscription.objects.filter(workspace=ws, plan__code="team")
    assert list(team.values_list("trial_end", "ended_on")) == [(date(2026, 1, 24), None)]
    assert Subscription.objects.filter(workspace=ws, ended_on=None).count() == 1


def test_k1_two_cancellations_at_once_issue_one_final_invoice(run_together):
    ws = paid_monthly(JAN)
    cancel = lambda: services.change_to_free(fresh(ws), as_of=date(2026, 1, 20))  # noqa: E731
    one_won(run_together(cancel, cancel, refusals=(BillingError,)))
    assert list(Invoice.objects.filter(workspace=ws).values_list("kind", "number")) == [
        ("final", "INV-2026-000001")
    ]


def test_k4_two_moves_to_annual_at_once_issue_one_final_and_one_annual_invoice(run_together):
    ws = paid_monthly(JAN)
    annual = lambda: services.change_interval(  # noqa: E731
        fresh(ws), interval="annual", as_of=date(2026, 1, 20)
    )
    one_won(run_together(annual, annual, refusals=(BillingError,)))
    kinds = Invoice.objects.filter(workspace=ws).order_by("number").values_list("kind", "number")
    assert list(kinds) == [("final", "INV-2026-000001"), ("annual", "INV-2026-000002")]


# --- W1: closing and reopening --------------------------------------------------------------------


def test_w1_two_closures_at_once_close_once_with_one_final_invoice_and_one_email(
    run_together, support
):
    ws = paid_monthly(JAN)
    close = lambda: services.close_workspace(  # noqa: E731
        fresh(ws), by=support, reason="Customer asked", as_of=date(2026, 1, 20)
    )
    one_won(run_together(close, close, refusals=(BillingError,)))
    assert WorkspaceClosure.objects.filter(workspace=ws).count() == 1
    assert Invoice.objects.filter(workspace=ws, kind="final").count() == 1
    assert emails("workspace_closed", to=ws.billing_email) == 1


def test_w1_k1_a_closure_and_a_cancellation_at_once_bill_the_month_once(run_together, support):
    ws = paid_monthly(JAN)
    run_together(
        lambda: services.close_workspace(
            fresh(ws), by=support, reason="Customer asked", as_of=date(2026, 1, 20)
        ),
        lambda: services.change_to_free(fresh(ws), as_of=date(2026, 1, 20)),
        refusals=(BillingError,),
    )
    assert fresh(ws).closed_on == date(2026, 1, 20)
    assert Invoice.objects.filter(workspace=ws).count() == 1
    assert Subscription.objects.filter(workspace=ws, ended_on=None).count() == 1


def test_w1_two_reopenings_at_once_reopen_once(run_together, support):
    ws = workspace(as_of=JAN)
    services.close_workspace(ws, by=support, reason="Customer asked", as_of=date(2026, 1, 10))
    reopen = lambda: services.reopen_workspace(  # noqa: E731
        fresh(ws), by=support, reason="Came back", as_of=date(2026, 1, 20)
    )
    one_won(run_together(reopen, reopen, refusals=(BillingError,)))
    closure = WorkspaceClosure.objects.get(workspace=ws)
    assert closure.reopened_on == date(2026, 1, 20)
    assert fresh(ws).closed_on is None
    assert closure.history.filter(history_change_reason__startswith="Reopened").count() == 1


# --- I3, K3, I5: voids and credit notes -----------------------------------------------------------


@pytest.fixture
def january(support):
    """Paid monthly from 1 January with a 100.00 grant: January's invoice, 120.00 less 100.00
    of credit (CR2), total 20.00."""
    ws = paid_monthly(JAN)
    coupons.grant_credits(ws, amount="100.00", as_of=JAN, year=1, by=support)
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert (invoice.credits, invoice.total) == (D("100.00"), D("20.00"))
    return invoice


def test_i3_cr2_two_voids_at_once_void_once_and_give_the_credit_back_once(
    january, run_together, finance
):
    void = lambda: services.void_invoice(  # noqa: E731
        fresh(january), by=finance, reason="Issued in error", as_of=date(2026, 2, 5)
    )
    one_won(run_together(void, void, refusals=(BillingError,)))
    assert fresh(january).status == "void"
    grant = CreditGrant.objects.get(workspace=january.workspace)
    assert grant.remaining == D("100.00")
    assert CreditLedgerEntry.objects.filter(grant=grant, kind="return").count() == 1


def test_k3_one_credit_note_approved_twice_at_once_is_approved_once(
    january, run_together, support, finance
):
    note = services.request_credit_note(
        january, by=support, amount="15.00", reason="Goodwill", as_of=date(2026, 2, 3)
    )
    approve = lambda: services.decide_credit_note(  # noqa: E731
        fresh(note), by=finance, approve=True, as_of=date(2026, 2, 5)
    )
    one_won(run_together(approve, approve, refusals=(BillingError,)))
    note = fresh(note)
    assert (note.status, note.sequence) == ("approved", 1)
    assert services.refundable_amount(january) == D("5.00")


def test_k3_i5_two_credit_notes_approved_at_once_get_numbers_one_and_two(
    january, run_together, support, finance
):
    notes = [
        services.request_credit_note(
            january, by=support, amount="10.00", reason=why, as_of=date(2026, 2, 3)
        )
        for why in ("Outage", "Goodwill")
    ]
    run_together(
        *[
            lambda n=n: services.decide_credit_note(
                fresh(n), by=finance, approve=True, as_of=date(2026, 2, 5)
            )
            for n in notes
        ]
    )
    assert sorted(CreditNote.objects.values_list("sequence", flat=True)) == [1, 2]
    assert services.refundable_amount(january) == D("0.00")


def test_k3_i3_a_void_and_a_credit_note_request_at_once_never_both(
    january, run_together, support, finance
):
    """A void and a refund request of the same invoice at once: voided (nothing to refund) or
    refunded-to-be (a waiting request blocks the void), never both."""
    outcomes = run_together(
        lambda: services.void_invoice(
            fresh(january), by=finance, reason="Issued in error", as_of=date(2026, 2, 5)
        ),
        lambda: services.request_credit_note(
            fresh(january), by=support, amount="20.00", reason="Outage", as_of=date(2026, 2, 5)
        ),
        refusals=(BillingError,),
    )
    one_won(outcomes)
    voided = fresh(january).status == "void"
    assert voided != CreditNote.objects.filter(invoice=january).exists()


# --- X4: certificate decisions --------------------------------------------------------------------


@pytest.fixture
def nh_certificate():
    ws = workspace(as_of=JAN, business_region="NH")
    return certificate(ws, "NH", on=date(2026, 1, 5))


def test_x4_a_certificate_approved_twice_at_once_is_approved_once(
    nh_certificate, run_together, finance
):
    approve = lambda: services.approve_exemption(  # noqa: E731
        fresh(nh_certificate), by=finance, as_of=date(2026, 1, 6)
    )
    one_won(run_together(approve, approve, refusals=(BillingError,)))
    cert = fresh(nh_certificate)
    assert (cert.status, cert.decided_on) == ("approved", date(2026, 1, 6))
    assert cert.history.filter(history_change_reason="Approved").count() == 1


def test_x4_a_certificate_approved_and_rejected_at_once_gets_one_decision(
    nh_certificate, run_together, finance
):
    outcomes = run_together(
        lambda: services.approve_exemption(
            fresh(nh_certificate), by=finance, as_of=date(2026, 1, 6)
        ),
        lambda: services.reject_exemption(
            fresh(nh_certificate), by=finance, reason="Expired", as_of=date(2026, 1, 6)
        ),
        refusals=(BillingError,),
    )
    won = one_won(outcomes)
    assert fresh(nh_certificate).status == won.status
    decided = TaxExemption.history.filter(id=nh_certificate.pk, status__in=["approved", "rejected"])
    assert decided.count() == 1


# --- S3, S4, S5: application decisions ------------------------------------------------------------


@pytest.fixture
def member_application():
    """Passes every check; its workspace on paid monthly Team (S7 has nothing to say)."""
    return application(workspace=paid_monthly(JAN), as_of=date(2026, 1, 20))


def test_s3_s4_an_application_approved_twice_at_once_redeems_grants_and_emails_once(
    member_application, run_together, reviewer
):
    approve = lambda: startups.approve_application(  # noqa: E731
        fresh(member_application), by=reviewer, as_of=date(2026, 1, 21)
    )
    one_won(run_together(approve, approve, refusals=(BillingError,)))
    ws = member_application.workspace
    assert fresh(member_application).status == "approved"
    assert Redemption.objects.filter(workspace=ws, coupon__code="STARTUP").count() == 1
    assert list(CreditGrant.objects.filter(workspace=ws).values_list("year", "amount")) == [
        (1, D("25000.00"))
    ]
    assert emails("startup_application_accepted") == 1


def test_s3_s5_an_application_approved_and_rejected_at_once_gets_one_decision_and_email(
    member_application, run_together, reviewer
):
    outcomes = run_together(
        lambda: startups.approve_application(
            fresh(member_application), by=reviewer, as_of=date(2026, 1, 21)
        ),
        lambda: startups.reject_application(
            fresh(member_application), by=reviewer, reason="Not a fit", as_of=date(2026, 1, 21)
        ),
        refusals=(BillingError,),
    )
    won = one_won(outcomes)
    assert fresh(member_application).status == won.status
    sent = emails("startup_application_accepted") + emails("startup_application_rejected")
    assert sent == 1
    assert CreditGrant.objects.exists() == (won.status == "approved")


def test_s3_c2_two_applications_of_one_workspace_approved_at_once_approve_one(
    run_together, reviewer
):
    """Two companies' applications name one workspace (each fails E5 while the other is
    open); two reviewers approve them at once, overriding. One is approved, with one STARTUP
    redemption and one grant; the other is refused with a message (one approval per
    workspace), not an IntegrityError."""
    from django.contrib.auth.models import Permission

    reviewer.user_permissions.add(Permission.objects.get(codename="override_eligibility"))
    ws = paid_monthly(JAN)
    first = application(workspace=ws, as_of=date(2026, 1, 20))
    second = application(workspace=ws, as_of=date(2026, 1, 20))

    def approve(app):
        return lambda: startups.approve_application(
            fresh(app),
            by=fresh(reviewer),
            override_reason="Two entities, one product",
            as_of=date(2026, 1, 21),
        )

    one_won(run_together(approve(first), approve(second), refusals=(BillingError,)))
    assert StartupApplication.objects.filter(status="approved").count() == 1
    assert Redemption.objects.filter(workspace=ws).count() == 1
    assert CreditGrant.objects.filter(workspace=ws).count() == 1


# --- CR3: year two --------------------------------------------------------------------------------


@pytest.fixture
def renewal_due(reviewer):
    return renewal_review_due(by=reviewer)


def _confirm(review, reviewer):
    return lambda: confirm_year_two(review.application, by=reviewer, as_of=date(2027, 1, 22))


def test_cr3_year_two_confirmed_twice_at_once_is_granted_once(renewal_due, run_together, reviewer):
    confirm = _confirm(renewal_due, reviewer)
    one_won(run_together(confirm, confirm, refusals=(BillingError,)))
    ws = renewal_due.application.workspace
    assert CreditGrant.objects.filter(workspace=ws, year=2).count() == 1
    assert fresh(renewal_due).status == "confirmed"


def test_cr3_year_two_confirmed_and_declined_at_once_gets_one_decision(
    renewal_due, run_together, reviewer
):
    outcomes = run_together(
        _confirm(renewal_due, reviewer),
        lambda: startups.decline_renewal(
            fresh(renewal_due), by=reviewer, note="Raised too much", as_of=date(2027, 1, 22)
        ),
        refusals=(BillingError,),
    )
    won = one_won(outcomes)
    ws = renewal_due.application.workspace
    assert fresh(renewal_due).status == won.status
    assert CreditGrant.objects.filter(workspace=ws, year=2).exists() == (won.status == "confirmed")


# --- S6: partner deals ----------------------------------------------------------------------------


@pytest.fixture
def approved_member(member_application, reviewer):
    return startups.approve_application(member_application, by=reviewer, as_of=date(2026, 1, 21))


def test_s6_a_deal_requested_twice_at_once_is_requested_once(
    approved_member, run_together, reviewer
):
    deal = startups.save_partner_deal(
        None, by=reviewer, company="Cloudy", title="$5k credits", description="", active=True
    )
    request = lambda: startups.request_deal(  # noqa: E731
        fresh(approved_member), deal=deal, as_of=date(2026, 1, 25)
    )
    one_won(run_together(request, request, refusals=(BillingError,)))
    assert DealRequest.objects.count() == 1


def test_s6_a_deal_request_fulfilled_and_declined_at_once_gets_one_decision(
    approved_member, run_together, reviewer
):
    deal = startups.save_partner_deal(
        None, by=reviewer, company="Cloudy", title="$5k credits", description="", active=True
    )
    request = startups.request_deal(approved_member, deal=deal, as_of=date(2026, 1, 25))
    outcomes = run_together(
        lambda: startups.decide_deal_request(
            fresh(request), by=reviewer, fulfil=True, as_of=date(2026, 1, 26)
        ),
        lambda: startups.decide_deal_request(
            fresh(request), by=reviewer, fulfil=False, note="Out of stock", as_of=date(2026, 1, 26)
        ),
        refusals=(BillingError,),
    )
    won = one_won(outcomes)
    assert fresh(request).status == won.status


# --- C7: partner decisions ------------------------------------------------------------------------


@pytest.fixture
def seedcamp():
    return coupons.apply_as_partner(
        "Seedcamp",
        contact_name="Reshma",
        contact_email="hello@seedcamp.example.com",
        as_of=date(2026, 1, 5),
    )


def test_c7_a_partner_approved_twice_at_once_is_approved_once_and_emailed_once(
    seedcamp, run_together, reviewer
):
    approve = lambda: coupons.approve_partner(  # noqa: E731
        fresh(seedcamp), by=reviewer, as_of=date(2026, 1, 10)
    )
    one_won(run_together(approve, approve, refusals=(BillingError,)))
    assert fresh(seedcamp).status == "active"
    assert emails("partner_approved") == 1


def test_c7_a_partner_approved_and_declined_at_once_gets_one_decision_and_email(
    seedcamp, run_together, reviewer
):
    """Two reviewers open Seedcamp's application (applied): one declines it, the other
    approves it, at the same moment. When the approval came second it went through: approving
    re-activates an inactive program (C7's DECIDED_FROM), so Seedcamp ended up active and its
    contact got "declined" and then "approved" (in a free race, 6 runs of 8). The page passes
    the status it approved from, read before the decline committed; the service refuses the
    approval when the status it finds under the lock is another. The decline is held to commit
    first here."""
    seen = seedcamp.status  # the approving reviewer's page, read before the decline
    declined = threading.Event()

    def decline():
        try:
            return coupons.decline_partner(
                fresh(seedcamp), by=reviewer, reason="Not a program", as_of=date(2026, 1, 10)
            )
        finally:
            declined.set()

    def approve():
        assert declined.wait(20)
        return coupons.approve_partner(
            fresh(seedcamp), by=reviewer, as_of=date(2026, 1, 10), decided_from=seen
        )

    won = one_won(run_together(decline, approve, refusals=(BillingError,)))
    assert fresh(seedcamp).status == won.status == "inactive"
    assert emails("partner_approved") + emails("partner_declined") == 1


def test_c7_an_inactive_partner_approved_while_its_name_applies_again_keeps_one_program(
    seedcamp, run_together, reviewer
):
    """C7's one program per name (the code's own rule: `name_taken_problem`): Seedcamp was
    declined, which frees its name. A new "Seedcamp" applies through the public form while a
    reviewer approves the declined one again: two programs named Seedcamp, one active and one
    applied. `approve_partner` never asked whether the name was taken (nor did
    `update_partner`), so this happened one after the other as well. They take turns on the
    name with the public form now, and the second is refused."""
    coupons.decline_partner(seedcamp, by=reviewer, reason="Not yet", as_of=date(2026, 1, 6))
    run_together(
        lambda: coupons.apply_as_partner(
            "Seedcamp",
            contact_name="Other",
            contact_email="other@seedcamp.example.com",
            as_of=date(2026, 1, 10),
        ),
        lambda: coupons.approve_partner(fresh(seedcamp), by=reviewer, as_of=date(2026, 1, 10)),
        refusals=(BillingError,),
    )
    alive = AcceleratorPartner.objects.filter(name__iexact="seedcamp").exclude(status="inactive")
    assert alive.count() == 1


# --- C2, C5, C6: discounts and proofs -------------------------------------------------------------


def test_c5_a_discount_removed_twice_at_once_is_removed_once(run_together, support):
    ws = paid_monthly(JAN)
    promo = coupon(percent_off="25", duration="forever")
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 1, 5))
    remove = lambda: coupons.remove_discount(  # noqa: E731
        fresh(ws), by=support, reason="Ended early", as_of=date(2026, 1, 10)
    )
    one_won(run_together(remove, remove, refusals=(BillingError,)))
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == ("removed", date(2026, 1, 10))


def test_c2_two_different_discounts_applied_at_once_leave_one_active(run_together, support):
    """One active discount at a time (C2): two agents apply two promotions at once."""
    ws = paid_monthly(JAN)
    codes = [coupon(percent_off="10").code, coupon(amount_off="20").code]
    one_won(
        run_together(
            *[
                lambda c=c: coupons.redeem_coupon(fresh(ws), c, by=support, as_of=date(2026, 1, 5))
                for c in codes
            ],
            refusals=(BillingError,),
        )
    )
    assert Redemption.objects.filter(workspace=ws).count() == 1


def test_c6_a_proof_approved_twice_at_once_applies_nonprofit_once(run_together, support):
    ws = paid_monthly(JAN)
    proof = coupons.submit_nonprofit_proof(
        ws, document=ContentFile(PDF, name="status.pdf"), by=support, as_of=date(2026, 1, 5)
    )
    approve = lambda: coupons.approve_nonprofit_proof(  # noqa: E731
        fresh(proof), by=support, as_of=date(2026, 1, 6)
    )
    one_won(run_together(approve, approve, refusals=(BillingError,)))
    assert fresh(proof).status == NonprofitProof.Status.APPROVED
    assert Redemption.objects.filter(workspace=ws, coupon__code="NONPROFIT").count() == 1


# --- G2: campaigns --------------------------------------------------------------------------------


def test_g2_a_campaign_launched_twice_at_once_emails_each_workspace_once(run_together, support):
    for _ in range(5):
        workspace(as_of=JAN)
    promo = coupon(percent_off="25", duration="once")
    campaign = coupons.create_campaign(
        "Spring", promo.code, "25% off", "Spring is here.", {"plan": "free"}, by=support
    )
    launch = lambda: coupons.launch_campaign(  # noqa: E731
        fresh(campaign), by=support, as_of=date(2026, 2, 2)
    )
    added = run_together(launch, launch, refusals=(BillingError,))
    assert sorted(added) == [0, 5]
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 5
    assert emails("campaign") == 5
    assert not CampaignRecipient.objects.filter(campaign=campaign, email=None).exists()
    assert Campaign.objects.get(pk=campaign.pk).launched_on == date(2026, 2, 2)


# --- E3: territories ------------------------------------------------------------------------------


def test_e3_the_program_opened_in_a_country_twice_at_once_is_opened_once(
    monkeypatch, run_together, reviewer
):
    """Cuba is not seeded (E3: no row at all). Two reviewers open the program there at once:
    `set_territory` locks the country's row, but there is none to lock, so both pass the
    "already open" check and both insert; the second insert fails on the country's unique
    index: IntegrityError (a 500) instead of "The program is already open in Cuba". The two
    are held after their check here; started together without that, it failed 8 runs of 8."""
    both_checked_then_write(monkeypatch, startups, "save_with_reason")
    open_cuba = lambda: startups.set_territory(  # noqa: E731
        "CU", active=True, by=reviewer, reason="Sanctions lifted"
    )
    one_won(run_together(open_cuba, open_cuba, refusals=(BillingError,)))
    assert list(EligibleTerritory.objects.filter(country="CU").values_list("active")) == [(True,)]


# --- More once-only writes ------------------------------------------------------------------------


def test_u2_an_import_job_run_by_two_workers_at_once_imports_once(run_together, private_media):
    """The sweep handed a job over again while its first worker was on it: one imports it, the
    other waits for it, finds it finished and leaves it (`run_import_job` returns None); each
    figure is written once."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing.models import UsageImportJob

    workspace(slug="alpha", as_of=JAN)
    upload = SimpleUploadedFile("big.csv", b"workspace,month,mtus\nalpha,2026-01,1000\n")
    job = usage_import.start_import_job(upload, by=None, run_later=lambda job_id: None)
    run = lambda: usage_import.run_import_job(job.pk)  # noqa: E731
    outcomes = run_together(run, run)
    assert sorted(o is None for o in outcomes) == [False, True]
    assert UsageImportJob.objects.get(pk=job.pk).status == "done"
    assert Usage.objects.get().mtus == 1000
    assert Usage.history.count() == 1


def test_u2_a_job_delivered_again_while_its_killed_workers_session_holds_it_is_imported(
    run_together, private_media
):
    """The usage import audit: a worker killed mid-import had its task delivered again at once,
    while the database still ran the dead worker's query, its lock on the job's row held for
    a second or two. The copy skipped the locked row and returned, its message was
    acknowledged, and the job read "running" for 50 minutes, until the sweep. The copy now
    waits for the row and imports the job."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing.models import UsageImportJob

    workspace(slug="alpha", as_of=JAN)
    upload = SimpleUploadedFile("big.csv", b"workspace,month,mtus\nalpha,2026-01,1000\n")
    job = usage_import.start_import_job(upload, by=None, run_later=lambda job_id: None)
    UsageImportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    held = threading.Event()

    def killed_workers_session():
        with transaction.atomic():
            UsageImportJob.objects.select_for_update().get(pk=job.pk)
            held.set()
            time.sleep(1)  # until the database ends the dead worker's session

    def delivered_again():
        assert held.wait(10)
        return usage_import.run_import_job(job.pk)

    _, again = run_together(killed_workers_session, delivered_again)
    assert again is not None and again.status == "done"
    assert Usage.objects.get().mtus == 1000


def test_x4_x5_a_certificate_uploaded_twice_at_once_is_stored_once(
    run_together, private_media, support
):
    """The upload sent twice at once (a double click): one certificate waits for finance; the
    other is refused and its file is not left in storage."""
    ws = workspace(as_of=JAN, business_region="NH")
    upload = lambda: certificate(fresh(ws), "NH", on=date(2026, 1, 5), by=support)  # noqa: E731
    one_won(run_together(upload, upload, refusals=(BillingError,)))
    assert TaxExemption.objects.filter(workspace=ws).count() == 1
    assert len([p for p in private_media.rglob("*") if p.is_file()]) == 1


def test_t6_two_runs_of_the_trial_reminders_at_once_send_one(run_together):
    """T6: once. A Team sign-up without a card on 1 January ends its trial on 15 January; on
    12 January two runs of the reminder step at once send one reminder."""
    ws = workspace(as_of=JAN, plan="team")
    remind = lambda: services.send_trial_reminders(as_of=date(2026, 1, 12))  # noqa: E731
    assert sorted(run_together(remind, remind)) == [0, 1]
    assert emails("trial_reminder", to=ws.billing_email) == 1


def test_cr1_a_year_one_grant_made_twice_at_once_is_made_once(run_together, support):
    ws = paid_monthly(JAN)
    grant = lambda: coupons.grant_credits(  # noqa: E731
        fresh(ws), amount="500.00", as_of=date(2026, 1, 5), year=1, by=support
    )
    one_won(run_together(grant, grant, refusals=(BillingError,)))
    assert list(CreditGrant.objects.filter(workspace=ws).values_list("year", "remaining")) == [
        (1, D("500.00"))
    ]
    assert CreditLedgerEntry.objects.filter(grant__workspace=ws).count() == 1


@pytest.fixture
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.MEDIA_ROOT
