"""D4: `Workspace.changes_dated_to` raised to the latest coupon redemption or removal and
year-one grant a workspace already has (billing 0023 filled it in from billing's records)."""

from django.db import migrations
from django.db.models import Max

RECORDS = [("Redemption", ("redeemed_on", "ended_on"), {}), ("CreditGrant", ("valid_from",), {"year": 1})]


def raise_to(apps, schema_editor):
    Workspace = apps.get_model("billing", "Workspace")
    latest = {}
    for name, fields, only in RECORDS:
        rows = apps.get_model("coupons", name).objects.filter(**only).values("workspace_id")
        for field in fields:
            for workspace_id, day in rows.annotate(day=Max(field)).values_list(
                "workspace_id", "day"
            ):
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
    dependencies = [
        ("billing", "0023_changes_dated_to_from_the_records"),
        ("coupons", "0007_nonprofit_proof_review_dated"),
    ]

    operations = [migrations.RunPython(raise_to, migrations.RunPython.noop)]
