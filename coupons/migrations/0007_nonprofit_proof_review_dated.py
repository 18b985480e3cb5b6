"""C6: a reviewed non-profit proof has its review date, and only a reviewed one has it (as a
renewal's or a deal request's decision does). Safe on existing rows: status and review date are
set together by `approve_nonprofit_proof`/`reject_nonprofit_proof` only (read-only in the admin)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("coupons", "0006_support_edits_draft_campaigns")]

    operations = [
        migrations.AddConstraint(
            model_name="nonprofitproof",
            constraint=models.CheckConstraint(
                condition=models.Q(("reviewed_on__isnull", True), ("status", "submitted"))
                | models.Q(
                    models.Q(("status", "submitted"), _negated=True),
                    ("reviewed_on__isnull", False),
                ),
                name="nonprofit_proof_reviewed_on_with_review",
            ),
        ),
    ]
