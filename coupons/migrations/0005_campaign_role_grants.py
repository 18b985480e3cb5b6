"""G1–G3, R1: support builds and launches promotion campaigns (through
`coupons.campaigns`); finance reads them with what they brought in."""

from django.db import migrations

from billing.roles import FINANCE, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {
    SUPPORT: ["view_campaign", "add_campaign", "launch_campaign"],
    FINANCE: ["view_campaign"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "coupons", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "coupons", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("coupons", "0004_campaigns"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
