"""D4: `Workspace.changes_dated_to` filled in from the dated records a workspace already has (its
subscriptions' starts and ends, cards, closures and reopenings, unlocks by hand), so a change
entered ahead of the clock before the rule existed holds back an earlier-dated one as well.
The coupons app adds its redemptions and grants (coupons 0008)."""

from django.db import migrations
from django.db.models import Max

# (model, its dated fields); an unlock by hand is a lock change someone made.
RECORDS = [
    ("Subscription", ("started_on", "ended_on"), {}),
    ("PaymentMethod", ("added_on", "removed_on"), {}),
    ("WorkspaceClosure", ("closed_on", "reopened_on"), {}),
    ("LockEvent", ("on",), {"by__isnull": False}),
]


def fill_in(apps, schema_editor):
    Workspace = apps.get_model("billing", "Workspace")
    latest = {}
    for name, fields, only in RECORDS:
        rows = apps.get_model("billing", name).objects.filter(**only).values("workspace_id")
        for field in fields:
            for row in rows.annotate(day=Max(field)).values_list("workspace_id", "day"):
                workspace_id, day = row
                if day is not None and day > latest.get(workspace_id, day.min):
                    latest[workspace_id] = day
    changed = []
    for workspace in Workspace.objects.filter(pk__in=list(latest)).only(
        "pk", "created_on", "changes_dated_to"
    ):
        day = latest[workspace.pk]
        if day > (workspace.changes_dated_to or workspace.created_on):
            workspace.changes_dated_to = day
            changed.append(workspace)
    Workspace.objects.bulk_update(changed, ["changes_dated_to"], batch_size=2_000)


class Migration(migrations.Migration):
    dependencies = [("billing", "0022_workspace_changes_dated_to")]

    operations = [migrations.RunPython(fill_in, migrations.RunPython.noop)]
