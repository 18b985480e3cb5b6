"""E3: every ISO 3166-1 country is eligible except CU, IR, KP, SY, RU and BY (SPEC S2)."""

from django.db import migrations
from django_countries import countries

EXCLUDED = {"CU", "IR", "KP", "SY", "RU", "BY"}


def seed(apps, schema_editor):
    EligibleTerritory = apps.get_model("startups", "EligibleTerritory")
    EligibleTerritory.objects.bulk_create(
        [EligibleTerritory(country=code) for code, _ in countries if code not in EXCLUDED],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("startups", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
