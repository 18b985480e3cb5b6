"""K3: a credit note's status is one of its choices, and a decided note (approved or rejected)
has its decision date while a requested one has none, as the other reviewed rows do. Safe on
existing rows: status and decision date are only written together, by `decide_credit_note`
(billing.credit_notes), never from the admin."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("billing", "0016_usage_import_jobs")]

    operations = [
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["requested", "approved", "rejected"])),
                name="credit_note_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.CheckConstraint(
                condition=models.Q(("decided_on__isnull", True), ("status", "requested"))
                | models.Q(
                    models.Q(("status", "requested"), _negated=True),
                    ("decided_on__isnull", False),
                ),
                name="credit_note_decided_on_with_decision",
            ),
        ),
    ]
