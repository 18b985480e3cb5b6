"""Creates the three staff groups (SPEC R1–R3) with their rights on billing's models."""

from django.db import migrations

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {
    SUPPORT: [
        "view_plan",
        "view_workspace", "add_workspace", "change_workspace",
        "change_plan_workspace", "unlock_workspace", "import_usage",
        "view_subscription",
        "view_usage", "add_usage", "change_usage",
        "view_strike", "view_lockevent",
        "view_invoice", "view_invoiceline",
        "view_creditnote", "add_creditnote",
        "view_outboundemail",
    ],
    STARTUP_REVIEWERS: [
        "view_workspace", "view_subscription", "view_usage", "view_plan",
    ],
    FINANCE: [
        "view_plan", "change_plan",
        "view_workspace", "view_subscription", "view_usage", "view_strike", "view_lockevent",
        "view_invoice", "view_invoiceline", "void_invoice", "export_invoice",
        "view_creditnote", "approve_creditnote",
        "view_taxrate", "add_taxrate", "change_taxrate",
        "view_monthclose",
    ],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_seed_plans"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
