"""R4: every history row says who and why, also for what the billing clock does and for what a
person's change does beside its main row. The history audit found the clock's trial and term
ends saved with no why (and, caught up inside a staff change, under that person's name and
reason), a move to Team's unlock without the typed reason, a credit-note request's row
reading only "Requested", renewal reviews opened with no history, and field names read as
code ("Changed contact_name")."""

from datetime import date
from decimal import Decimal as D

from django.urls import reverse

from billing import services
from billing.models import LockEvent, Subscription, Workspace
from coupons.partners import update_partner
from startups import services as startups
from startups.models import DealRequest, PartnerDeal, RenewalReview
from tests.admin_pages import as_shown
from tests.billing.factories import paid_monthly, workspace
from tests.coupons.factories import partner as accelerator
from tests.startups.factories import application


def reasons(sub: Subscription) -> list[tuple[str, str | None, object]]:
    """The subscription's history, oldest first: (type, why, who)."""
    return [
        (row.history_type, row.history_change_reason, row.history_user)
        for row in sub.history.order_by("history_id")
    ]


def test_r4_t4_the_clock_ends_a_trial_under_its_own_name_and_cause(db):
    """A trial started 10 January 2026 without a card ends on 24 January (T3): back to Free
    that day (T4). Its rows say so, by no user; the Free subscription says the same."""
    ws = workspace(as_of=date(2026, 1, 10), plan="team")
    trial = ws.subscriptions.get()
    assert reasons(trial) == [("+", "Signed up", None)]
    services.run_billing(as_of=date(2026, 1, 24))
    ended = "Trial ended 24 Jan 2026 without a card: back to Free (T4)"
    assert reasons(trial)[1:] == [("~", ended, None)]
    free = ws.subscriptions.get(ended_on=None)
    assert reasons(free) == [("+", ended, None)]


def test_r4_t4_k2_caught_up_inside_a_staff_change_the_clock_s_rows_stay_the_clock_s(
    client, support, pin_today
):
    """A trial with a card ends on 24 January 2026; the clock has not run when support
    cancels on 26 January from the plan page. The change first applies the trial's end (D1):
    that row read "Cancelled or moved to Free: Ticket 7" by support. It is the clock's, and
    only the cancellation is support's."""
    ws = workspace(as_of=date(2026, 1, 10), plan="team", card=True)
    trial = ws.subscriptions.get()
    pin_today(date(2026, 1, 26))
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "plan"])
    client.post(url, as_shown(client, url, {"plan": "free", "reason": "Ticket 7"}))
    assert reasons(trial) == [
        ("+", "Signed up", None),
        ("~", "Trial ended 24 Jan 2026 with a card on file: paid Team (T4)", None),
        ("~", "Cancelled or moved to Free: Ticket 7", support),
    ]


def test_r4_k2_the_clock_renews_an_annual_term_under_its_own_cause(db):
    ws = paid_monthly(as_of=date(2026, 1, 5), interval="annual")
    term = ws.subscriptions.get(ended_on=None)
    services.run_billing(as_of=date(2027, 1, 5))
    assert reasons(term)[-1] == ("~", "Annual term renewed 5 Jan 2027 (K2)", None)


def test_r4_f4_a_move_to_team_keeps_who_lifted_the_lock_and_why(client, support, pin_today):
    """December 2025 over the Free allowance: locked on 1 January 2026 (F2). Support moves it
    to Team on 5 January with a reason; the lift (F4) is theirs, with that reason, in the
    workspace's history."""
    ws = workspace(as_of=date(2025, 12, 1), card=True)
    services.record_usage(ws, month=date(2025, 12, 1), mtus=2_000)
    services.run_billing(as_of=date(2026, 1, 4))
    # The close's lock names its month (it read "Over the Free limit at month close").
    locked = Workspace.history.filter(id=ws.pk).latest("history_id")
    assert (locked.history_change_reason, locked.history_user) == (
        "Locked (data still flows): Over the Free limit at month close of December 2025",
        None,
    )
    pin_today(date(2026, 1, 5))
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "plan"])
    client.post(
        url, as_shown(client, url, {"plan": "team:monthly", "reason": "Ticket 101, asked for Team"})
    )
    # The event itself is as the clock's replay of a move entered ahead writes it (D4).
    lift = LockEvent.objects.filter(workspace=ws).latest("pk")
    assert (lift.cause, lift.by, lift.reason) == ("moved_to_team", None, "")
    row = Workspace.history.filter(id=ws.pk).latest("history_id")
    assert (row.history_change_reason, row.history_user) == (
        "Unlocked: Moved to Team: Ticket 101, asked for Team",
        support,
    )


