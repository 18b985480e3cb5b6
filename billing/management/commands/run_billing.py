from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.services import run_billing


class Command(BaseCommand):
    help = "Run the billing clock up to a day: month closes, trial ends, renewals, reminders."

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", help="The billing clock's date, YYYY-MM-DD (default: today, UTC)."
        )

    def handle(self, *args, as_of=None, **options):
        try:
            day = date.fromisoformat(as_of) if as_of else timezone.now().date()
        except ValueError:
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, not “{as_of}”.") from None
        counts = run_billing(as_of=day)
        summary = ", ".join(f"{key}: {value}" for key, value in sorted(counts.items()))
        self.stdout.write(
            self.style.SUCCESS(f"Billing run as of {day}: {summary or 'nothing due'}")
        )
