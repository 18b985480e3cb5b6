import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.errors import BillingError, UsageImportError
from billing.formatting import count, import_outcome
from billing.services import import_usage
from billing.usage_import import MAX_LISTED_LINES, bad_lines_report


class Command(BaseCommand):
    help = (
        "Import monthly usage from a CSV (workspace,month,mtus): all rows or none (U2). The file "
        "is streamed: memory does not grow with its size, nor with its bad lines'."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        # DESIGN: every bad line named. A file with more than a page's worth has them written
        # to stderr from a temporary file as they were found, not gathered into one message:
        # a million bad lines took 1.2 GB that way.
        with bad_lines_report() as report:
            try:
                # U2: a month after today's (UTC) is a bad line.
                result = import_usage(file, as_of=timezone.now().date(), bad_lines_to=report)
            except UsageImportError as exc:
                if exc.bad_lines <= MAX_LISTED_LINES:
                    raise CommandError(
                        f"Nothing imported from {file}; {count(exc.bad_lines)} bad line(s):\n"
                        + "\n".join(exc.errors)
                    ) from None
                report.seek(0)
                rows = csv.reader(report)
                next(rows)  # its header: line,problem
                for line, problem in rows:
                    self.stderr.write(f"Line {line}: {problem}.")
                raise CommandError(
                    f"Nothing imported from {file}; {count(exc.bad_lines)} bad line(s), each "
                    "named above."
                ) from None
            except BillingError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Imported {file}: {import_outcome(**result)}."))
