"""U1: a slug is one workspace's in any capitals. Slugs kept before that which differ only in
capitals stop the migration with their names, for support to rename one of each pair first."""

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower


def refuse_slugs_differing_in_capitals(apps, schema_editor):
    Workspace = apps.get_model("billing", "Workspace")
    clashes = (
        Workspace.objects.annotate(slug_lower=Lower("slug"))
        .values("slug_lower")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("slug_lower", flat=True)
    )
    if clashes:
        slugs = sorted(
            Workspace.objects.annotate(slug_lower=Lower("slug"))
            .filter(slug_lower__in=list(clashes))
            .values_list("slug", flat=True)
        )
        raise RuntimeError(
            "Workspace slugs differ only in capitals: " + ", ".join(slugs[:50]) + ". Give one "
            "of each such pair another slug, then migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0035_history_numbered_as_big_integers"),
    ]

    operations = [
        migrations.RunPython(refuse_slugs_differing_in_capitals, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="workspace",
            constraint=models.UniqueConstraint(
                Lower("slug"), name="workspace_slug_unique_in_any_case"
            ),
        ),
    ]
