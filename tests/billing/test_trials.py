"""T1–T6 and P3: the Team trial."""

import signal
from datetime import date, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing import services
from billing.emails import resend_email, send_queued_email
from billing.errors import BillingError, PaymentMethodRequired
from billing.models import Invoice, OutboundEmail, PaymentMethod, Subscription
from billing.selectors import workspace_status

from .factories import workspace


def test_t1_first_move_to_team_gets_a_14_day_trial(db):
    ws = workspace(card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 10))
    status = workspace_status(ws, as_of=date(2026, 1, 10))
    assert status["plan"] == "team" and status["trialing"]
    assert status["trial_end"] == date(2026, 1, 24)


def test_t1_a_workspace_that_had_team_starts_paid_at_once(db):
    ws = workspace(card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 10))
    services.change_to_free(ws, as_of=date(2026, 1, 12))
    services.change_to_team(ws, as_of=date(2026, 2, 3))
    status = workspace_status(ws, as_of=date(2026, 2, 3))
    assert status["plan"] == "team" and not status["trialing"]
    assert ws.subscriptions.get(ended_on=None).paid_from == date(2026, 2, 3)


def test_t2_free_to_team_needs_a_payment_method(db):
    ws = workspace(card=False)
    with pytest.raises(PaymentMethodRequired, match="A payment method is needed"):
        services.change_to_team(ws, as_of=date(2026, 1, 10))
    assert workspace_status(ws, as_of=date(2026, 1, 10))["plan"] == "free"
    assert ws.subscriptions.count() == 1


def test_t2_signing_up_straight_into_team_needs_no_card(db):
    ws = workspace(plan="team", card=False, as_of=date(2026, 3, 1))
    status = workspace_status(ws, as_of=date(2026, 3, 1))
    assert status["plan"] == "team" and status["trialing"]


def test_t3_trial_covers_d_to_d_plus_13_and_d_plus_14_is_first_paid_day(db):
    ws = workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    assert workspace_status(ws, as_of=date(2026, 1, 23))["trialing"]
    services.run_billing(as_of=date(2026, 1, 24))
    status = workspace_status(ws, as_of=date(2026, 1, 24))
    assert status["plan"] == "team" and not status["trialing"]


def test_t4_trial_with_card_continues_as_paid_team(db):
    ws = workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    counts = services.run_billing(as_of=date(2026, 1, 24))
    sub = ws.subscriptions.get(ended_on=None)
    assert sub.trial_outcome == Subscription.TrialOutcome.CONVERTED
    assert counts["subscription_events"] == 1


def test_t4_trial_without_card_reverts_to_free_on_the_end_date(
    db, django_capture_on_commit_callbacks
):
    ws = workspace(plan="team", card=False, as_of=date(2026, 1, 10))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 20))
    assert workspace_status(ws, as_of=date(2026, 1, 23))["plan"] == "team"
    assert workspace_status(ws, as_of=date(2026, 1, 24))["plan"] == "free"
    assert not Invoice.objects.exists()
    assert [m.subject for m in mail.outbox if "ended" in m.subject] == [
        f"Your Team trial for {ws.name} has ended"
    ]


def test_t4_card_is_judged_as_it_was_on_the_end_date(db):
    ws = workspace(plan="team", card=False, as_of=date(2026, 1, 10))
    services.add_payment_method(ws, as_of=date(2026, 1, 25))  # a day late
    services.run_billing(as_of=date(2026, 1, 26))
    assert workspace_status(ws, as_of=date(2026, 1, 26))["plan"] == "free"


def test_t4_card_added_on_the_end_date_counts(db):
    ws = workspace(plan="team", card=False, as_of=date(2026, 1, 10))
    services.add_payment_method(ws, as_of=date(2026, 1, 24))
    services.run_billing(as_of=date(2026, 1, 24))
    assert workspace_status(ws, as_of=date(2026, 1, 24))["plan"] == "team"


def test_t4_annual_trial_issues_the_annual_invoice_on_the_end_date(db):
    ws = workspace(plan="team", interval="annual", card=True, as_of=date(2026, 1, 10))
    services.run_billing(as_of=date(2026, 1, 24))
    invoice = Invoice.objects.get(workspace=ws)
    assert (invoice.kind, invoice.issue_date, invoice.total) == ("annual", date(2026, 1, 24), 1440)


def test_t5_cancelling_during_the_trial_is_never_charged(db):
    ws = workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=50_000)
    services.change_to_free(ws, as_of=date(2026, 1, 20))
    services.run_billing(as_of=date(2026, 3, 1))
    assert not Invoice.objects.exists()
    assert workspace_status(ws, as_of=date(2026, 1, 20))["plan"] == "free"


def test_t5_cancelling_on_the_last_trial_day_is_not_charged(db):
    ws = workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    services.change_to_free(ws, as_of=date(2026, 1, 23))
    services.run_billing(as_of=date(2026, 3, 1))
    assert not Invoice.objects.exists()


