"""R3, I6: finance may try the invoices a close set aside again at once, from the close's page
(`billing.month_close.retry_set_aside`, as the daily run does), rather than wait for the next
daily run once support has fixed a cause."""

from django.db import migrations

from billing.roles import FINANCE, grant_permissions, revoke_permissions

GRANTS = {FINANCE: ["retry_set_aside_monthclose"]}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0051_usage_import_job_bad_lines_file"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="monthclose",
            options={
                "ordering": ["-month"],
                "permissions": [
                    ("retry_set_aside_monthclose", "Can try set-aside invoices again now")
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
