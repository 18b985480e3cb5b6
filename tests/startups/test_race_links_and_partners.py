"""E5, C7 on PostgreSQL: real operations at the same moment, each in its own connection. A link
of a workspace and a submission for it left both applications passing E5; an approval at the
moment its partner was approved took STARTUP, not the partner's own coupon."""

import time
from datetime import date

import pytest

import coupons.partners as partners_module
import startups.services
from coupons import services as coupons
from coupons.models import AcceleratorPartner, Redemption
from startups import services
from startups.models import StartupApplication
from tests.billing.factories import workspace
from tests.coupons.factories import coupon
from tests.services import require_postgres

from .factories import application

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def e5(app):
    app.refresh_from_db()
    return next(check for check in app.checks if check["id"] == "E5")


def test_e5_a_link_and_a_submission_of_one_workspace_at_once_both_pass_e5(
    run_together, monkeypatch, reviewer
):
    """A reviewer links Nimbus's workspace to the open application of "Lumen Data" while staff
    enter a new application of "Nimbus Labs" for the same workspace. Two open applications of
    one workspace: E5 fails on both (SPEC S2, E5). Here both store "E5 passes": the link does
    not take its turn with submissions of the workspace (billing.turns), and the submission's
    `_refresh_e5_of_others` cannot see the link that has not committed yet."""
    require_postgres()
    ws = workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")
    lumen = application(company_name="Lumen Data", as_of=date(2026, 1, 10))
    assert e5(lumen)["passed"]

    link = services.link_application
    save = startups.services.save_with_reason

    def slow_link_save(obj, reason, *args, **kwargs):
        if reason.startswith("Linked"):
            time.sleep(0.6)  # a slow database between the link's check and its write
        return save(obj, reason, *args, **kwargs)

    monkeypatch.setattr(startups.services, "save_with_reason", slow_link_save)

    def link_workspace():
        app = StartupApplication.objects.get(pk=lumen.pk)
        return link(
            app,
            by=reviewer,
            workspace=ws,
            partner=None,
            as_of=date(2026, 1, 12),
            reason="Ticket 12",
        )

    def submit_for_workspace():
        time.sleep(0.2)
        return application(
            company_name="Nimbus Labs", workspace=ws, by=reviewer, as_of=date(2026, 1, 12)
        )

    run_together(link_workspace, submit_for_workspace)

    apps = list(StartupApplication.objects.open().filter(workspace=ws))
    assert len(apps) == 2
    assert not any(e5(app)["passed"] for app in apps), [e5(app) for app in apps]


def test_c7_an_approval_at_the_moment_its_partner_is_approved_skips_the_partners_coupon(
    run_together, monkeypatch, reviewer, support
):
    """Seedcamp has applied; staff approve it on 20 January, while a reviewer approves one of
    its startups, dated 20 January too. Its own startup-program coupon SEEDCAMP is ready.
    The startup's approval waits for the partner's (`partner_date_order_problem` holds the
    partner's row), so it comes after it: an active partner's startup gets the partner's own
    coupon (C7). Here it got STARTUP: the approval read the partner's status (applied) from
    `application.partner`, loaded before the partner's approval committed and never read again
    after the wait; SEEDCAMP's redemption count and report miss it."""
    require_postgres()
    partner = coupons.apply_as_partner(
        "Seedcamp", contact_name="Sam", contact_email="sam@example.com", as_of=date(2026, 1, 2)
    )
    coupon(code="SEEDCAMP", kind="startup_program", credit_amount="50000.00", partner=partner)
    ws = workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")
    app = application(workspace=ws, partner=partner, as_of=date(2026, 1, 10))

    save = partners_module.save_with_reason

    def slow_decision_save(obj, reason, *args, **kwargs):
        if isinstance(obj, AcceleratorPartner):
            time.sleep(0.6)  # the partner's row held, as a slow database would
        return save(obj, reason, *args, **kwargs)

    monkeypatch.setattr(partners_module, "save_with_reason", slow_decision_save)

    def approve_the_partner():
        return coupons.approve_partner(
            AcceleratorPartner.objects.get(pk=partner.pk), by=support, as_of=date(2026, 1, 20)
        )

    def approve_the_startup():
        time.sleep(0.2)
        return services.approve_application(
            StartupApplication.objects.get(pk=app.pk),
            by=reviewer,
            as_of=date(2026, 1, 20),
            credits_scope_confirmed=True,
        )

    run_together(approve_the_partner, approve_the_startup)

    assert AcceleratorPartner.objects.get(pk=partner.pk).status == "active"
    redemption = Redemption.objects.get(workspace=ws)
    assert redemption.coupon.code == "SEEDCAMP"


def test_control_in_turn_the_startup_of_a_just_approved_partner_gets_its_coupon(reviewer, support):
    """The same two approvals one after the other: SEEDCAMP (passes; the control of the above)."""
    partner = coupons.apply_as_partner(
        "Seedcamp", contact_name="Sam", contact_email="sam@example.com", as_of=date(2026, 1, 2)
    )
    coupon(code="SEEDCAMP", kind="startup_program", credit_amount="50000.00", partner=partner)
    ws = workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")
    app = application(workspace=ws, partner=partner, as_of=date(2026, 1, 10))
    coupons.approve_partner(partner, by=support, as_of=date(2026, 1, 20))
    services.approve_application(
        StartupApplication.objects.get(pk=app.pk),
        by=reviewer,
        as_of=date(2026, 1, 20),
        credits_scope_confirmed=True,
    )
    assert Redemption.objects.get(workspace=ws).coupon.code == "SEEDCAMP"