class ClockHung(Exception):
    pass


def run_billing_within(seconds, as_of):
    """`run_billing`, failing the test rather than hanging it when the run never returns."""

    def hung(signum, frame):
        raise ClockHung(f"run_billing(as_of={as_of}) still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        return services.run_billing(as_of=as_of)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_t5_d1_cancelling_on_the_end_date_comes_before_t4_and_is_not_charged(db):
    """T3: a trial from 10 January ends on the 24th, its first paid day. A cancellation dated
    the 24th comes before that day's T4 (D1): the trial is cancelled, uncharged (T5), Free from
    the 24th, and the clock goes on (it used to loop on the ended trial for ever)."""
    ws = workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=50_000)
    services.change_to_free(ws, as_of=date(2026, 1, 24))
    run_billing_within(20, date(2026, 2, 2))
    assert not Invoice.objects.exists()
    team = ws.subscriptions.get(plan__code="team")
    assert (team.ended_on, team.trial_outcome) == (date(2026, 1, 24), "cancelled")
    assert workspace_status(ws, as_of=date(2026, 1, 24))["plan"] == "free"


@pytest.mark.parametrize("card", [True, False])
def test_t4_k4_an_interval_change_on_the_end_date_is_the_trials_and_t4_follows(db, card):
    """K4 during the trial, on its end date too: the trial goes on as annual, and the same
    day's T4 makes it a paid annual term with its 1,440.00 invoice dated the 24th, or, without
    a card, Free from the 24th."""
    ws = workspace(plan="team", card=card, as_of=date(2026, 1, 10))
    services.change_interval(ws, interval="annual", as_of=date(2026, 1, 24))
    run_billing_within(20, date(2026, 2, 2))
    issued = list(Invoice.objects.values_list("kind", "issue_date", "total"))
    team = ws.subscriptions.get(plan__code="team")
    if card:
        assert issued == [("annual", date(2026, 1, 24), 1440)]
        assert (team.interval, team.trial_outcome, team.term_start) == (
            "annual",
            "converted",
            date(2026, 1, 24),
        )
    else:
        assert issued == []
        assert (team.ended_on, team.trial_outcome) == (date(2026, 1, 24), "reverted")


def _reminders():
    return [m for m in mail.outbox if "ends on" in m.subject]


def test_t6_reminder_three_days_before_the_end_date_once(db, django_capture_on_commit_callbacks):
    ws = workspace(plan="team", card=False, as_of=date(2026, 1, 10))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 20))
    assert _reminders() == []
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 21))
        services.run_billing(as_of=date(2026, 1, 21))
        services.run_billing(as_of=date(2026, 1, 22))
    assert len(_reminders()) == 1
    assert _reminders()[0].to == [ws.billing_email]
    assert "ends on 24 Jan 2026." in _reminders()[0].body
    # T4 reads the card on file on the end date: one added that day still counts (walk 6: the
    # email said "before that day").
    body = " ".join(_reminders()[0].body.split())
    # Where to add it: the page the help centre names ("Payment Information").
    assert (
        "add one on your workspace's Payment Information page by 24 Jan 2026 (that day included)"
        " to stay on Team"
    ) in body


def test_t6_no_reminder_when_a_card_is_on_file(db, django_capture_on_commit_callbacks):
    workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 21))
    assert _reminders() == []


def test_t6_a_reminder_not_sent_by_the_end_date_is_never_sent(
    db, django_capture_on_commit_callbacks
):
    # A card on file through the reminder days, removed on the end date: no reminder then.
    ws = workspace(plan="team", card=True, as_of=date(2026, 1, 10))
    services.remove_payment_method(ws, as_of=date(2026, 1, 24))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 30))
    assert _reminders() == []


def test_t6_d4_a_catch_up_sends_the_reminder_its_day_would_have(
    db, django_capture_on_commit_callbacks
):
    workspace(plan="team", card=False, as_of=date(2026, 1, 10))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 24))
        services.run_billing(as_of=date(2026, 1, 30))
    assert len(_reminders()) == 1


@pytest.mark.parametrize("queued_days_ago, sent", [(2, True), (3, False)])
def test_t6_a_reminder_the_mail_server_kept_until_the_end_date_is_not_sent(
    db, support, queued_days_ago, sent
):
    """T6: a trial from 10 January without a card ends on 24 January; its reminder is queued on
    the clock's 21 January, three days before. Sent while those three days last, it goes; once
    they are over (the mail server down until then, the sweep or a colleague sending it again),
    it is not sent at all and says why, and it cannot be sent again. Before, it went out after
    the trial had ended, after the "has ended" email."""
    workspace(plan="team", card=False, as_of=date(2026, 1, 10))
    services.run_billing(as_of=date(2026, 1, 21))  # queued; its send is left to the test
    email = OutboundEmail.objects.get(kind="trial_reminder")
    OutboundEmail.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - timedelta(days=queued_days_ago, minutes=1)
    )
    assert send_queued_email(email.pk) is sent
    email.refresh_from_db()
    assert len(_reminders()) == int(sent)
    if sent:
        return
    why = (
        "Not sent: the trial's end date, 24 Jan 2026, came before it could go, and a reminder "
        "not sent by the end date is not sent at all (T6)."
    )
    assert (email.status, email.last_error) == ("expired", why)
    with pytest.raises(BillingError, match="not sent at all"):
        resend_email(email, by=support)
    assert send_queued_email(email.pk) is False and _reminders() == []


