"""Grants the staff groups (SPEC R1–R3) their rights on the coupons app's models, least
privilege: support applies coupons and reviews non-profit proofs (R1), startup reviewers manage
accelerator partners (R2) and may read what a workspace received (E4), finance reads coupons
and credits (R3). Nobody may delete: these are money rows."""

from django.db import migrations

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT, grant_permissions, revoke_permissions

READ_MONEY = [
    "view_coupon",
    "view_redemption",
    "view_discountapplication",
    "view_creditgrant",
    "view_creditledgerentry",
]

GRANTS = {
    SUPPORT: [
        *READ_MONEY,
        "add_coupon", "change_coupon",
        "add_redemption", "remove_discount",
        "view_nonprofitproof", "add_nonprofitproof", "review_nonprofitproof",
    ],
    STARTUP_REVIEWERS: [
        *READ_MONEY,
        "view_acceleratorpartner", "change_acceleratorpartner", "review_acceleratorpartner",
    ],
    FINANCE: [*READ_MONEY],
}


def grant(apps, schema_editor):
    grant_permissions(apps, "coupons", GRANTS)


def revoke(apps, schema_editor):
    revoke_permissions(apps, "coupons", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("coupons", "0002_seed_coupons"),
        ("billing", "0003_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
