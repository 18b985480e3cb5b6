"""X4, X5, R1, R3: rights on exemption certificates. Support uploads them (and may open the
documents it uploaded); finance uploads, reviews and opens them; reviewers get nothing here."""

from django.db import migrations

from billing.roles import FINANCE, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {
    SUPPORT: ["view_taxexemption", "add_taxexemption"],
    FINANCE: ["view_taxexemption", "add_taxexemption", "review_taxexemption"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_seed_tax_rates"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
