from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.clock import last_processed_day
from billing.formatting import month as month_name
from billing.models import SetAsideInvoice
from billing.months import check_day, parse_day
from billing.services import run_billing


class Command(BaseCommand):
    help = (
        "Run the billing clock through a day that has ended (default: yesterday, UTC): month "
        "closes, trial ends, renewals, reminders. A day already processed is a no-op."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", help="The last day to process, YYYY-MM-DD (default: yesterday, UTC)."
        )
        parser.add_argument(
            "--allow-future",
            action="store_true",
            help="Process days that have not ended yet (a demo or a copy of the data only).",
        )

    def handle(self, *args, as_of=None, allow_future=False, **options):
        today = timezone.now().date()
        try:
            day = check_day(parse_day(as_of), "--as-of") if as_of else None
        except ValueError as exc:
            if "outside" in str(exc):
                raise CommandError(str(exc)) from None
            raise CommandError(f"--as-of must be a date as YYYY-MM-DD, not “{as_of}”.") from None
        day = day or today - timedelta(days=1)
        if day >= today and not allow_future:
            raise CommandError(
                f"{day} has not ended yet (today is {today} UTC): the clock processes a day once "
                "it is over (D1). Pass --allow-future only on a demo or a copy of the data."
            )
        last = last_processed_day()
        counts = run_billing(as_of=day)
        summary = ", ".join(f"{key}: {value}" for key, value in sorted(counts.items()))
        if last is not None and day <= last:
            summary = f"nothing to do, the clock has already processed every day through {last}"
        self.stdout.write(
            self.style.SUCCESS(f"Billing run through {day}: {summary or 'nothing due'}")
        )
        # I6: a run that bills every other workspace still leaves these unbilled; say so.
        waiting = list(
            SetAsideInvoice.objects.filter(resolved_on=None)
            .order_by("workspace__slug", "close__month")
            .values_list("workspace__slug", "close__month", "error")
        )
        if waiting:
            workspaces = len({slug for slug, _, _ in waiting})
            lines = [f"  {slug}, {month_name(month)}: {error}" for slug, month, error in waiting]
            self.stdout.write(
                self.style.WARNING(
                    f"{workspaces} workspace(s) set aside, not billed yet (I6): "
                    f"{len(waiting)} invoice(s); each run tries them again once the cause is "
                    "fixed.\n" + "\n".join(lines)
                )
            )
