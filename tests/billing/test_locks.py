"""F1–F6: strikes for going over the Free limit, and the locks they set."""

import re
from datetime import date

import pytest
from django.core import mail
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import emails, locks, services
from billing.errors import BillingError
from billing.models import LockEvent, OutboundEmail, Strike

from .factories import paid_monthly, workspace


def usage(ws, month, mtus):
    services.record_usage(ws, month=month, mtus=mtus)


def lock_of(ws):
    ws.refresh_from_db()
    return ws.lock


def test_f1_strike_for_a_free_month_over_1000_mtus(db):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 1001)
    services.run_billing(as_of=date(2026, 2, 1))
    assert list(Strike.objects.values_list("workspace", "month")) == [(ws.pk, date(2026, 1, 1))]


def test_f1_exactly_1000_mtus_is_no_strike(db):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 1000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert not Strike.objects.exists()


def test_f1_no_strike_for_a_month_with_a_trial_or_team_day(db):
    trial = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(trial, as_of=date(2026, 1, 31))  # one trial day in January
    usage(trial, date(2026, 1, 1), 5000)
    was_team = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(was_team, as_of=date(2026, 1, 1))
    services.change_to_free(was_team, as_of=date(2026, 1, 2))
    usage(was_team, date(2026, 1, 1), 5000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert not Strike.objects.exists()


def test_f1_a_workspace_created_mid_month_is_judged_on_the_days_it_existed(db):
    ws = workspace(as_of=date(2026, 1, 20))
    usage(ws, date(2026, 1, 1), 1500)
    services.run_billing(as_of=date(2026, 2, 1))
    assert Strike.objects.filter(workspace=ws).exists()
    assert lock_of(ws) == "locked"


def test_f2_one_strike_locks_two_in_six_months_stop_data(db):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 2000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert lock_of(ws) == "locked" and ws.data_flow
    usage(ws, date(2026, 2, 1), 100)
    usage(ws, date(2026, 3, 1), 2000)
    services.run_billing(as_of=date(2026, 4, 1))
    assert lock_of(ws) == "locked_data_stopped" and not ws.data_flow


def test_f2_f3_the_clocks_summary_counts_each_lock_level_by_its_name(db):
    locked, stopped = workspace(as_of=date(2026, 1, 1)), workspace(as_of=date(2026, 1, 1))
    usage(locked, date(2026, 2, 1), 2000)
    usage(stopped, date(2026, 1, 1), 2000)
    usage(stopped, date(2026, 2, 1), 2000)
    counts = services.run_billing(as_of=date(2026, 3, 1))
    # January's close locks `stopped`; February's locks `locked` and stops `stopped`'s data.
    assert counts["locked"] == 2 and counts["locked_data_stopped"] == 1
    assert not any(":" in key for key in counts)


def test_f2_six_month_window_edges(db):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 2000)  # M-5 for June: still counted
    usage(ws, date(2026, 6, 1), 2000)
    other = workspace(as_of=date(2026, 1, 1))
    usage(other, date(2026, 1, 1), 2000)  # M-6 for July: out of the window
    usage(other, date(2026, 7, 1), 2000)
    services.run_billing(as_of=date(2026, 7, 1))
    assert lock_of(ws) == "locked_data_stopped"
    services.run_billing(as_of=date(2026, 8, 1))
    assert lock_of(other) == "locked"


def test_f2_strikes_stay_counted_after_a_manual_unlock(db, support):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 2000)
    services.run_billing(as_of=date(2026, 2, 1))
    services.unlock_workspace(ws, by=support, reason="Goodwill", as_of=date(2026, 2, 2))
    usage(ws, date(2026, 2, 1), 2000)
    services.run_billing(as_of=date(2026, 3, 1))
    assert lock_of(ws) == "locked_data_stopped"


