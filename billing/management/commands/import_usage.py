from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.errors import BillingError
from billing.formatting import count, import_outcome
from billing.services import import_usage


class Command(BaseCommand):
    help = (
        "Import monthly usage from a CSV (workspace,month,mtus): all rows or none (U2). The file "
        "is streamed: memory does not grow with its size."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            # DESIGN: every bad line named. U2: a month after today's (UTC) is a bad line.
            result = import_usage(file, listed=None, as_of=timezone.now().date())
        except BillingError as exc:
            lines = getattr(exc, "errors", None)
            if lines:
                raise CommandError(
                    f"Nothing imported from {file}; {count(exc.bad_lines)} bad line(s):\n"
                    + "\n".join(lines)
                ) from None
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Imported {file}: {import_outcome(**result)}."))
