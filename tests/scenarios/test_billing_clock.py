"""DESIGN "Time" (D4): running the billing clock day by day gives what one call at the end gives,
and both give the invoices written out below with their figures."""

from datetime import date
from functools import partial

import pytest
from django.core import mail

from billing import services
from billing.models import Invoice, LockEvent, Strike, Subscription, Workspace
from tests.billing.factories import workspace

from .clock import daily_and_catch_up, run_days, subscription_rows

START, END = date(2026, 1, 1), date(2026, 5, 3)

# Every invoice of the run: workspace, kind, issue date, subtotal, discount, credits, tax, total.
# Worked by hand from SPEC (team: 120.00 a month, 10,000 MTUs included, 0.01 per MTU above;
# 12,000 MTUs a month, so 20.00 of overage where M3 allows it; Oregon: no tax, no coupons):
# - trial-card: trial 1–14 January, paid from the 15th (T3, T4): January 120 × 17/31 = 65.806
#   → 65.81 (M2), no overage in a month with trial days (M3); February 120.00 + 20.00. Annual
#   from 10 March (K4): a final invoice for 1–9 March, 120 × 9/31 = 34.838 → 34.84 + 20.00 on
#   the MTUs reported so far (K1), and 1,440.00 that day (K2); March's overage is billed
#   already, so its close issues nothing (K1, K2); April's close bills the overage only.
# - annual: 1,440.00 on 15 January, the first paid day (K2); January has trial days, so from
#   February each close bills the 20.00 of overage only.
# - canceller: trial from 5 January, paid from the 19th: 120 × 13/31 = 50.322 → 50.32;
#   cancelled 25 February: final 120 × 24/28 = 102.857 → 102.86 + 20.00 = 122.86 (K1).
# - upgrader: trial from 20 January, paid from 3 February: nothing for January (no paid day),
#   February 120 × 26/28 = 111.428 → 111.43 without overage (M3), then 140.00 a month.
# - trial-nocard and free-over stay on Free: no invoice.
INVOICES = [
    ("annual", "annual", "2026-01-15", "1440.00", "0.00", "0.00", "0.00", "1440.00"),
    ("annual", "monthly", "2026-03-01", "20.00", "0.00", "0.00", "0.00", "20.00"),
    ("annual", "monthly", "2026-04-01", "20.00", "0.00", "0.00", "0.00", "20.00"),
    ("annual", "monthly", "2026-05-01", "20.00", "0.00", "0.00", "0.00", "20.00"),
    ("canceller", "monthly", "2026-02-01", "50.32", "0.00", "0.00", "0.00", "50.32"),
    ("canceller", "final", "2026-02-25", "122.86", "0.00", "0.00", "0.00", "122.86"),
    ("trial-card", "monthly", "2026-02-01", "65.81", "0.00", "0.00", "0.00", "65.81"),
    ("trial-card", "monthly", "2026-03-01", "140.00", "0.00", "0.00", "0.00", "140.00"),
    ("trial-card", "final", "2026-03-10", "54.84", "0.00", "0.00", "0.00", "54.84"),
    ("trial-card", "annual", "2026-03-10", "1440.00", "0.00", "0.00", "0.00", "1440.00"),
    ("trial-card", "monthly", "2026-05-01", "20.00", "0.00", "0.00", "0.00", "20.00"),
    ("upgrader", "monthly", "2026-03-01", "111.43", "0.00", "0.00", "0.00", "111.43"),
    ("upgrader", "monthly", "2026-04-01", "140.00", "0.00", "0.00", "0.00", "140.00"),
    ("upgrader", "monthly", "2026-05-01", "140.00", "0.00", "0.00", "0.00", "140.00"),
]


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
        "figures": [
            (
                i.workspace.slug,
                i.kind,
                i.issue_date.isoformat(),
                *(str(amount) for amount in (i.subtotal, i.discount, i.credits, i.tax, i.total)),
            )
            for i in Invoice.objects.select_related("workspace").order_by(
                "workspace__slug", "issue_date", "number"
            )
        ],
        "numbers": sorted(Invoice.objects.values_list("number", flat=True)),
        "locks": sorted(Workspace.objects.values_list("slug", "lock")),
        "lock_events": sorted(
            LockEvent.objects.values_list("workspace__slug", "to_lock", "cause", "month")
        ),
        "strikes": sorted(Strike.objects.values_list("workspace__slug", "month")),
        "subscriptions": subscription_rows(),
        "emails": sorted((m.to[0], m.subject) for m in mail.outbox),
    }


def test_day_by_day_equals_one_catch_up_run(db, django_capture_on_commit_callbacks):
    def run(daily):
        ws = _world()
        actions = partial(_actions, ws=ws)
        run_days(
            START, END, daily=daily, capture=django_capture_on_commit_callbacks, actions=actions
        )
        return _outcome()

    daily, catch_up = daily_and_catch_up(run)
    # Emails of dated events that were already past (T6) are the one expected difference.
    daily_emails = [e for e in daily.pop("emails") if "ends on" not in e[1]]
    assert daily_emails == [e for e in catch_up.pop("emails") if "ends on" not in e[1]]
    assert daily == catch_up
    assert daily["figures"] == INVOICES
    # On Free over the limit: the lapsed trial and the cancelled workspace too (F1).
    assert dict(daily["locks"]) == {
        "annual": "unlocked",
        "canceller": "locked_data_stopped",
        "free-over": "locked_data_stopped",
        "trial-card": "unlocked",
        "trial-nocard": "locked_data_stopped",
        "upgrader": "unlocked",
    }


@pytest.mark.parametrize("ending", ["cancelled", "closed"])
def test_d4_t6_a_trial_reminder_goes_alike_when_a_later_change_ends_the_trial(
    db, django_capture_on_commit_callbacks, support, ending
):
    """T6, D4: a trial from 1 January ends on the 15th, so its reminder is due on the 12th; the
    trial is cancelled (or the workspace closed) on the 13th. Day by day the reminder went on
    the 12th; a catch-up, which sees the change of the 13th already entered when it processes
    the 12th, sends it too, and the outboxes match."""
    start, end = date(2026, 1, 1), date(2026, 1, 20)

    def run(daily):
        ws = workspace(
            slug="trialist",
            name="Trialist",
            billing_email="t@example.com",
            as_of=start,
            plan="team",
        )

        def actions(day):
            if day == date(2026, 1, 13) and ending == "cancelled":
                services.change_to_free(ws, as_of=day)
            elif day == date(2026, 1, 13):
                services.close_workspace(ws, by=support, reason="Asked to", as_of=day)

        run_days(start, end, daily=daily, capture=django_capture_on_commit_callbacks,
                 actions=actions)  # fmt: skip
        reminders = Subscription.objects.values_list("trial_reminder_sent_on", flat=True)
        return {
            "emails": sorted((m.to[0], m.subject) for m in mail.outbox),
            "reminded_on": [day for day in reminders if day],
            "subscriptions": subscription_rows(),
        }

    daily, caught_up = daily_and_catch_up(run)
    assert daily["reminded_on"] == [date(2026, 1, 12)]
    assert caught_up == daily
