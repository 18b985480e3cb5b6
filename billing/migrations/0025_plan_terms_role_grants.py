"""P1, P2, R1–R3: whoever reads the plans reads their dated terms and the history of who
changed them, when and why; finance changes them through the plan's page (`change_plan`)."""

from django.db import migrations

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {role: ["view_planterms"] for role in (SUPPORT, STARTUP_REVIEWERS, FINANCE)}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0024_plan_terms_dated"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
