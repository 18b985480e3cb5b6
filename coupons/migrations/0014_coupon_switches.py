"""D3, C5: coupons' switches on and off as dated rows, from their history so far (each change
of `active` dated the day it was saved), so a follow-up is decided by whether it was on when
the other coupon ran out."""

import django.db.models.deletion
from django.db import migrations, models


def switches_from_history(apps, schema_editor):
    history = apps.get_model("coupons", "HistoricalCoupon")
    switches = apps.get_model("coupons", "CouponSwitch")
    kept = set(apps.get_model("coupons", "Coupon").objects.values_list("pk", flat=True))
    rows, last = [], {}
    for coupon_id, saved_at, active in (
        history.objects.order_by("id", "history_date", "history_id")
        .values_list("id", "history_date", "active")
        .iterator()
    ):
        if coupon_id in kept and coupon_id in last and last[coupon_id] != active:
            rows.append(switches(coupon_id=coupon_id, on=saved_at.date(), active=active))
        last[coupon_id] = active
    switches.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("coupons", "0013_runs_out_on_says_which_invoice")]

    operations = [
        migrations.CreateModel(
            name="CouponSwitch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("on", models.DateField()),
                ("active", models.BooleanField()),
                (
                    "coupon",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="switches",
                        to="coupons.coupon",
                    ),
                ),
            ],
            options={
                "ordering": ["on", "id"],
                "indexes": [models.Index(fields=["coupon", "on"], name="coupon_switch_by_day")],
            },
        ),
        migrations.RunPython(switches_from_history, migrations.RunPython.noop),
    ]