def test_r4_k3_a_credit_note_request_keeps_its_reason_in_the_history(db, support):
    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = ws.invoices.get()
    note = services.request_credit_note(
        invoice, by=support, amount=D("20.00"), reason="Ticket 301, outage", as_of=date(2026, 2, 2)
    )
    row = note.history.get()
    assert (row.history_change_reason, row.history_user) == (
        "Requested: Ticket 301, outage",
        support,
    )


def test_r4_cr3_a_renewal_review_opened_by_the_clock_has_its_first_version(db, reviewer):
    ws = workspace(as_of=date(2026, 1, 2), card=True)
    startups.approve_application(
        application(workspace=ws),
        by=reviewer,
        as_of=date(2026, 1, 20),
        credits_scope_confirmed=True,
    )
    services.run_billing(as_of=date(2026, 12, 21))
    review = RenewalReview.objects.get()
    assert [
        (r.history_type, r.history_change_reason, r.history_user) for r in review.history.all()
    ] == [("+", "Opened 21 Dec 2026: year one's anniversary is near (CR3)", None)]


def test_r4_c7_s6_changes_read_as_the_forms_label_them(db, reviewer):
    partner = accelerator(None, name="Forge")
    update_partner(
        partner,
        by=reviewer,
        reason="New contact",
        contact_name="Bo",
        contact_email="bo@example.com",
    )
    assert partner.history.latest("history_id").history_change_reason == (
        "Changed contact email, contact name: New contact"
    )
    ws = workspace(as_of=date(2026, 1, 2), card=True)
    app = startups.approve_application(
        application(workspace=ws),
        by=reviewer,
        as_of=date(2026, 1, 20),
        credits_scope_confirmed=True,
    )
    deal = PartnerDeal.objects.create(company="MailCo", title="20% off", description="…")
    request = startups.request_deal(app, deal=deal, as_of=date(2026, 1, 20))
    startups.decide_deal_request(
        request, by=reviewer, fulfil=False, as_of=date(2026, 1, 21), note="Ticket 1201, expired"
    )
    row = DealRequest.history.filter(id=request.pk).latest("history_id")
    assert row.history_change_reason == "Declined: Ticket 1201, expired"


def test_r4_k1_k2_an_invoice_a_change_issues_has_its_first_version_by_who_and_why(
    client, support, pin_today
):
    """A monthly Team workspace from 1 January 2026 cancelled by support on 20 February: its
    final invoice's first version is support's, with the cancellation's why; the annual term
    the clock renews on 5 January 2027 issues its invoice under the clock's cause. (The month
    close's invoices get theirs when first changed, `keep_first_version`: issue 12.)"""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    annual = paid_monthly(as_of=date(2026, 1, 5), interval="annual")
    services.run_billing(as_of=date(2026, 2, 19))
    pin_today(date(2026, 2, 20))
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "plan"])
    client.post(url, as_shown(client, url, {"plan": "free", "reason": "Ticket 7"}))
    final = ws.invoices.get(kind="final")
    assert [
        (r.history_type, r.history_change_reason, r.history_user) for r in final.history.all()
    ] == [("+", "Issued: Cancelled or moved to Free: Ticket 7", support)]
    assert not ws.invoices.get(kind="monthly").history.exists()

    services.run_billing(as_of=date(2027, 1, 5))
    renewal = annual.invoices.get(kind="annual", issue_date=date(2027, 1, 5))
    assert [
        (r.history_type, r.history_change_reason, r.history_user) for r in renewal.history.all()
    ] == [("+", "Issued: Annual term renewed 5 Jan 2027 (K2)", None)]


def test_r4_a_row_s_own_history_page_names_the_clock_as_the_workspace_s_does(client, support):
    """A change no one signed in made read "—" as its user on the row's own history page, and
    "the system" on the workspace's."""
    ws = workspace(as_of=date(2026, 1, 10), plan="team")
    services.run_billing(as_of=date(2026, 1, 24))
    trial = ws.subscriptions.get(ended_on=date(2026, 1, 24))
    client.force_login(support)
    page = client.get(reverse("admin:billing_subscription_history", args=[trial.pk]))
    text = " ".join(page.content.decode().split())
    assert "the system" in text
    assert "Trial ended 24 Jan 2026 without a card: back to Free (T4)" in text
