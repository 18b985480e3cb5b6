"""I6, R3: finance, who reads the month close, reads the workspaces it set aside too (the close's
page lists them; without the right the list was left out without a word)."""

from django.db import migrations

from billing.roles import FINANCE, grant_permissions, revoke_permissions

GRANTS = {FINANCE: ["view_setasideinvoice"]}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_credit_note_status_and_decision_date"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
