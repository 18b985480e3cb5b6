from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.errors import BillingError
from billing.forms import usage_rows
from billing.services import import_usage


class Command(BaseCommand):
    help = "Import monthly usage from a CSV (workspace,month,mtus): all rows or none (U2)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        try:
            result = import_usage(usage_rows(text))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except BillingError as exc:
            lines = getattr(exc, "errors", None)
            if lines:
                raise CommandError(
                    f"Nothing imported from {file}; {len(lines)} bad line(s):\n" + "\n".join(lines)
                ) from None
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {file}: {result['created']} created, {result['replaced']} replaced."
            )
        )