def test_f3_a_month_without_strike_unlocks_locked_but_not_data_stopped(db):
    locked = workspace(as_of=date(2026, 1, 1))
    stopped = workspace(as_of=date(2026, 1, 1))
    stopped.created_on = date(2025, 12, 1)
    stopped.save()
    usage(locked, date(2026, 1, 1), 2000)
    usage(stopped, date(2025, 12, 1), 2000)
    usage(stopped, date(2026, 1, 1), 2000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert (lock_of(locked), lock_of(stopped)) == ("locked", "locked_data_stopped")
    services.run_billing(as_of=date(2026, 3, 1))
    assert (lock_of(locked), lock_of(stopped)) == ("unlocked", "locked_data_stopped")


def test_f3_lock_never_goes_down_at_close_with_a_strike(db, support):
    ws = workspace(as_of=date(2025, 10, 1))
    for month in (date(2025, 10, 1), date(2025, 11, 1)):
        usage(ws, month, 2000)
    services.run_billing(as_of=date(2025, 12, 1))
    assert lock_of(ws) == "locked_data_stopped"
    # Later, the window holds only one strike: the level stays, it is never lowered by F2.
    usage(ws, date(2026, 5, 1), 2000)
    services.run_billing(as_of=date(2026, 6, 1))
    assert lock_of(ws) == "locked_data_stopped"


def test_f4_moving_to_team_unlocks_at_once_at_either_level(db):
    ws = workspace(as_of=date(2025, 12, 1), card=True)
    usage(ws, date(2025, 12, 1), 2000)
    usage(ws, date(2026, 1, 1), 2000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert lock_of(ws) == "locked_data_stopped"
    services.change_to_team(ws, as_of=date(2026, 2, 5))
    assert lock_of(ws) == "unlocked" and ws.data_flow
    assert LockEvent.objects.filter(workspace=ws).first().cause == "moved_to_team"


def test_f5_support_unlocks_by_hand_with_a_reason_that_is_kept(db, support):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 2000)
    services.run_billing(as_of=date(2026, 2, 1))
    with pytest.raises(BillingError, match="Say why"):
        services.unlock_workspace(ws, by=support, reason="  ", as_of=date(2026, 2, 2))
    services.unlock_workspace(
        ws, by=support, reason="Pipeline bug double-counted", as_of=date(2026, 2, 2)
    )
    event = LockEvent.objects.filter(workspace=ws).first()
    assert (event.cause, event.reason, event.by) == (
        "manual",
        "Pipeline bug double-counted",
        support,
    )
    assert lock_of(ws) == "unlocked"
    assert ws.history.first().history_change_reason.endswith("Pipeline bug double-counted")
    with pytest.raises(BillingError, match="is not locked"):
        services.unlock_workspace(ws, by=support, reason="again", as_of=date(2026, 2, 3))


def test_f6_each_lock_and_unlock_sends_one_email_and_records_its_cause(
    db, django_capture_on_commit_callbacks
):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 2000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 1))
        services.run_billing(as_of=date(2026, 2, 1))  # closing twice sends nothing more
        services.run_billing(as_of=date(2026, 3, 1))
    causes = list(LockEvent.objects.order_by("on").values_list("to_lock", "cause", "month"))
    assert causes == [
        ("locked", "free_limit", date(2026, 1, 1)),
        ("unlocked", "under_limit", date(2026, 2, 1)),
    ]
    assert [m.subject for m in mail.outbox] == [f"{ws.name} is locked", f"{ws.name} is unlocked"]


def test_r4_a_long_unlock_reason_is_kept_whole(db, support):
    ws = workspace(as_of=date(2026, 1, 1))
    usage(ws, date(2026, 1, 1), 2000)
    services.run_billing(as_of=date(2026, 2, 1))
    reason = "Customer explained on a long call that " + "their import replayed events " * 12
    services.unlock_workspace(ws, by=support, reason=reason, as_of=date(2026, 2, 2))
    assert ws.history.first().history_change_reason.endswith(reason.strip())


def test_f1_a_team_subscription_ended_the_day_it_started_is_no_team_day(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 10))
    services.change_to_free(ws, as_of=date(2026, 1, 10))  # cancelled the same day: no Team day
    usage(ws, date(2026, 1, 1), 1500)
    services.run_billing(as_of=date(2026, 2, 1))
    assert Strike.objects.filter(workspace=ws, month=date(2026, 1, 1)).exists()


