"""R1, R3: support and finance see the email outbox and may resend an email that failed or is
stuck (the resend goes through `billing.emails.resend_email`; it never sends one twice)."""

from django.db import migrations

from billing.roles import FINANCE, SUPPORT, grant_permissions, revoke_permissions

GRANTS = {
    SUPPORT: ["resend_outboundemail"],
    FINANCE: ["view_outboundemail", "resend_outboundemail"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "billing", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "billing", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_outbox_claims"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
