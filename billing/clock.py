"""The billing clock's own record (SPEC D1, D2): the last day it processed.

`run_billing` processes whole days, each once that day has ended, and records each day as it
finishes it; a dated change on or before that day is refused, so nothing can be slipped into a
day whose invoices, strikes and locks are already made (D4: daily runs and a catch-up agree).
"""

from datetime import date, timedelta

from billing.errors import DayAlreadyProcessed
from billing.models import BillingClock


def last_processed_day() -> date | None:
    return BillingClock.objects.filter(pk=1).values_list("last_processed_day", flat=True).first()


def refuse_processed(day: date, what: str) -> None:
    """D2: refuse `what`, dated `day`, when the clock has already processed that day."""
    last = last_processed_day()
    if last is not None and day <= last:
        raise DayAlreadyProcessed(
            f"{what} dated {day} is refused: the billing clock has already processed every day "
            f"through {last}. Date it {last + timedelta(days=1)} or later."
        )


def mark_processed(day: date) -> None:
    if not BillingClock.objects.filter(pk=1).update(last_processed_day=day):
        BillingClock.objects.create(pk=1, last_processed_day=day)
