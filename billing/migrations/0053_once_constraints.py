"""Rules that happen once, held by the database too (the constraint audit): one trial per
workspace (T1); a strike's, a lock change's and a close's month is its first day, so the 15th
is no second one of the month (F1, F2/F3, I4); an invoice's discount and credit within its
subtotal (C4, CR2).

SQLite adds a check constraint by copying the table into a new one, which leaves behind the
invoice table's roll-up triggers (0047): they are created again on the new table, after the
invoice's constraint is added and after it is removed."""

import importlib

import django.db.models.expressions
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


def rollup_triggers_again(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    rollup = importlib.import_module("billing.migrations.0047_invoice_rollup")
    for event in rollup.POSTGRES_EVENTS:  # insert, update, delete: SQLite's three
        schema_editor.execute(f"DROP TRIGGER IF EXISTS billing_invoice_rollup_{event}")
    for statement in rollup._sqlite_triggers():
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0052_month_close_retry_permission'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, rollup_triggers_again),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(('subtotal__gte', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('discount'), '+', models.F('credits')), '-', models.Value(Decimal('0.001'))))), name='invoice_discount_and_credits_within_subtotal'),
        ),
        migrations.RunPython(rollup_triggers_again, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='lockevent',
            constraint=models.CheckConstraint(condition=models.Q(('month__isnull', True), ('month__day', 1), _connector='OR'), name='lock_event_month_is_first_day'),
        ),
        migrations.AddConstraint(
            model_name='monthclose',
            constraint=models.CheckConstraint(condition=models.Q(('month__day', 1)), name='month_close_month_is_first_day'),
        ),
        migrations.AddConstraint(
            model_name='strike',
            constraint=models.CheckConstraint(condition=models.Q(('month__day', 1)), name='strike_month_is_first_day'),
        ),
        migrations.AddConstraint(
            model_name='subscription',
            constraint=models.UniqueConstraint(condition=models.Q(('trial_end__isnull', False)), fields=('workspace',), name='one_trial_per_workspace'),
        ),
    ]
