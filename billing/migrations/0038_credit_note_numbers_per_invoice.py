"""I5: a credit note is numbered among its invoice's approved notes (…-CN1, -CN2). The notes
approved before keep the number they were sent with, their row id."""

from django.conf import settings
from django.db import migrations, models


def keep_the_numbers_sent(apps, schema_editor):
    CreditNote = apps.get_model("billing", "CreditNote")
    CreditNote.objects.filter(status="approved").update(sequence=models.F("id"))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0037_billing_clock_seen_by_every_role"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="creditnote",
            name="sequence",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="historicalcreditnote",
            name="sequence",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(keep_the_numbers_sent, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.UniqueConstraint(
                fields=("invoice", "sequence"), name="one_credit_note_number_per_invoice"
            ),
        ),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("sequence__isnull", False), ("status", "approved")),
                    models.Q(
                        models.Q(("status", "approved"), _negated=True), ("sequence__isnull", True)
                    ),
                    _connector="OR",
                ),
                name="credit_note_numbered_when_approved",
            ),
        ),
    ]
