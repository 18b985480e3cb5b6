"""Credit notes give back their share of the invoice's tax (K3, X3): the approved ones on
file get it as `tax_given_back` would have set it, in the order they were approved (by day,
then as entered). A figure derived from rows kept, set once: no history row of its own."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import migrations, models

CENT = Decimal("0.01")


def give_back_tax(apps, schema_editor):
    CreditNote = apps.get_model("billing", "CreditNote")
    approved = (
        CreditNote.objects.filter(status="approved", invoice__tax__gt=0)
        # Before voids were refused with approved notes, a refunded invoice could be voided:
        # the tax report counts none of a void invoice's tax, so its notes give none back.
        .exclude(invoice__status="void")
        .select_related("invoice")
        .order_by("invoice_id", "decided_on", "id")
    )
    invoice_id = credited = given_back = None
    for note in approved.iterator():
        if note.invoice_id != invoice_id:
            invoice_id, credited, given_back = note.invoice_id, Decimal("0.00"), Decimal("0.00")
        credited += note.amount
        share = credited * note.invoice.tax / note.invoice.total
        note.tax = share.quantize(CENT, rounding=ROUND_HALF_UP) - given_back
        given_back += note.tax
        note.save(update_fields=["tax"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0025_plan_terms_role_grants"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="creditnote",
            name="tax",
            field=models.DecimalField(decimal_places=2, default=Decimal("0.00"), max_digits=12),
        ),
        migrations.AddField(
            model_name="historicalcreditnote",
            name="tax",
            field=models.DecimalField(decimal_places=2, default=Decimal("0.00"), max_digits=12),
        ),
        migrations.RunPython(give_back_tax, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="creditnote",
            constraint=models.CheckConstraint(
                condition=models.Q(("tax__gte", 0), ("tax__lte", models.F("amount"))),
                name="credit_note_tax_within_amount",
            ),
        ),
    ]