def _close_queries(count):
    """The lock step of one close with `count` workspaces to lock and as many to unlock."""
    with transaction.atomic():  # each count on the same empty database
        queries = _lock_step_queries(count)
        transaction.set_rollback(True)
    return len(queries)


def _lock_step_queries(count):
    over = [workspace(as_of=date(2026, 1, 1)) for _ in range(count)]
    back = [workspace(as_of=date(2026, 1, 1)) for _ in range(count)]
    for ws in over:
        usage(ws, date(2026, 1, 1), 2_000)
    for ws in back:
        usage(ws, date(2026, 1, 1), 2_000)
        usage(ws, date(2026, 2, 1), 10)
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    for ws in over:
        usage(ws, date(2026, 2, 1), 2_000)
    with CaptureQueriesContext(connection) as ctx:
        services.close_month(date(2026, 2, 1), as_of=date(2026, 3, 1))
    assert {lock_of(ws) for ws in over} == {"locked_data_stopped"}
    assert {lock_of(ws) for ws in back} == {"unlocked"}
    return [query["sql"] for query in ctx.captured_queries]


def test_f2_f3_f6_the_lock_step_costs_the_same_queries_for_3_or_30_workspaces(db):
    """Set-based (billing.locks): events, the new locks, history and outbox rows in a few
    statements per batch, whatever the number of workspaces."""
    assert _close_queries(3) == _close_queries(30)


def test_f1_f2_the_close_leaves_out_workspaces_by_not_exists_never_not_in(db):
    """A NOT IN of a subquery is run once per row when its ids outgrow work_mem: at a million
    workspaces the strike step took more than 12 minutes. NOT EXISTS is one anti-join."""
    not_in = re.compile(r"NOT \(\S+ IN \(SELECT", re.IGNORECASE)
    queries = _lock_step_queries(3)
    assert [sql for sql in queries if not_in.search(sql)] == []
    assert any("NOT EXISTS" in sql.upper() for sql in queries)


def test_f6_lock_emails_are_rendered_when_sent_not_when_queued(
    db, django_capture_on_commit_callbacks
):
    ws = workspace(as_of=date(2026, 1, 1), name="Ben & Jerry's")
    usage(ws, date(2026, 1, 1), 2_000)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.run_billing(as_of=date(2026, 2, 1))
    queued = OutboundEmail.objects.get(kind="locked")
    assert (queued.subject, queued.body_text, queued.to) == ("", "", ws.billing_email)
    for callback in callbacks:
        callback()  # the commit hands the row to the send task (eager here)
    queued.refresh_from_db()
    assert queued.status == "sent"
    assert queued.subject == "Ben & Jerry's is locked"  # kept on the row: staff see what left
    assert [m.subject for m in mail.outbox] == ["Ben & Jerry's is locked"]
    assert (
        "Ben & Jerry's reported 2,000 monthly tracked users in January 2026, over the Free "
        "plan's 1,000." in mail.outbox[0].body
    )
    history = ws.history.order_by("-history_id").first()
    assert history.lock == "locked" and history.history_change_reason.startswith("Locked")


