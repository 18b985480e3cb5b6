"""W1, R1: support closes and reopens workspaces (through `close_workspace` and
`reopen_workspace`, with a reason); every role that reads workspaces reads their closures."""

from django.db import migrations

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {
    SUPPORT: ["close_workspace", "view_workspaceclosure"],
    STARTUP_REVIEWERS: ["view_workspaceclosure"],
    FINANCE: ["view_workspaceclosure"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0014_workspace_closures"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
