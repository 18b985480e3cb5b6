from decimal import Decimal

from django.db import migrations

PLANS = [
    # P1
    dict(
        code="free", name="Free", monthly_price=Decimal("0.00"), annual_price=Decimal("0.00"),
        included_mtus=1000, overage_rate=Decimal("0"), bills_overage=False, trial_days=0,
    ),
    # P2
    dict(
        code="team", name="Team", monthly_price=Decimal("120.00"),
        annual_price=Decimal("1440.00"), included_mtus=10000, overage_rate=Decimal("0.01"),
        bills_overage=True, seats=10, warehouse_syncs_per_day=2, trial_days=14,
    ),
]


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for plan in PLANS:
        Plan.objects.update_or_create(code=plan["code"], defaults=plan)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed_plans, migrations.RunPython.noop)]
