"""E5 on PostgreSQL: changes to the applications of one company or workspace take turns
before they lock any row (`startups.services._take_e5_turns`). They locked their own
application's row first, then waited for the turn, then took the other open applications'
rows to evaluate them again: two such changes on the two applications of one company took the
same locks in opposite orders, and PostgreSQL aborted one (deadlock detected, a 500). A link
took the turn of the workspace it moved to, not of the one it left."""

import time
from datetime import date

import pytest

import startups.services
from startups import services
from startups.models import StartupApplication
from tests.billing.factories import workspace
from tests.services import require_postgres
from tests.startups.factories import application

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def e5(app):
    app.refresh_from_db()
    return next(check for check in app.checks if check["id"] == "E5")


def _slow_save(monkeypatch, prefix, seconds=0.6):
    """The write of an application whose reason starts with `prefix` is slow (a busy database):
    between its E5 turn and its refresh of the others."""
    save = startups.services.save_with_reason

    def slow(obj, reason, *args, **kwargs):
        if isinstance(obj, StartupApplication) and reason.startswith(prefix):
            time.sleep(seconds)
        return save(obj, reason, *args, **kwargs)

    monkeypatch.setattr(startups.services, "save_with_reason", slow)


def test_e5_two_withdrawals_of_one_companys_applications_at_once_both_go_through(
    run_together, monkeypatch, reviewer
):
    """Lumen Data has two open applications (#A, #B; E5 fails on both). Its founder withdraws
    one while a reviewer withdraws the other. Expected (S3, R4): both withdrawn. It was a
    deadlock — A's withdrawal holds A's row and the company's E5 turn and waits for B's row
    (`_refresh_e5_of_others`); B's holds B's row and waits for the turn."""
    require_postgres()
    first = application(company_name="Lumen Data", as_of=date(2026, 1, 10))
    second = application(company_name="Lumen Data Inc.", as_of=date(2026, 1, 11))
    assert not e5(first)["passed"] and not e5(second)["passed"]
    _slow_save(monkeypatch, "Withdrawn")

    def withdraw_first():
        return services.withdraw_application(
            StartupApplication.objects.get(pk=first.pk),
            by=reviewer,
            as_of=date(2026, 1, 12),
            reason="Applied twice",
        )

    def withdraw_second():
        time.sleep(0.2)
        return services.withdraw_application(
            StartupApplication.objects.get(pk=second.pk),
            by=reviewer,
            as_of=date(2026, 1, 12),
            reason="Founder asked",
        )

    run_together(withdraw_first, withdraw_second)
    assert set(StartupApplication.objects.values_list("status", flat=True)) == {"withdrawn"}


def test_e5_a_withdrawal_while_the_company_submits_again_both_go_through(
    run_together, monkeypatch, reviewer
):
    """Lumen Data's application #A is open. The founder withdraws it while staff enter a new
    application of Lumen Data. Expected: A withdrawn, the new one open and passing E5 (A is no
    longer open).  It was a deadlock — the withdrawal holds A's row and waits for the company's
    E5 turn; the submission holds the turn and, telling the others (`_refresh_e5_of_others`),
    waits for A's row."""
    require_postgres()
    first = application(company_name="Lumen Data", as_of=date(2026, 1, 10))
    _slow_save(monkeypatch, "Submitted")

    def submit_again():
        return application(company_name="Lumen Data", by=reviewer, as_of=date(2026, 1, 12))

    def withdraw_first():
        time.sleep(0.2)
        return services.withdraw_application(
            StartupApplication.objects.get(pk=first.pk),
            by=reviewer,
            as_of=date(2026, 1, 12),
            reason="Applied again",
        )

    new, _ = run_together(submit_again, withdraw_first)
    assert StartupApplication.objects.get(pk=first.pk).status == "withdrawn"
    assert StartupApplication.objects.get(pk=new.pk).is_open


