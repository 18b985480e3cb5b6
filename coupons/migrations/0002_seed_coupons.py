"""C8: the seeded coupons. NONPROFIT: $120.00 off the monthly Team bill, forever (C6).
STARTUP: the startup program's $25,000.00 yearly credit, both intervals (CR1)."""

from decimal import Decimal

from django.db import migrations

SEEDS = [
    {
        "code": "NONPROFIT",
        "name": "Non-profit discount",
        "kind": "nonprofit",
        "amount_off": Decimal("120.00"),
        "duration": "forever",
        "applies_monthly": True,
        "applies_annual": False,
    },
    {
        "code": "STARTUP",
        "name": "Startup program credit",
        "kind": "startup_program",
        "credit_amount": Decimal("25000.00"),
        "duration": "once",
        "applies_monthly": True,
        "applies_annual": True,
    },
]


def seed(apps, schema_editor):
    Coupon = apps.get_model("coupons", "Coupon")
    for values in SEEDS:
        Coupon.objects.get_or_create(code=values["code"], defaults=values)


def unseed(apps, schema_editor):
    Coupon = apps.get_model("coupons", "Coupon")
    Coupon.objects.filter(code__in=[s["code"] for s in SEEDS], redemptions=None).delete()


class Migration(migrations.Migration):
    dependencies = [("coupons", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
