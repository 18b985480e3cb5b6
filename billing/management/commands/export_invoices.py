"""`manage.py export_invoices [--from YYYY-MM] [--to YYYY-MM] [-o FILE]`: invoices by issue
month (both ends included) as the finance page's CSV, through the same filter and writer."""

import os
import sys
import tempfile
from pathlib import Path

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
                write_whole(Path(output), export)
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}.") from None
            self.stderr.write(f"{export.rows:,} invoice(s) written to {output}.")
        else:
            write_utf8(options.get("stdout") or sys.stdout, export)


def write_utf8(stream, chunks) -> None:
    """The CSV's bytes as they are (UTF-8, as the file and the page give them) to a stream with
    a byte layer, whatever its text encoding: encoded again in a server's locale (latin-1), a
    "…" in a tax note stopped the export part-way. A text-only stream gets the text."""
    binary = getattr(stream, "buffer", None)
    if binary is None:
        for chunk in chunks:
            stream.write(chunk.decode())
        return
    stream.flush()
    for chunk in chunks:
        binary.write(chunk)
    binary.flush()


def write_whole(target: Path, chunks) -> None:
    """Write `chunks` to `target` whole or not at all: into a file beside it, moved into place
    when the last chunk is written. An export that fails part-way (the database gone, the disk
    full) leaves the file that was there, not a CSV cut short that reads as complete. The new
    file is readable by its owner only, as the private documents are: it lists every customer's
    invoices."""
    handle, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(part, target)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
