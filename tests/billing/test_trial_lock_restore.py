"""F7: an upgrade that lifted a lock and ends in its trial without paying puts the lock back."""

from datetime import date, timedelta
from decimal import Decimal as D

from django.core import mail

from billing import services
from billing.models import LockEvent
from tests.billing.factories import workspace


def _data_stopped(**kwargs):
    ws = workspace(as_of=date(2026, 1, 1), **kwargs)
    for month in (1, 2):
        services.record_usage(ws, month=date(2026, month, 1), mtus=3_000)
    services.run_billing(as_of=date(2026, 3, 1))
    ws.refresh_from_db()
    assert ws.lock == "locked_data_stopped"
    return ws


def test_f7_team_then_free_the_same_day_keeps_the_data_stop(db, django_capture_on_commit_callbacks):
    ws = _data_stopped(card=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.change_to_team(ws, as_of=date(2026, 3, 10))
        ws.refresh_from_db()
        assert (ws.lock, ws.data_flow) == ("unlocked", True)  # F4: at once
        services.change_to_free(ws, as_of=date(2026, 3, 10))
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("locked_data_stopped", False)
    restored = ws.lock_events.latest("id")
    assert (restored.cause, restored.from_lock, restored.to_lock) == (
        LockEvent.Cause.TRIAL_NOT_PAID,
        "unlocked",
        "locked_data_stopped",
    )
    assert restored.get_cause_display() == "Trial ended before paying"
    email = [m for m in mail.outbox if m.to == [ws.billing_email] and "locked" in m.subject][-1]
    # F6, F7: the email says why the lock is back, not that the workspace went over again.
    text = " ".join(email.body.split())
    assert "Team for" in text and "ended on 10 Mar 2026 before its first paid day" in text
    assert "lock that moving to Team had lifted is back" in text
    assert "went over the Free plan's" not in text
    assert "incoming data has stopped" in text
    html = email.alternatives[0][0]
    assert "Team ended on 10 Mar 2026 before its first paid day" in " ".join(html.split())


def test_f7_a_trial_that_reverts_without_a_card_restores_the_lock(db):
    ws = _data_stopped(card=True)
    services.change_to_team(ws, as_of=date(2026, 3, 10))
    services.remove_payment_method(ws, as_of=date(2026, 3, 20))
    services.run_billing(as_of=date(2026, 3, 24))  # the end date: no card, back to Free
    ws.refresh_from_db()
    assert ws.lock == "locked_data_stopped"


def test_f7_a_trial_that_turns_paid_keeps_the_unlock(db):
    ws = _data_stopped(card=True)
    services.change_to_team(ws, as_of=date(2026, 3, 10))
    services.run_billing(as_of=date(2026, 3, 31))
    ws.refresh_from_db()
    assert ws.lock == "unlocked"
    assert not ws.lock_events.filter(cause=LockEvent.Cause.TRIAL_NOT_PAID).exists()


def test_d4_f5_f7_an_unlock_after_the_trial_put_the_lock_back_alike_daily_or_lagging(
    db, django_capture_on_commit_callbacks, support
):
    """Locked on 1 February (3,000 MTUs on Free in January); the upgrade of the 5th lifts the
    lock (F4); the card is removed on the 6th, so the trial ends on the 19th unpaid and puts
    the lock back (F7); support unlocks by hand on the 22nd (F5). With the clock through the
    5th only, the unlock saw the lock as lifted and was refused "not locked"; the clock then
    put the lock back and it stayed."""
    from django.db import transaction

    def run(daily):
        mail.outbox.clear()
        sid = transaction.savepoint()
        ws = workspace(as_of=date(2026, 1, 1), card=True, name="Over", slug="over")
        services.record_usage(ws, month=date(2026, 1, 1), mtus=3_000)
        with django_capture_on_commit_callbacks(execute=True):
            day = date(2026, 1, 1)
            while day <= date(2026, 2, 28):
                if day == date(2026, 2, 5):
                    services.change_to_team(ws, as_of=day)
                elif day == date(2026, 2, 6):
                    services.remove_payment_method(ws, as_of=day)
                elif day == date(2026, 2, 22):
                    services.unlock_workspace(ws, by=support, reason="Asked", as_of=day)
                if daily or day <= date(2026, 2, 5):
                    services.run_billing(as_of=day)
                day += timedelta(days=1)
            services.run_billing(as_of=date(2026, 2, 28))
        ws.refresh_from_db()
        outcome = {
            "lock": (ws.lock, ws.data_flow),
            "events": list(ws.lock_events.order_by("id").values_list("on", "to_lock", "cause")),
            "emails": sorted(m.subject for m in mail.outbox),  # sent in the clock's order
        }
        transaction.savepoint_rollback(sid)
        return outcome

    daily, lagging = run(daily=True), run(daily=False)
    assert daily["lock"] == ("unlocked", True)
    assert daily["events"] == [
        (date(2026, 2, 1), "locked", "free_limit"),
        (date(2026, 2, 5), "unlocked", "moved_to_team"),
        (date(2026, 2, 19), "locked", "trial_not_paid"),
        (date(2026, 2, 22), "unlocked", "manual"),
    ]
    assert lagging == daily


def test_f7_team_free_team_free_the_same_day_keeps_the_data_stop(db):
    """The second upgrade is paid at once (T1: it had Team) and cancelled the same day: no
    paid day, no invoice, so it keeps no unlock either."""
    ws = _data_stopped(card=True)
    day = date(2026, 3, 10)
    for change in (services.change_to_team, services.change_to_free) * 2:
        change(ws, as_of=day)
    services.run_billing(as_of=date(2026, 4, 1))
    ws.refresh_from_db()
    assert not ws.invoices.exists()
    assert (ws.lock, ws.data_flow) == ("locked_data_stopped", False)
    assert list(ws.lock_events.filter(on=day).order_by("id").values_list("to_lock", "cause")) == [
        ("unlocked", "moved_to_team"),
        ("locked_data_stopped", "trial_not_paid"),
        ("unlocked", "moved_to_team"),
        ("locked_data_stopped", "trial_not_paid"),
    ]


def test_f7_a_paid_upgrade_with_a_paid_day_keeps_the_unlock(db):
    ws = _data_stopped(card=True)
    services.change_to_team(ws, as_of=date(2026, 3, 10))
    services.change_to_free(ws, as_of=date(2026, 3, 10))  # the trial: lock back
    services.change_to_team(ws, as_of=date(2026, 3, 11))  # paid at once
    services.change_to_free(ws, as_of=date(2026, 3, 12))  # one paid day: 120 × 1/31
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("unlocked", True)
    assert [i.total for i in ws.invoices.all()] == [D("3.87")]


def test_f3_f6_the_unlock_email_claims_no_month_within_the_limit_that_was_not(
    db, django_capture_on_commit_callbacks
):
    """Locked on 1 February (3,000 MTUs on Free in January); a Team trial from the 10th lifts
    the lock and, cancelled on the 12th, puts it back. February reports 5,000 MTUs but had
    Team days, so no strike, and the 1 March close unlocks it (F3). Its email said "it stayed
    within the Free plan's limit in February 2026", five times over it."""
    with django_capture_on_commit_callbacks(execute=True):
        ws = workspace(as_of=date(2026, 1, 1), card=True, name="Overco")
        services.record_usage(ws, month=date(2026, 1, 1), mtus=3_000)
        services.run_billing(as_of=date(2026, 2, 1))
        services.change_to_team(ws, as_of=date(2026, 2, 10))
        services.change_to_free(ws, as_of=date(2026, 2, 12))
        services.record_usage(ws, month=date(2026, 2, 1), mtus=5_000)
        services.run_billing(as_of=date(2026, 3, 1))
    event = ws.lock_events.latest("id")
    assert (event.cause, event.to_lock) == (LockEvent.Cause.UNDER_LIMIT, "unlocked")
    assert event.get_cause_display() == "No strike at month close"  # not "within the limit"
    unlock = [m for m in mail.outbox if m.subject == "Overco is unlocked"][-1]
    text = " ".join(unlock.body.split())
    assert "Overco is unlocked: February 2026 did not count against the Free plan's limit" in text
    assert "within" not in text


def test_f7_f6_a_lock_put_back_after_a_paid_upgrade_speaks_of_no_trial(
    db, django_capture_on_commit_callbacks
):
    """It had Team before, so its move to Team on 10 March is paid at once (T1); back to Free
    the same day puts the lock back (F7). The email spoke of "the Team trial"."""
    with django_capture_on_commit_callbacks(execute=True):
        ws = workspace(as_of=date(2026, 1, 1), card=True, name="Paidco")
        services.change_to_team(ws, as_of=date(2026, 1, 1))
        services.change_to_free(ws, as_of=date(2026, 1, 1))
        services.record_usage(ws, month=date(2026, 2, 1), mtus=3_000)
        services.run_billing(as_of=date(2026, 3, 1))
        assert services.change_to_team(ws, as_of=date(2026, 3, 10)).trial_end is None
        services.change_to_free(ws, as_of=date(2026, 3, 10))
    assert ws.lock_events.latest("id").cause == LockEvent.Cause.TRIAL_NOT_PAID
    email = [m for m in mail.outbox if m.subject == "Paidco is locked"][-1]
    text = " ".join(email.body.split())
    assert "Team for Paidco ended on 10 Mar 2026 before its first paid day" in text
    assert "trial" not in text


def test_f4_f7_d4_team_free_team_on_one_day_ends_on_paid_team_unlocked(
    db, django_capture_on_commit_callbacks
):
    """Locked on 1 February (4,000 MTUs on Free in January, F2). On 10 February `paying` moves
    to Team (a trial: the lock lifted, F4), back to Free (the trial cancelled: the lock back,
    F7) and to Team again (paid at once, T1: the lock lifted, F4); `back` only to Team and back.

    Day by day, the clock's step took the second upgrade's lift for the cancelled trial's and
    put the lock back: `paying` was billed on paid Team (February, 19/28 × 120 = 81.43) while
    locked, and with two strikes its data stayed stopped. Entered before the clock's first
    run, the step left `paying` locked and wrote none of `back`'s lock changes or emails. Now
    both runs end alike, with the same lock changes and emails."""
    from django.db import transaction

    from billing.models import Invoice

    def run(daily):
        mail.outbox.clear()
        sid = transaction.savepoint()
        paying = workspace(as_of=date(2026, 1, 1), card=True, name="Paying", slug="paying")
        back = workspace(as_of=date(2026, 1, 1), card=True, name="Back", slug="back")
        for ws in (paying, back):
            services.record_usage(ws, month=date(2026, 1, 1), mtus=4_000)
        with django_capture_on_commit_callbacks(execute=True):
            if daily:
                services.run_billing(as_of=date(2026, 2, 9))
            day = date(2026, 2, 10)
            for change in (services.change_to_team, services.change_to_free):
                change(paying, as_of=day)
                change(back, as_of=day)
            services.change_to_team(paying, as_of=day)
            services.run_billing(as_of=date(2026, 3, 1))
        outcome = {}
        for ws in (paying, back):
            ws.refresh_from_db()
            outcome[ws.slug] = {
                "lock": (ws.lock, ws.data_flow),
                "events": list(ws.lock_events.order_by("id").values_list("on", "to_lock", "cause")),
                "emails": sorted(m.subject for m in mail.outbox if m.to == [ws.billing_email]),
            }
        outcome["invoices"] = list(
            Invoice.objects.order_by("workspace__slug").values_list("workspace__slug", "total")
        )
        transaction.savepoint_rollback(sid)
        return outcome

    daily, ahead = run(daily=True), run(daily=False)
    feb1, feb10 = date(2026, 2, 1), date(2026, 2, 10)
    assert daily["paying"]["lock"] == ("unlocked", True)
    assert daily["paying"]["events"] == [
        (feb1, "locked", "free_limit"),
        (feb10, "unlocked", "moved_to_team"),
        (feb10, "locked", "trial_not_paid"),
        (feb10, "unlocked", "moved_to_team"),
    ]
    # `back`, locked again on 10 February, is unlocked by March's close: no strike (F3).
    assert daily["back"]["events"] == daily["paying"]["events"][:3] + [
        (date(2026, 3, 1), "unlocked", "under_limit")
    ]
    assert daily["back"]["emails"] == ["Back is locked"] * 2 + ["Back is unlocked"] * 2
    assert daily["invoices"] == [("paying", D("81.43"))]
    assert ahead == daily


def test_f7_lifts_recorded_before_they_named_their_subscription_are_linked_to_it(db):
    """Migration 0056 links a move to Team's lock change to the Team subscription started on its
    day (the latest change to the latest subscription), as the day's latest lift was read."""
    from importlib import import_module

    from django.apps import apps

    ws = _data_stopped(card=True)
    day = date(2026, 3, 10)
    for change in (services.change_to_team, services.change_to_free, services.change_to_team):
        change(ws, as_of=day)
    lifts = ws.lock_events.filter(cause=LockEvent.Cause.MOVED_TO_TEAM).order_by("id")
    linked = list(lifts.values_list("subscription_id", flat=True))
    assert len(set(linked)) == 2
    lifts.update(subscription=None)
    import_module("billing.migrations.0056_lock_lifted_by_subscription").link_lifts(apps, None)
    assert list(lifts.values_list("subscription_id", flat=True)) == linked
