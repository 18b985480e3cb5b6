"""R1: trigram indexes for the outbox's search (recipient, subject, object key), on PostgreSQL
only, of the expression Django writes for `icontains` there (`UPPER(column::text)`), as 0029
has them for workspaces and invoices (and created pg_trgm): a search finds the same rows as
before, through the indexes instead of comparing every row (1.1 s at 1,000,000 emails). A word
under three characters has no trigram: it is still compared with every row.

The indexes keep GIN's pending list (fastupdate, the default): a new row's trigrams are
appended there and merged in bulk by autovacuum or when the list reaches 4 MB, and a search
reads the list as it is. At 1,000,000 emails, a month close's 4,494 lock emails were written
in 49–56 ms without the indexes, 88–156 ms with them, 388–690 ms without the pending list;
20,000 campaign emails in 0.2 s, 0.9–1.0 s, 4.5–5.7 s; a search with those in the list took
6–34 ms.

Built CONCURRENTLY (outside a transaction), so the outbox takes writes while they build (40–50 s
at 1,000,000 emails): a plain CREATE INDEX would hold back every email queued, claimed or
marked sent until then. A build that failed leaves an invalid index: it is dropped first.
"""

from django.db import migrations

# (index, column): the columns the outbox list searches (OutboundEmailAdmin.search_fields).
SEARCHED = [
    ("email_to_search", "to"),
    ("email_subject_search", "subject"),
    ("email_object_key_search", "object_key"),
]


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for index, column in SEARCHED:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(index)}")
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY {quote(index)} ON billing_outboundemail "
            f"USING gin ((UPPER({quote(column)}::text)) gin_trgm_ops)"
        )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, _ in SEARCHED:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(index)}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ('billing', '0031_invoice_list_in_number_order'),
    ]

    operations = [
        migrations.RunPython(create_search_indexes, drop_search_indexes),
    ]
