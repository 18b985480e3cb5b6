"""The finance reports' roll-up (billing.models.InvoiceRollup), kept by triggers on the invoice
table so that every writer (the month close's COPY, an annual or final invoice, a void, a
forecast's rolled-back sandbox) keeps it without knowing of it; then filled from the invoices
already there.

PostgreSQL: one trigger a statement, reading its transition tables, adds one row per group the
statement changed (a COPY of 5,000 invoices adds a few dozen rows). SQLite, the laptop
default, has only row triggers: one row per invoice written.

The exempt prefix is billing.tax.EXEMPT_NOTE_PREFIX ("exempt: "), compared case-sensitively as
PostgreSQL compared it; tests/billing/test_invoice_rollup.py checks the roll-up against the
invoices themselves on both databases.
"""

from django.db import migrations, models

TABLE = "billing_invoicerollup"
GROUP = 'month, tax_country, tax_region, plan_code, "interval", taxed, exempt'
COLUMNS = f"{GROUP}, invoices, net, tax"
# An update that changes none of these cannot change the roll-up.
SUMMED = [
    "status",
    "issue_date",
    "tax_country",
    "tax_region",
    "plan_code",
    "interval",
    "tax_rate",
    "tax_note",
    "subtotal",
    "discount",
    "credits",
    "tax",
]


def _figures(row: str, sign: str, vendor: str) -> str:
    """The roll-up's columns for one invoice (`row` is "NEW." or "OLD." in a SQLite trigger,
    empty in a query), its count and amounts multiplied by `sign`."""
    if vendor == "postgresql":
        month, false = f"date_trunc('month', {row}issue_date)::date", "false"
    else:
        month, false = f"date({row}issue_date, 'start of month')", "0"
    return (
        f"{month} AS month, {row}tax_country AS tax_country, {row}tax_region AS tax_region, "
        f'{row}plan_code AS plan_code, {row}"interval" AS "interval", '
        f"coalesce({row}tax_rate > 0, {false}) AS taxed, "
        f"substr({row}tax_note, 1, 8) = 'exempt: ' AS exempt, {sign}1 AS invoices, "
        f"{sign}({row}subtotal - {row}discount - {row}credits) AS net, {sign}{row}tax AS tax"
    )


def _grouped(sources: list[tuple[str, str]], vendor: str) -> str:
    """INSERT of one row per group of what `sources` (table, sign) hold, counted invoices
    only (I3); a group whose changes cancel out (an update of other columns) adds nothing."""
    changes = " UNION ALL ".join(
        f"SELECT {_figures('', sign, vendor)} FROM {table} WHERE status <> 'void'"
        for table, sign in sources
    )
    return (
        f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {GROUP}, sum(invoices), sum(net), sum(tax) "
        f"FROM ({changes}) AS changes GROUP BY {GROUP} "
        "HAVING sum(invoices) <> 0 OR sum(net) <> 0 OR sum(tax) <> 0"
    )


POSTGRES_EVENTS = {
    "insert": ("REFERENCING NEW TABLE AS added", [("added", "")]),
    "update": (
        "REFERENCING OLD TABLE AS taken NEW TABLE AS added",
        [("added", ""), ("taken", "-")],
    ),
    "delete": ("REFERENCING OLD TABLE AS taken", [("taken", "-")]),
}


def _postgres_triggers() -> list[str]:
    statements = []
    for event, (referencing, sources) in POSTGRES_EVENTS.items():
        function = f"billing_invoice_rollup_{event}"
        statements += [
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_grouped(sources, 'postgresql')}; RETURN NULL; END $$",
            f"CREATE TRIGGER {function} AFTER {event.upper()} ON billing_invoice {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    # Emptying the invoices (a benchmark's reset) empties their roll-up: a DELETE, as the
    # roll-up may be in the same TRUNCATE (a test database's flush), which cannot truncate it
    # twice.
    return statements + [
        "CREATE FUNCTION billing_invoice_rollup_truncate() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN DELETE FROM {TABLE}; RETURN NULL; END $$",
        "CREATE TRIGGER billing_invoice_rollup_truncate AFTER TRUNCATE ON billing_invoice "
        "FOR EACH STATEMENT EXECUTE FUNCTION billing_invoice_rollup_truncate()",
    ]


def _sqlite_row(row: str, sign: str) -> str:
    return (
        f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {_figures(row, sign, 'sqlite')} "
        f"WHERE {row}status <> 'void';"
    )


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f'OLD."{column}" IS NOT NEW."{column}"' for column in SUMMED)
    return [
        "CREATE TRIGGER billing_invoice_rollup_insert AFTER INSERT ON billing_invoice "
        f"BEGIN {_sqlite_row('NEW.', '')} END",
        "CREATE TRIGGER billing_invoice_rollup_update AFTER UPDATE ON billing_invoice "
        f"WHEN {changed} BEGIN {_sqlite_row('OLD.', '-')} {_sqlite_row('NEW.', '')} END",
        "CREATE TRIGGER billing_invoice_rollup_delete AFTER DELETE ON billing_invoice "
        f"BEGIN {_sqlite_row('OLD.', '-')} END",
    ]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    triggers = _postgres_triggers() if vendor == "postgresql" else _sqlite_triggers()
    for statement in triggers:
        schema_editor.execute(statement)
    # The invoices already issued, as one statement inserting them would have added them.
    schema_editor.execute(_grouped([("billing_invoice", "")], vendor))


def drop_triggers(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for event in [*POSTGRES_EVENTS, "truncate"] if postgres else POSTGRES_EVENTS:
        name = f"billing_invoice_rollup_{event}"
        schema_editor.execute(f"DROP TRIGGER {name}" + (" ON billing_invoice" if postgres else ""))
        if postgres:
            schema_editor.execute(f"DROP FUNCTION {name}()")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0046_worker_heartbeat"),
    ]

    operations = [
        migrations.CreateModel(
            name="InvoiceRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.DateField()),
                ("tax_country", models.CharField(max_length=2)),
                ("tax_region", models.CharField(max_length=10)),
                ("plan_code", models.CharField(max_length=20)),
                ("interval", models.CharField(max_length=10)),
                ("taxed", models.BooleanField(help_text="A positive tax rate applied.")),
                ("exempt", models.BooleanField(help_text="A certificate exempted it (X4).")),
                ("invoices", models.BigIntegerField()),
                (
                    "net",
                    models.DecimalField(
                        decimal_places=2,
                        help_text="After discounts and credits (X3).",
                        max_digits=16,
                    ),
                ),
                ("tax", models.DecimalField(decimal_places=2, max_digits=16)),
            ],
            options={
                "indexes": [models.Index(fields=["month"], name="billing_inv_month_d44143_idx")],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
