"""R2: trigram indexes for the searches of applications (the reviewer queue's company or email,
the application list's website too, the header's search box), on PostgreSQL only, of the
expression Django writes for `icontains` there (`UPPER(column::text)`), as billing 0029 has
them for workspaces and invoices (and created pg_trgm): a search finds the same rows as before,
through the indexes instead of comparing every row (bench/review_queue.py, 50,000
applications: the queue searched for an email fragment took 183 ms, 154 ms of it reading the
table). A word under three characters has no trigram: it is still compared with every row.

Built CONCURRENTLY (outside a transaction), as billing 0032's, so the public form's
submissions are taken while they build. A build that failed leaves an invalid index: it is
dropped first.
"""

from django.db import migrations

# (index, column): the columns the application searches read (ApplicationFilter.q,
# StartupApplicationAdmin.search_fields, startups.admin.search).
SEARCHED = [
    ("application_company_search", "company_name"),
    ("application_email_search", "contact_email"),
    ("application_website_search", "website"),
]


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for index, column in SEARCHED:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(index)}")
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY {quote(index)} ON startups_startupapplication "
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
        ('billing', '0029_search_trigram_indexes'),
        ('startups', '0009_one_confirmation_a_day_per_address'),
    ]

    operations = [
        migrations.RunPython(create_search_indexes, drop_search_indexes),
    ]
