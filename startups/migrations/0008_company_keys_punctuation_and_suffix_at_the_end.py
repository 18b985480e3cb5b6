"""E5: company keys recomputed: marks inside a word are dropped ("Acme S.A." was "acme s a",
not "Acme SA"'s "acme"), a legal suffix is dropped only from the end ("Limited Run Games" was
"run games"), and a key fits its column (a "ß" folds to "ss"). Open applications that now share
a company with another open one fail E5 in their stored checks too (the queue reads them)."""

import re
import unicodedata

from django.db import migrations

# As `startups.eligibility.company_key` computes it on the day of this migration.
LEGAL_SUFFIXES = frozenset(
    ("inc", "llc", "ltd", "gmbh", "sas", "sa", "bv", "co", "corp", "corporation", "limited")
)
IN_WORD_MARKS = re.compile(r"[.'’]")


def company_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).casefold()
    folded = IN_WORD_MARKS.sub("", "".join(c for c in folded if not unicodedata.combining(c)))
    words = re.sub(r"[\W_]+", " ", folded).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)[:200]


def recompute(apps, schema_editor):
    StartupApplication = apps.get_model("startups", "StartupApplication")
    changed = []
    rows = StartupApplication.objects.only("pk", "company_name", "company_key")
    for application in rows.iterator(chunk_size=2_000):
        key = company_key(application.company_name)
        if key != application.company_key:
            application.company_key = key
            changed.append(application)
    StartupApplication.objects.bulk_update(changed, ["company_key"], batch_size=2_000)
    _fail_e5_of_companies_applying_twice(StartupApplication)


# As `StartupApplication.OPEN_STATUSES` on the day of this migration.
OPEN_STATUSES = ("submitted", "in_review")


def _fail_e5_of_companies_applying_twice(StartupApplication):
    open_rows = StartupApplication.objects.filter(status__in=OPEN_STATUSES).exclude(
        company_key=""
    )
    by_key = {}
    for pk, key, name in open_rows.order_by("pk").values_list("pk", "company_key", "company_name"):
        by_key.setdefault(key, []).append((pk, name))
    stale = []
    for rows in by_key.values():
        if len(rows) < 2:
            continue
        for pk, _ in rows:
            other_pk, other_name = next(row for row in rows if row[0] != pk)
            application = StartupApplication.objects.get(pk=pk)
            for check in application.checks:
                if check.get("id") == "E5" and check.get("passed"):
                    check["passed"] = False
                    check["reason"] = f"Application #{other_pk} for {other_name} is still open"
                    failing = set(application.failing_checks.split()) | {"E5"}
                    application.failing_checks = " ".join(sorted(failing))
                    stale.append(application)
    StartupApplication.objects.bulk_update(stale, ["checks", "failing_checks"], batch_size=2_000)


class Migration(migrations.Migration):
    dependencies = [("startups", "0007_company_keys_in_any_script")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
