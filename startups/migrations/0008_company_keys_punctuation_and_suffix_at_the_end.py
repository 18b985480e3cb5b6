"""E5: company keys recomputed: marks inside a word are dropped ("Acme S.A." was "acme s a",
not "Acme SA"'s "acme"), a legal suffix is dropped only from the end ("Limited Run Games" was
"run games"), and a key fits its column (a "ß" folds to "ss")."""

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


class Migration(migrations.Migration):
    dependencies = [("startups", "0007_company_keys_in_any_script")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