def test_f1_f6_a_lock_email_sent_late_states_the_months_figure_not_todays_allowance(
    db, finance, django_capture_on_commit_callbacks
):
    """1,500 MTUs in January over a Free allowance of 1,000: locked on 1 February, its email
    left unsent (the broker down). Finance raises Free to 2,000 from 2 February before the sweep
    sends it: the email said the workspace went over 2,000, which 1,500 is not. It states
    January's allowance (P1: dated terms)."""
    from billing.models import Plan

    ws = workspace(as_of=date(2026, 1, 1), name="Late")
    usage(ws, date(2026, 1, 1), 1_500)
    with django_capture_on_commit_callbacks(execute=False):
        services.run_billing(as_of=date(2026, 2, 1))
    services.update_plan(
        Plan.objects.get(code="free"),
        by=finance,
        reason="More room",
        included_mtus=2_000,
        effective_on=date(2026, 2, 2),
    )
    emails.send_queued_email(OutboundEmail.objects.get(kind="locked").pk)  # the sweep's send
    body = mail.outbox[0].body
    assert (
        "Late reported 1,500 monthly tracked users in January 2026, over the Free plan's 1,000."
        in body
    )
    assert "2,000" not in body


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_f6_a_close_queues_its_chunks_before_its_lock_emails(monkeypatch):
    """On the one queue the workers read, a close's chunks come first: its lock emails (4,494
    at 100,000 workspaces) would otherwise hold the invoices back. The emails follow."""
    over = workspace(as_of=date(2026, 1, 1))
    usage(over, date(2026, 1, 1), 2_000)
    paid_monthly(date(2026, 1, 1))
    handed = []
    monkeypatch.setattr(emails, "_sender", lambda ids: handed.append(("emails", len(ids))))
    services.close_month(
        date(2026, 1, 1),
        as_of=date(2026, 2, 1),
        dispatch=lambda ids: handed.append(("chunks", len(ids))),
    )
    assert handed == [("chunks", 1), ("emails", 1)]
    assert OutboundEmail.objects.get().kind == "locked"


def test_f6_w1_a_workspace_closed_on_the_closes_day_is_not_told_its_data_flows(
    db, support, django_capture_on_commit_callbacks
):
    """F2, F3, W1: `locked_ws` had 2,000 MTUs in December (locked by the close on 1 January)
    and none in January; `struck` had 2,000 in January. Both are closed on 1 February, before
    the clock processes that day (D1: it sees that day's changes): their data stopped and the
    closure email said so. January's close, run on 1 February, then unlocked `locked_ws` and
    mailed it "Data flows as usual", and locked `struck` and mailed it "your data still flows
    in … Moving to the Team plan unlocks": false for a closed workspace. Only a closure dated
    31 January was left out. Both now keep their lock, told nothing."""
    locked_ws = workspace(as_of=date(2025, 12, 1))
    struck = workspace(as_of=date(2025, 12, 1))
    services.record_usage(locked_ws, month=date(2025, 12, 1), mtus=2000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 1))
        services.record_usage(struck, month=date(2026, 1, 1), mtus=2000)
        for ws in (locked_ws, struck):
            services.close_workspace(
                ws, by=support, reason="Deletion asked", as_of=date(2026, 2, 1)
            )
    assert {m.subject for m in mail.outbox} >= {
        f"{locked_ws.name} is closed",
        f"{struck.name} is closed",
    }
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 1))
    told_data_flows = [
        (m.to[0], m.subject)
        for m in mail.outbox
        if "Data flows as usual" in m.body or "your data still flows in" in m.body
    ]
    assert told_data_flows == []
    locked_ws.refresh_from_db()
    assert locked_ws.lock == "locked"  # kept until reopened, as for a closure on 31 January
    struck.refresh_from_db()
    assert struck.lock == "unlocked"


def test_f4_f7_d4_a_move_to_team_and_its_cancellation_entered_ahead_of_the_close(
    db, django_capture_on_commit_callbacks
):
    """F1–F4, F7, D4: Free with a card from 1 December 2026, 2,000 MTUs in January 2027: a
    strike, and `locked` at January's close on 1 February. Moved to Team on 15 February (a
    trial: F4 lifts the lock), cancelled on the 16th during the trial (T5: F7 puts the lock
    back, "trial ended before paying"); February had Team days, no strike: its close on 1 March
    unlocks (F3). Entered before a clock that never ran reaches 1 February, the move found no
    lock to lift and the close's lock stood on Team; by day and in one run, the same locks."""
    from tests.scenarios.clock import daily_and_catch_up, run_days

    def run(daily):
        ws = workspace(as_of=date(2026, 12, 1), card=True)
        usage(ws, date(2027, 1, 1), 2_000)

        def actions(day):
            if day == date(2027, 2, 15):
                services.change_to_team(ws, as_of=day)
            if day == date(2027, 2, 16):
                services.change_to_free(ws, as_of=day)

        run_days(
            date(2027, 1, 1),
            date(2027, 3, 10),
            daily=daily,
            capture=django_capture_on_commit_callbacks,
            actions=actions,
        )
        events = ws.lock_events.order_by("on", "id").values_list("on", "to_lock", "cause")
        return list(events), lock_of(ws), len([m for m in mail.outbox if ws.name in m.body])

    daily, catch_up = daily_and_catch_up(run)
    assert daily == catch_up
    assert daily[0] == [
        (date(2027, 2, 1), "locked", "free_limit"),
        (date(2027, 2, 15), "unlocked", "moved_to_team"),
        (date(2027, 2, 16), "locked", "trial_not_paid"),
        (date(2027, 3, 1), "unlocked", "under_limit"),
    ]
    assert daily[1] == "unlocked"