def test_e5_an_approval_while_another_application_is_linked_to_its_workspace_take_turns(
    run_together, monkeypatch, reviewer
):
    """Nimbus Labs' application is linked to workspace nimbus and passes every check. A
    reviewer approves it while another reviewer links the application of "Lumen Data" to the
    same workspace. Expected: one after the other — both commit (the approval first, the link
    then passes E5; or the link first, and the approval is refused on E5).  It was a deadlock —
    the link holds Lumen's row and the workspace's E5 turn and waits for Nimbus's row; the
    approval holds Nimbus's row and waits for the workspace's turn."""
    require_postgres()
    ws = workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")
    nimbus = application(company_name="Nimbus Labs", workspace=ws, as_of=date(2026, 1, 10))
    lumen = application(company_name="Lumen Data", as_of=date(2026, 1, 10))
    assert e5(nimbus)["passed"] and e5(lumen)["passed"]
    _slow_save(monkeypatch, "Linked")

    def link():
        return services.link_application(
            StartupApplication.objects.get(pk=lumen.pk),
            by=reviewer,
            workspace=ws,
            partner=None,
            as_of=date(2026, 1, 12),
            reason="Ticket 12",
        )

    def approve():
        time.sleep(0.2)
        return services.approve_application(
            StartupApplication.objects.get(pk=nimbus.pk),
            by=reviewer,
            as_of=date(2026, 1, 12),
            credits_scope_confirmed=True,
        )

    run_together(link, approve, refusals=(services.ApplicationError,))
    lumen.refresh_from_db()
    assert lumen.workspace_id == ws.pk


def test_e5_a_link_moving_an_application_away_while_one_is_submitted_for_its_old_workspace(
    run_together, monkeypatch, reviewer
):
    """Lumen Data's application is linked to workspace nimbus. A reviewer links it to workspace
    orbit instead, while staff enter an application of "Nimbus Labs" for nimbus. Once both
    have committed, Nimbus Labs' application is the only open one of its company and of
    nimbus: E5 passes (SPEC S2, E5; today's E5 fix re-evaluates the others when one moves).
    It was stored failing E5 ("Application #… for the same workspace is still open").
    The link takes its E5 turn on its new workspace only (`_take_e5_turns` after the
    workspace is set), not on `moved_from`, so the submission for nimbus does not wait for it;
    it reads Lumen still on nimbus, and its refresh of the others drops Lumen once the link
    commits (Lumen is on orbit then), leaving its own stored check stale."""
    require_postgres()
    nimbus = workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")
    orbit = workspace(as_of=date(2026, 1, 2), card=True, slug="orbit")
    lumen = application(company_name="Lumen Data", workspace=nimbus, as_of=date(2026, 1, 10))
    _slow_save(monkeypatch, "Linked")

    def move():
        return services.link_application(
            StartupApplication.objects.get(pk=lumen.pk),
            by=reviewer,
            workspace=orbit,
            partner=None,
            as_of=date(2026, 1, 12),
            reason="Ticket 12",
        )

    def submit_for_nimbus():
        time.sleep(0.2)
        return application(
            company_name="Nimbus Labs", workspace=nimbus, by=reviewer, as_of=date(2026, 1, 12)
        )

    _, new = run_together(move, submit_for_nimbus)
    assert StartupApplication.objects.get(pk=lumen.pk).workspace_id == orbit.pk
    assert list(StartupApplication.objects.open().filter(workspace=nimbus)) == [new]
    assert e5(new)["passed"], e5(new)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_s1_two_forms_naming_one_address_at_once_send_it_one_confirmation(
    run_together, monkeypatch
):
    """One confirmation a day per address, forms posted at the same moment too: two forms
    naming victim@example.org (two client addresses, two companies: no E5 turn in common) each
    read the day's other applications before the other's commit, and both sent (2, not 1)."""
    from billing.models import OutboundEmail

    require_postgres()
    save = startups.services.save_with_reason

    def slow(obj, reason, *args, **kwargs):  # a busy database: both forms in flight together
        if isinstance(obj, StartupApplication) and reason == "Submitted":
            time.sleep(0.5)
        return save(obj, reason, *args, **kwargs)

    monkeypatch.setattr(startups.services, "save_with_reason", slow)
    run_together(
        lambda: application(company_name="Alpha Labs", contact_email="victim@example.org"),
        lambda: application(company_name="Beta Works", contact_email="Victim@example.org"),
    )
    assert StartupApplication.objects.count() == 2
    confirmations = OutboundEmail.objects.filter(
        kind="startup_application_received", to__iexact="victim@example.org"
    )
    assert confirmations.count() == 1
