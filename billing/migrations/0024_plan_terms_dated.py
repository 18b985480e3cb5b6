"""P1, P2, D3, D4: a plan's terms become dated rows (PlanTerms), so a month is billed at the
terms in force then however late the clock runs it."""
from datetime import date

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models


TERMS = (
    "monthly_price",
    "annual_price",
    "included_mtus",
    "overage_rate",
    "bills_overage",
    "seats",
    "warehouse_syncs_per_day",
    "trial_days",
)


def terms_from_the_plans(apps, schema_editor):
    """Each plan's terms become its terms "from the start" (they applied whenever the clock
    ran), and the plan's history of them (who changed what, when, why) the history of those."""
    Plan = apps.get_model("billing", "Plan")
    PlanTerms = apps.get_model("billing", "PlanTerms")
    HistoricalPlan = apps.get_model("billing", "HistoricalPlan")
    HistoricalPlanTerms = apps.get_model("billing", "HistoricalPlanTerms")
    for plan in Plan.objects.all():
        terms = PlanTerms.objects.create(
            plan=plan, effective_on=date.min, **{name: getattr(plan, name) for name in TERMS}
        )
        HistoricalPlanTerms.objects.bulk_create(
            HistoricalPlanTerms(
                id=terms.pk,
                plan_id=plan.pk,
                effective_on=date.min,
                history_date=old.history_date,
                history_type=old.history_type,
                history_user_id=old.history_user_id,
                history_change_reason=old.history_change_reason,
                **{name: getattr(old, name) for name in TERMS},
            )
            for old in HistoricalPlan.objects.filter(id=plan.pk).order_by("history_date")
        )


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0023_changes_dated_to_from_the_records'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HistoricalPlanTerms',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('effective_on', models.DateField()),
                ('monthly_price', models.DecimalField(decimal_places=2, max_digits=10)),
                ('annual_price', models.DecimalField(decimal_places=2, max_digits=10)),
                ('included_mtus', models.PositiveBigIntegerField(help_text='Monthly tracked users included a month.')),
                ('overage_rate', models.DecimalField(decimal_places=4, help_text='Price per MTU above the included amount.', max_digits=10)),
                ('bills_overage', models.BooleanField(default=False)),
                ('seats', models.PositiveIntegerField(blank=True, null=True)),
                ('warehouse_syncs_per_day', models.PositiveIntegerField(blank=True, null=True)),
                ('trial_days', models.PositiveIntegerField(default=0)),
                ('history_change_reason', models.TextField(null=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
            ],
            options={
                'verbose_name': 'historical plan terms',
                'verbose_name_plural': 'historical plan terms',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='PlanTerms',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('effective_on', models.DateField()),
                ('monthly_price', models.DecimalField(decimal_places=2, max_digits=10)),
                ('annual_price', models.DecimalField(decimal_places=2, max_digits=10)),
                ('included_mtus', models.PositiveBigIntegerField(help_text='Monthly tracked users included a month.')),
                ('overage_rate', models.DecimalField(decimal_places=4, help_text='Price per MTU above the included amount.', max_digits=10)),
                ('bills_overage', models.BooleanField(default=False)),
                ('seats', models.PositiveIntegerField(blank=True, null=True)),
                ('warehouse_syncs_per_day', models.PositiveIntegerField(blank=True, null=True)),
                ('trial_days', models.PositiveIntegerField(default=0)),
            ],
            options={
                'verbose_name_plural': 'plan terms',
                'ordering': ['plan', 'effective_on'],
            },
        ),
        migrations.AlterModelOptions(
            name='plan',
            options={'ordering': ['code']},
        ),
        migrations.AddField(
            model_name='historicalplanterms',
            name='history_user',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='historicalplanterms',
            name='plan',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='billing.plan'),
        ),
        migrations.AddField(
            model_name='planterms',
            name='plan',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='terms', to='billing.plan'),
        ),
        migrations.AddConstraint(
            model_name='planterms',
            constraint=models.UniqueConstraint(fields=('plan', 'effective_on'), name='one_plan_terms_a_day'),
        ),
        migrations.AddConstraint(
            model_name='planterms',
            constraint=models.CheckConstraint(condition=models.Q(('monthly_price__gte', 0), ('annual_price__gte', 0), ('overage_rate__gte', 0)), name='plan_terms_prices_not_negative'),
        ),
        # Dated terms do not fold back into one set: not reversible.
        migrations.RunPython(terms_from_the_plans),
        migrations.RemoveConstraint(
            model_name='plan',
            name='plan_prices_not_negative',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='annual_price',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='bills_overage',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='included_mtus',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='monthly_price',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='overage_rate',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='seats',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='trial_days',
        ),
        migrations.RemoveField(
            model_name='historicalplan',
            name='warehouse_syncs_per_day',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='annual_price',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='bills_overage',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='included_mtus',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='monthly_price',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='overage_rate',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='seats',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='trial_days',
        ),
        migrations.RemoveField(
            model_name='plan',
            name='warehouse_syncs_per_day',
        ),
    ]
