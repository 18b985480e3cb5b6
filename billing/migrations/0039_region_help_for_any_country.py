# X1: the region's help reads right for a workspace in any country (a read-only page shows it).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0038_credit_note_numbers_per_invoice"),
    ]

    operations = [
        migrations.AlterField(
            model_name="historicalworkspace",
            name="business_region",
            field=models.CharField(
                blank=True,
                help_text="The business's region: a state code (e.g. CA) where tax depends on it.",
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="workspace",
            name="business_region",
            field=models.CharField(
                blank=True,
                help_text="The business's region: a state code (e.g. CA) where tax depends on it.",
                max_length=10,
            ),
        ),
    ]
