"""Calendar arithmetic for billing months and annual terms (all dates are UTC calendar dates)."""

import re
from calendar import monthrange
from datetime import date, timedelta

from billing.errors import typed


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    """The 1st of the month after `day`'s month."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def add_months(day: date, months: int) -> date:
    """The 1st of the month `months` after `day`'s month (negative goes back)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def days_in_month(month: date) -> int:
    return monthrange(month.year, month.month)[1]


def add_year(day: date) -> date:
    """The same date a year later; 29 February runs to 1 March so a term is never short."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def years_before(day: date, years: int) -> date:
    """The same date `years` earlier; 29 February, missing that year, falls back to 28 February
    (the last day whose `add_year` anniversaries reach `day`)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return date(day.year - years, 2, 28)


def overlap_days(start: date, end: date | None, window_start: date, window_end: date) -> int:
    """Days of [start, end) inside [window_start, window_end); `end=None` is open-ended."""
    lo = max(start, window_start)
    hi = window_end if end is None else min(end, window_end)
    return max((hi - lo).days, 0)


# I6: the months and days a person or a file may name; anything outside is a typo.
EARLIEST_MONTH = date(2000, 1, 1)
LATEST_MONTH = date(2099, 12, 1)
LAST_DAY = date(LATEST_MONTH.year, 12, 31)


def parse_month(text: str) -> date:
    """`YYYY-MM` → the 1st of that month; ValueError with a readable message otherwise,
    including a month outside 2000-01 … 2099-12 (I6)."""
    try:
        year, month = text.strip().split("-")
        # ASCII digits only (int() would also take " 1", "+1" or "0_1"): the usage import's
        # SQL reads a month the same way.
        digits = year + month
        if len(year) != 4 or len(month) != 2 or not (digits.isascii() and digits.isdigit()):
            raise ValueError
        if not 1 <= int(month) <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"{typed(text)} is not a month in the form YYYY-MM") from None
    # Year 0000 is no date at all: compared as numbers, it is outside as 1999 is.
    if not EARLIEST_MONTH.year <= int(year) <= LATEST_MONTH.year:
        raise ValueError(
            f"{typed(text)} is outside the months this system bills (2000-01 to 2099-12)"
        )
    return date(int(year), int(month), 1)


def parse_day(text: str) -> date:
    """`YYYY-MM-DD` → that day; ValueError otherwise (`date.fromisoformat` alone also reads
    20260101, and 2026-W01-1 as 2025-12-29)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text or ""):
        raise ValueError(f"{typed(text)} is not a date in the form YYYY-MM-DD")
    return date.fromisoformat(text)


def day_problem(day: date, what: str = "The date") -> str | None:
    """I6: a day a person or a file sent must fall in 2000 … 2099; what is wrong, or None."""
    if not EARLIEST_MONTH <= day <= LAST_DAY:
        return f"{what} {day} is outside the years this system bills (2000 to 2099)"
    return None


def check_day(day: date, what: str = "The date") -> date:
    """`day`, or ValueError when it is outside the years billed (`day_problem`)."""
    problem = day_problem(day, what)
    if problem:
        raise ValueError(problem)
    return day
