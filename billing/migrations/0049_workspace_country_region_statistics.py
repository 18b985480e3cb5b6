"""Statistics of business country and region together, on PostgreSQL only: the two are
correlated (a US workspace's region is a state, another country's is blank or its own), and
without them the planner multiplies the share of US workspaces by the share of regions that are
no state over every country. For "region not a code" (X1) it then expected 31,000 of 150,000
workspaces where there were none, and the workspace list filtered by it and by a plan joined
every current subscription (0.45–0.50 s a page; bench/staff_walk.py). With the pairs' most
common values (`mcv`) it expects the few there are. ANALYZE fills them now; autovacuum keeps
them. SQLite, the laptop default, plans without such statistics and reads its few rows.
"""

from django.db import migrations

STATISTICS = "workspace_country_region_stats"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE STATISTICS {schema_editor.quote_name(STATISTICS)} (mcv) "
        "ON business_country, business_region FROM billing_workspace"
    )
    schema_editor.execute("ANALYZE billing_workspace")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP STATISTICS IF EXISTS {schema_editor.quote_name(STATISTICS)}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0048_subscription_list_sorted_by_trial_or_term_end"),
    ]

    operations = [
        migrations.RunPython(create_statistics, drop_statistics),
    ]
