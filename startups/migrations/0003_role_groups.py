"""R2: startup reviewers run the program; support and finance may look (workspaces' context)."""

from django.db import migrations

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {
    STARTUP_REVIEWERS: [
        "view_startupapplication", "add_startupapplication", "change_startupapplication",
        "review_application", "override_eligibility",
        "view_eligibleterritory", "add_eligibleterritory", "change_eligibleterritory",
        "view_renewalreview", "change_renewalreview",
        "view_partnerdeal", "add_partnerdeal", "change_partnerdeal",
        "view_dealrequest", "add_dealrequest", "change_dealrequest",
    ],
    SUPPORT: ["view_startupapplication"],
    FINANCE: ["view_startupapplication", "view_renewalreview"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "startups", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "startups", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("startups", "0002_seed_eligible_territories"), ("billing", "0003_role_groups")]
    operations = [migrations.RunPython(grant, revoke)]