@pytest.mark.parametrize("failing", ["the lock event", "the email"])
def test_f4_f6_an_unlock_that_fails_part_way_leaves_the_lock_and_the_day_run_again_unlocks(
    db, django_capture_on_commit_callbacks, monkeypatch, failing
):
    """F4, F6, D1: Free with a card from 1 December 2026, 2,000 MTUs in January and in February
    2027: `locked` at January's close, `locked_data_stopped` at February's (two strikes). A
    move to Team on 15 March entered before the clock reached that day finds no lock to lift;
    the clock's run of 15 March lifts it. If writing its lock event, or queueing its email,
    fails, the run of the day fails and the lock is as it was, so running the day again
    unlocks with its event and its one email. Before, the lock was left `unlocked` with no
    event or no email, and the day run again found nothing to do."""
    ws = workspace(as_of=date(2026, 12, 1), card=True)
    usage(ws, date(2027, 1, 1), 2_000)
    usage(ws, date(2027, 2, 1), 2_000)
    services.change_to_team(ws, as_of=date(2027, 3, 15))
    services.run_billing(as_of=date(2027, 3, 14))
    assert lock_of(ws) == "locked_data_stopped"

    def fail(*args, **kwargs):
        raise DatabaseError(f"{failing} could not be written")

    with monkeypatch.context() as patch:
        if failing == "the lock event":
            patch.setattr(LockEvent.objects, "bulk_create", fail)
        else:
            patch.setattr(locks, "queue_emails_rendered_when_sent", fail)
        with pytest.raises(DatabaseError, match="could not be written"):
            services.run_billing(as_of=date(2027, 3, 15))
    assert lock_of(ws) == "locked_data_stopped"
    assert not ws.lock_events.filter(cause="moved_to_team").exists()

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2027, 3, 15))
    assert lock_of(ws) == "unlocked"
    assert list(ws.lock_events.filter(on=date(2027, 3, 15)).values_list("to_lock", "cause")) == [
        ("unlocked", "moved_to_team")
    ]
    assert OutboundEmail.objects.filter(kind="unlocked").count() == 1
    assert len([m for m in mail.outbox if ws.name in m.body]) == 1


@pytest.mark.parametrize("day_of_month", [1, 15])
def test_f1_f3_i4_the_database_refuses_a_month_that_is_not_its_first_day(db, day_of_month):
    """F1, F2/F3, I4: one strike, one lock change and one close a month are unique constraints
    on the month's date; the 15th of June beside the 1st was a second of each, which the
    database took (the constraint audit). A month is its first day now, as the usage's is."""
    from billing.models import MonthClose

    ws = workspace(as_of=date(2026, 1, 1))
    month = date(2026, 6, day_of_month)
    rows = {
        "strike": lambda: Strike.objects.create(workspace=ws, month=month, mtus=5_000),
        "lock change": lambda: LockEvent.objects.create(
            workspace=ws,
            on=date(2026, 7, 1),
            month=month,
            from_lock="unlocked",
            to_lock="locked",
            cause=LockEvent.Cause.FREE_LIMIT,
        ),
        "close": lambda: MonthClose.objects.create(month=month, closed_on=date(2026, 7, 1)),
    }
    for name, create in rows.items():
        if day_of_month == 1:
            create()
            continue
        with pytest.raises(IntegrityError), transaction.atomic():
            create()
            pytest.fail(f"a {name} for 15 June 2026 was stored")
