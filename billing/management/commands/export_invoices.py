"""`manage.py export_invoices [--from YYYY-MM] [--to YYYY-MM] [-o FILE]`: invoices by issue
month (both ends included) as the finance page's CSV, through the same filter and writer."""

from django.core.management.base import BaseCommand, CommandError

from billing.csv_export import InvoiceCsv
from billing.filters import IssueMonthFilter
from billing.models import Invoice


class Command(BaseCommand):
    help = "Write invoices as CSV, by issue month (both ends included), to stdout or a file."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="issued_from", metavar="YYYY-MM")
        parser.add_argument("--to", dest="issued_to", metavar="YYYY-MM")
        parser.add_argument("-o", "--output", metavar="FILE", help="Default: standard output.")

    def handle(self, *args, issued_from, issued_to, output, **options):
        data = {"issued_from": issued_from or "", "issued_to": issued_to or ""}
        month_filter = IssueMonthFilter(data, queryset=Invoice.objects.all())
        if not month_filter.is_valid():
            raise CommandError(
                " ".join(str(e) for errors in month_filter.errors.values() for e in errors)
            )
        export = InvoiceCsv(month_filter.qs)
        if output:
            try:
                with open(output, "wb") as file:
                    for chunk in export:
                        file.write(chunk)
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}.") from None
            self.stderr.write(f"{export.rows:,} invoice(s) written to {output}.")
        else:
            for chunk in export:
                self.stdout.write(chunk.decode(), ending="")
