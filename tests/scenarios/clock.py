"""What the scenario tests share (D4): the same days run twice, once with the billing clock every
day and once with a single catch-up run at the end, each run rolled back after it."""

from datetime import timedelta

from django.apps import apps
from django.core import mail
from django.core.management.color import no_style
from django.db import connection, transaction

from billing import services
from billing.models import Subscription


def daily_and_catch_up(run):
    """`run(daily)` with daily=True, then daily=False, each from an empty outbox and rolled back
    after it; returns the two outcomes."""
    outcomes = []
    for daily in (True, False):
        mail.outbox.clear()
        _restart_ids()
        sid = transaction.savepoint()
        outcomes.append(run(daily))
        transaction.savepoint_rollback(sid)
    return outcomes


def _restart_ids():
    """Each table's next id just after its largest, so that both runs draw the same ids: a
    PostgreSQL sequence is not rolled back with the savepoint, and what names a row by its id
    (an application's confirmation, "#38") would otherwise differ between the runs."""
    statements = connection.ops.sequence_reset_sql(no_style(), apps.get_models())
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def run_days(start, end, *, daily, capture, actions):
    """`actions(day)` on every day from `start` through `end`, before that day is processed;
    the clock runs each day when `daily`, and through `end` in any case. `capture` is
    pytest-django's django_capture_on_commit_callbacks: what is sent on commit is sent."""
    day = start
    with capture(execute=True):
        while day <= end:
            actions(day)
            if daily:
                services.run_billing(as_of=day)
            day += timedelta(days=1)
        services.run_billing(as_of=end)


def letters():
    """Every email sent so far, as (recipient, subject), sorted."""
    return sorted((m.to[0], m.subject) for m in mail.outbox)


def both_ways(capture, start, end, actions, read):
    """D4: `actions(day)` from `start` through `end` with the clock run each day, then again
    with one run at the end; the two `read()`s (with the emails) must be equal. Returns it."""

    def run(daily):
        run_days(start, end, daily=daily, capture=capture, actions=actions)
        return {**read(), "letters": letters()}

    daily, catch_up = daily_and_catch_up(run)
    assert daily == catch_up
    return daily


def subscription_rows():
    """Every subscription: workspace, plan, interval, start, end and trial outcome."""
    return sorted(
        Subscription.objects.values_list(
            "workspace__slug", "plan__code", "interval", "started_on", "ended_on", "trial_outcome"
        ),
        key=str,
    )
