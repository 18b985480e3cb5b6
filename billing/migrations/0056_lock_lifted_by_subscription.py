"""F7: a move to Team's lock change names the subscription whose upgrade lifted the lock, so
two moves on one day are told apart. Existing ones are linked to the Team subscriptions started
on their day, the latest change to the latest subscription (as the lift was read before: the
day's latest)."""

from collections import defaultdict
from itertools import zip_longest

import django.db.models.deletion
from django.db import migrations, models


def link_lifts(apps, schema_editor):
    events = apps.get_model("billing", "LockEvent")
    subscriptions = apps.get_model("billing", "Subscription")
    lifts = defaultdict(list)
    for pk, workspace_id, on in (
        events.objects.filter(cause="moved_to_team", subscription=None)
        .order_by("-id")
        .values_list("pk", "workspace_id", "on")
    ):
        lifts[workspace_id, on].append(pk)
    if not lifts:
        return
    started = defaultdict(list)
    for pk, workspace_id, on in (
        subscriptions.objects.filter(
            plan__code="team", workspace_id__in={ws for ws, _ in lifts}
        )
        .order_by("-pk")
        .values_list("pk", "workspace_id", "started_on")
    ):
        if (workspace_id, on) in lifts:
            started[workspace_id, on].append(pk)
    for key, lift_ids in lifts.items():
        subs = started.get(key)
        if not subs:
            continue
        # More lifts than subscriptions that day: the earliest ones go to the earliest.
        for lift_id, sub_id in zip_longest(lift_ids, subs[: len(lift_ids)], fillvalue=subs[-1]):
            events.objects.filter(pk=lift_id).update(subscription_id=sub_id)


class Migration(migrations.Migration):
    dependencies = [("billing", "0055_email_expired")]

    operations = [
        migrations.AddField(
            model_name="lockevent",
            name="subscription",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="lifted_locks",
                to="billing.subscription",
            ),
        ),
        migrations.RunPython(link_lifts, migrations.RunPython.noop),
    ]
