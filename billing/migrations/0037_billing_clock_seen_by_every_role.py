"""D2, R1–R3: every role is refused a change dated on or before the billing clock's last
processed day, by a message that names it; each may now open the clock's page to read it
(read-only: the daily run writes it)."""

from django.db import migrations

from billing.roles import ROLES, grant_permissions, revoke_permissions

GRANTS = {role: ["view_billingclock"] for role in ROLES}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0036_workspace_slug_unique_in_any_case"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
