"""I1: invoices in number order. Numbers grow a seventh digit after INV-YYYY-999999, and their
text put INV-2026-1000000 between INV-2026-100000 and INV-2026-100001: the invoice list (and
any list ordered by invoice) now orders by issue date, then the number's length, then the
number, and its index has that order, so its first page is still read from the index."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0030_regions_kept_as_codes'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='invoice',
            options={'ordering': ['-issue_date', '-number__length', '-number'], 'permissions': [('void_invoice', 'Can void an invoice'), ('export_invoice', 'Can export invoices and see finance reports')]},
        ),
        migrations.AddIndex(
            model_name='invoice',
            index=models.Index(models.OrderBy(models.F('issue_date'), descending=True), models.OrderBy(django.db.models.functions.text.Length('number'), descending=True), models.OrderBy(models.F('number'), descending=True), name='invoice_number_order'),
        ),
        migrations.RemoveIndex(
            model_name='invoice',
            name='billing_inv_issue_d_079e93_idx',
        ),
    ]