def test_p3_one_current_subscription_and_history_kept(db):
    ws = workspace(card=True, as_of=date(2026, 1, 1))
    services.change_to_team(ws, as_of=date(2026, 1, 10))
    services.change_to_free(ws, as_of=date(2026, 2, 10))
    services.change_to_team(ws, as_of=date(2026, 3, 1))
    subs = list(ws.subscriptions.order_by("started_on", "id"))
    assert [s.plan.code for s in subs] == ["free", "team", "free", "team"]
    assert [s.ended_on is None for s in subs] == [False, False, False, True]


def test_p3_database_refuses_a_second_current_subscription(db):
    from django.db import IntegrityError, transaction

    ws = workspace()
    sub = ws.subscriptions.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(workspace=ws, plan=sub.plan, started_on=date(2026, 2, 1))


def test_t1_database_refuses_a_second_trial(db):
    """T1: one trial per workspace. The service offers none to a workspace that had Team; the
    database took a second trial row all the same (the constraint audit)."""
    from django.db import IntegrityError, transaction

    ws = workspace(card=True, as_of=date(2026, 1, 1))
    services.change_to_team(ws, as_of=date(2026, 1, 10))
    services.change_to_free(ws, as_of=date(2026, 1, 12))
    team = ws.subscriptions.get(plan__code="team").plan
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(
            workspace=ws,
            plan=team,
            started_on=date(2026, 3, 1),
            ended_on=date(2026, 3, 5),
            trial_end=date(2026, 3, 15),
            trial_outcome=Subscription.TrialOutcome.CANCELLED,
            paid_from=date(2026, 3, 15),
        )


def test_t4_d3_a_card_change_dated_before_one_already_entered_is_refused(db):
    """D3, D4, T4: a trial signed up on 11 February with card A ends on 25 February. Card B is
    entered for 1 March, then card C for 15 February and a removal for 20 February. The second
    and third rewrote the card line behind B (B's row deleted, A on file to 1 March), so on
    25 February A counted as on file, the trial converted and February was billed
    120 × 4/28 = 17.14 where, in date order, nothing was. A change dated before one already
    entered is now refused, naming that day (D4: changes to a workspace go in date order); the
    history stays A then B."""
    ws = workspace(plan="team", card=True, as_of=date(2026, 2, 11))
    services.add_payment_method(ws, as_of=date(2026, 3, 1), brand="Visa", last4="1111")
    with pytest.raises(BillingError, match="a change dated 1 Mar 2026 was entered already"):
        services.add_payment_method(ws, as_of=date(2026, 2, 15), brand="Visa", last4="2222")
    with pytest.raises(BillingError, match="a change dated 1 Mar 2026 was entered already"):
        services.remove_payment_method(ws, as_of=date(2026, 2, 20))
    assert list(
        PaymentMethod.objects.filter(workspace=ws)
        .order_by("added_on")
        .values_list("added_on", "removed_on", "last4")
    ) == [(date(2026, 2, 11), date(2026, 3, 1), ""), (date(2026, 3, 1), None, "1111")]
    # The same day as the latest change is still a change of that day (the later one wins).
    services.remove_payment_method(ws, as_of=date(2026, 3, 1))
    assert not workspace_status(ws, as_of=date(2026, 3, 1))["has_payment_method"]


def test_d3_a_card_dated_before_the_workspace_signed_up_is_refused(db):
    """D3: a workspace that signed up on 1 March with a card had no card on 10 February; a card
    dated then deleted the sign-up card's row and said a card was on file from 10 February."""
    ws = workspace(card=True, as_of=date(2026, 3, 1))
    with pytest.raises(
        BillingError, match="cannot be dated 10 Feb 2026: it signed up on 1 Mar 2026"
    ):
        services.add_payment_method(ws, as_of=date(2026, 2, 10), brand="Visa", last4="4242")
    cardless = workspace(slug="cardless", as_of=date(2026, 3, 1))
    with pytest.raises(BillingError, match="it signed up on 1 Mar 2026"):
        services.add_payment_method(cardless, as_of=date(2026, 2, 28))
    assert list(PaymentMethod.objects.values_list("workspace__slug", "added_on")) == [
        (ws.slug, date(2026, 3, 1))
    ]
