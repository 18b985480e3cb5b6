"""DESIGN "Time": running the billing clock day by day gives what one call at the end gives."""

from datetime import date, timedelta

from django.core import mail
from django.db import transaction

from billing import services
from billing.models import Invoice, LockEvent, Strike, Subscription, Workspace
from tests.billing.factories import workspace

START, END = date(2026, 1, 1), date(2026, 5, 3)


def _world():
    """Workspaces in every state, created on the first day."""

    def make(slug, **kwargs):
        return workspace(
            slug=slug, name=slug, billing_email=f"{slug}@example.com", as_of=START, **kwargs
        )

    ws = {
        "trial_card": make("trial-card", plan="team", card=True),
        "trial_nocard": make("trial-nocard", plan="team"),
        "annual": make("annual", plan="team", interval="annual", card=True),
        "free_over": make("free-over"),
        "upgrader": make("upgrader", card=True),
        "canceller": make("canceller", card=True),
    }
    for w in ws.values():
        for month in (1, 2, 3, 4):
            if w.slug == "free-over":
                mtus = 3_000 if month in (1, 3) else 500
            else:
                mtus = 12_000
            services.record_usage(w, month=date(2026, month, 1), mtus=mtus)
    return ws


def _actions(day, ws):
    """Staff actions on given days, identical in both runs."""
    if day == date(2026, 1, 20):
        services.change_to_team(ws["upgrader"], as_of=day)
    if day == date(2026, 1, 5):
        services.change_to_team(ws["canceller"], as_of=day)
    if day == date(2026, 2, 25):
        services.change_to_free(ws["canceller"], as_of=day)
    if day == date(2026, 3, 10):
        services.change_interval(ws["trial_card"], interval="annual", as_of=day)


def _outcome():
    return {
        "invoices": sorted(
            (i.workspace.slug, i.kind, i.period_start, i.period_end, i.issue_date, i.total)
            for i in Invoice.objects.select_related("workspace")
        ),
        "numbers": sorted(Invoice.objects.values_list("number", flat=True)),
        "locks": sorted(Workspace.objects.values_list("slug", "lock")),
        "lock_events": sorted(
            LockEvent.objects.values_list("workspace__slug", "to_lock", "cause", "month")
        ),
        "strikes": sorted(Strike.objects.values_list("workspace__slug", "month")),
        "subscriptions": sorted(
            Subscription.objects.values_list(
                "workspace__slug",
                "plan__code",
                "interval",
                "started_on",
                "ended_on",
                "trial_outcome",
            ),
            key=str,
        ),
        "emails": sorted((m.to[0], m.subject) for m in mail.outbox),
    }


def _run(daily: bool, capture):
    ws = _world()
    day = START
    with capture(execute=True):
        while day <= END:
            _actions(day, ws)
            if daily:
                services.run_billing(as_of=day)
            day += timedelta(days=1)
        services.run_billing(as_of=END)
    return _outcome()


def test_day_by_day_equals_one_catch_up_run(db, django_capture_on_commit_callbacks):
    results = []
    for daily in (True, False):
        mail.outbox.clear()
        sid = transaction.savepoint()
        results.append(_run(daily, django_capture_on_commit_callbacks))
        transaction.savepoint_rollback(sid)
    daily, catch_up = results
    # Emails of dated events that were already past (T6) are the one expected difference.
    daily_emails = [e for e in daily.pop("emails") if "ends on" not in e[1]]
    assert daily_emails == [e for e in catch_up.pop("emails") if "ends on" not in e[1]]
    assert daily == catch_up
    assert len(daily["invoices"]) >= 10
    # On Free over the limit: the lapsed trial and the cancelled workspace too (F1).
    assert dict(daily["locks"]) == {
        "annual": "unlocked",
        "canceller": "locked_data_stopped",
        "free-over": "locked_data_stopped",
        "trial-card": "unlocked",
        "trial-nocard": "locked_data_stopped",
        "upgrader": "unlocked",
    }
