"""D4 on PostgreSQL: a plan's terms changed while a dated change that reads them is entered.
A terms change takes the clock's row for itself (`clock.hold_every_dated_change`): the dated
change waits for it and reads the new terms, as in one order of entry."""

import threading
from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connections

from billing import plans, services
from billing.models import Invoice, Plan, PlanTerms, Subscription, Workspace
from billing.services import update_plan
from tests.billing.factories import paid_annual, workspace
from tests.services import require_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def team():
    return Plan.objects.get(code="team")


def _while_update_plan_checks(monkeypatch, elsewhere):
    """Run `elsewhere` in another connection once update_plan has made its D4 checks, before
    it commits; returns (thread, errors)."""
    return _while_plans_checks(monkeypatch, "_refuse_out_of_order", elsewhere)


def _while_plans_checks(monkeypatch, check, elsewhere):
    """Run `elsewhere` in another connection once a service of billing.plans has made its D4
    check `check`, before it commits; returns (thread, errors)."""
    errors, state = [], {}
    real = getattr(plans, check)

    def run():
        try:
            elsewhere()
        except Exception as exc:  # looked at by the test
            errors.append(exc)
        finally:
            connections.close_all()

    def checked(*args, **kwargs):
        outcome = real(*args, **kwargs)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(3)  # done, or waiting for the change to commit
        state["thread"] = thread
        return outcome

    monkeypatch.setattr(plans, check, checked)
    return state, errors


def test_d4_a_trial_started_while_its_length_changes_gets_the_new_length(monkeypatch, finance):
    """T1, D4: the clock has processed 1 April. Support moves a workspace to Team dated 10 April
    while finance sets the trial to 30 days from 5 April. The move read 14 days before the
    change committed, and the change had found no move: a 14-day trial under terms that say
    30 from 5 April. The move now waits for the change: a 30-day trial."""
    require_postgres()
    ws = workspace(as_of=date(2026, 3, 1), card=True)
    services.run_billing(as_of=date(2026, 4, 1))
    state, errors = _while_update_plan_checks(
        monkeypatch,
        lambda: services.change_to_team(Workspace.objects.get(pk=ws.pk), as_of=date(2026, 4, 10)),
    )
    update_plan(team(), by=finance, reason="Longer", effective_on=date(2026, 4, 5), trial_days=30)
    state["thread"].join(20)
    assert not errors, errors
    sub = Subscription.objects.get(workspace=ws, plan__code="team")
    assert PlanTerms.objects.of(date(2026, 4, 10), plan__code="team").trial_days == 30
    assert sub.trial_end == date(2026, 5, 10)


def test_d4_an_annual_renewal_entered_while_the_annual_price_changes_gets_the_new_price(
    monkeypatch, finance
):
    """K2, D4: an annual term from 10 April 2025 renews on 10 April 2026. The clock has processed
    1 April 2026. A cancellation dated 20 April (entered ahead of the clock, it renews the term
    on 10 April first, at that day's terms) is entered while finance sets the annual price to
    1,800.00 from 5 April. The renewal was issued at 1,440.00 and the change kept; the
    cancellation now waits for the change, and the term renews at 1,800.00."""
    require_postgres()
    ws = paid_annual(date(2025, 4, 10))
    services.run_billing(as_of=date(2026, 4, 1))
    state, errors = _while_update_plan_checks(
        monkeypatch,
        lambda: services.change_to_free(Workspace.objects.get(pk=ws.pk), as_of=date(2026, 4, 20)),
    )
    update_plan(
        team(), by=finance, reason="Annual", effective_on=date(2026, 4, 5), annual_price="1800.00"
    )
    state["thread"].join(20)
    assert not errors, errors
    renewal = Invoice.objects.get(workspace=ws, kind="annual", issue_date=date(2026, 4, 10))
    assert renewal.total == D("1800.00")


def test_d4_a_trial_started_while_its_terms_are_withdrawn_gets_the_terms_left(monkeypatch, finance):
    """T1, D4: the clock has processed 1 April; trials are 30 days from 5 April. Support moves a
    workspace to Team dated 10 April while finance withdraws those terms. Without turns, the
    move reads 30 days (the withdrawal not committed yet) and the withdrawal finds no move: a
    30-day trial under terms of 14. The move waits for the withdrawal: a 14-day trial."""
    require_postgres()
    ws = workspace(as_of=date(2026, 3, 1), card=True)
    services.run_billing(as_of=date(2026, 4, 1))
    update_plan(team(), by=finance, reason="Longer", effective_on=date(2026, 4, 5), trial_days=30)
    state, errors = _while_plans_checks(
        monkeypatch,
        "withdrawal_refusal",
        lambda: services.change_to_team(Workspace.objects.get(pk=ws.pk), as_of=date(2026, 4, 10)),
    )
    services.withdraw_plan_terms(
        team().terms.get(effective_on=date(2026, 4, 5)), by=finance, reason="Not yet"
    )
    state["thread"].join(20)
    assert not errors, errors
    sub = Subscription.objects.get(workspace=ws, plan__code="team")
    assert PlanTerms.objects.of(date(2026, 4, 10), plan__code="team").trial_days == 14
    assert sub.trial_end == date(2026, 4, 24)
