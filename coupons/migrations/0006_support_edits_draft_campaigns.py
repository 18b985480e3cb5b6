"""G1, R1: support corrects a campaign before it is launched (name, email, coupon, audience:
`coupons.campaigns.update_campaign`, which refuses a launched one)."""

from django.db import migrations

from billing.roles import SUPPORT, grant_permissions, revoke_permissions

GRANTS = {SUPPORT: ["change_campaign"]}


def grant(apps, schema_editor):
    grant_permissions(apps, "coupons", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "coupons", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("coupons", "0005_campaign_role_grants")]
    operations = [migrations.RunPython(grant, revoke)]
