"""E5: company keys computed again for names holding an invisible format character (a soft
hyphen, a zero-width joiner): `company_key` read it as a space, so "Ac\u00adme" did not match
"Acme"."""

import unicodedata

from django.db import migrations

from startups.eligibility import company_key


def rekey(apps, schema_editor):
    applications = apps.get_model("startups", "StartupApplication")
    changed = []
    for application in applications.objects.only("pk", "company_name", "company_key").iterator():
        name = application.company_name
        if any(unicodedata.category(c) == "Cf" for c in name):
            application.company_key = company_key(name)
            changed.append(application)
    applications.objects.bulk_update(changed, ["company_key"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("startups", "0012_application_list_sorted_by_company_or_funding")]

    operations = [migrations.RunPython(rekey, migrations.RunPython.noop)]
