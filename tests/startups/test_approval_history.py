"""R4: the workspace's history row written by an approval recorded a copy read before the
redemption moved its date-order column (the history showed it going back to empty)."""

from datetime import date

from startups import services
from startups.models import StartupApplication
from tests.billing.factories import workspace

from .factories import application


def test_r4_the_approvals_history_row_of_the_workspace_shows_it_as_it_stands(db, reviewer):
    """approve_application saves `application.workspace`, an instance read before the coupon's
    redemption (which locked its own copy and moved `changes_dated_to` to 20 January): the
    workspace's last history row, "Startup program member", records every field as that stale
    copy had it, so the history reads `changes_dated_to` going back from 2026-01-20 to empty."""
    ws = workspace(as_of=date(2026, 1, 2), card=True, slug="nimbus")
    app = application(workspace=ws, as_of=date(2026, 1, 10))
    services.approve_application(
        StartupApplication.objects.get(pk=app.pk),
        by=reviewer,
        as_of=date(2026, 1, 20),
        credits_scope_confirmed=True,
    )
    ws.refresh_from_db()
    last = ws.history.order_by("-history_id").first()
    assert ws.changes_dated_to == date(2026, 1, 20)
    assert last.changes_dated_to == ws.changes_dated_to
