"""Trigram indexes for the searches (billing.search), on PostgreSQL only: Django writes
`icontains` there as `UPPER(column::text) LIKE UPPER('%words%')`, which a GIN index of that
expression's trigrams (pg_trgm) answers without reading the table; `istartswith` and `iexact`
too. SQLite, the laptop default, has no such index and reads its few rows.

pg_trgm ships with PostgreSQL and is a trusted extension (13+): the database's owner creates it.
"""

from django.db import migrations

# (index, table, column): the columns the search box and the lists search by words.
SEARCHED = [
    ("workspace_name_search", "billing_workspace", "name"),
    ("workspace_slug_search", "billing_workspace", "slug"),
    ("workspace_email_search", "billing_workspace", "billing_email"),
    ("invoice_number_search", "billing_invoice", "number"),
]


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index, table, column in SEARCHED:
        schema_editor.execute(
            f"CREATE INDEX {quote(index)} ON {quote(table)} "
            f"USING gin ((UPPER({quote(column)}::text)) gin_trgm_ops)"
        )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, _, _ in SEARCHED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index)}")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0028_list_orders_indexed'),
    ]

    operations = [
        migrations.RunPython(create_search_indexes, drop_search_indexes),
    ]
