"""E5: company keys recomputed in any script, accents folded (they were ASCII only: every
name written in another script had the same empty key, and "Café" was not "Cafe")."""

import re
import unicodedata

from django.db import migrations

# As `startups.eligibility.company_key` computes it on the day of this migration.
LEGAL_SUFFIXES = re.compile(r"\b(inc|llc|ltd|gmbh|sas|sa|bv|co|corp|corporation|limited)\b")


def company_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).casefold()
    words = re.sub(r"[\W_]+", " ", "".join(c for c in folded if not unicodedata.combining(c)))
    return " ".join(LEGAL_SUFFIXES.sub(" ", words).split()) or " ".join(words.split())


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
    dependencies = [("startups", "0006_decisions_and_sources_constrained")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
