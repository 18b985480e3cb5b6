"""Money, months, days, rates, counts and periods as people read them: the one place the pages,
the admin lists, the refusals and the invoice documents format them (DESIGN: shared formatting
lives in billing). Plain Python, imported from anywhere (a model, the clock); the templates
use the same functions as filters (`billing/templatetags/money.py`):

    {% load money %}
    {{ invoice.total|money }}        $1,800,000.00
    {{ usage.month|month }}          December 2026
    {{ invoice.tax_rate|rate }}      7.25 %
    {{ invoice|period }}             1 – 31 December 2026
    {{ usage.mtus|count }}           12,500

Nothing here rounds money: amounts are stored with two places and shown as stored.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

EMPTY = "—"

# What each outbound email is, for staff (the kinds are the email templates' names).
EMAIL_KINDS = {
    "locked": "Workspace locked",
    "unlocked": "Workspace unlocked",
    "trial_reminder": "Trial ends soon (reminder)",
    "trial_converted": "Trial converted to paid Team",
    "trial_ended": "Trial ended, back on Free",
    "partner_approved": "Partner program approved",
    "partner_declined": "Partner program declined",
    "startup_application_received": "Startup application received",
    "startup_application_accepted": "Startup application accepted",
    "startup_application_rejected": "Startup application rejected",
    "workspace_closed": "Workspace closed",
    "campaign": "Campaign offer",
}


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def money(value, currency: str = "USD") -> str:
    """`Decimal("1800000.00")` → "$1,800,000.00"; a negative amount → "-$5.00"; nothing → "—".
    A currency other than USD is written after the amount ("1,000.00 EUR")."""
    amount = _decimal(value)
    if amount is None:
        return EMPTY
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    if currency and currency != "USD":
        return f"{sign}{text} {currency}"
    return f"{sign}${text}"


def month(value) -> str:
    """A month (any day of it) → "December 2026"."""
    if not isinstance(value, date):
        return EMPTY
    return f"{value:%B %Y}"


def day(value) -> str:
    """A date → "1 Dec 2026" (one form everywhere, unambiguous across locales)."""
    if not isinstance(value, date):
        return EMPTY
    return f"{value.day} {value:%b %Y}"


def moment(value) -> str:
    """A time (UTC, as stored) → "7 Dec 2026, 01:58 UTC", as the pages write it."""
    if not isinstance(value, datetime):
        return EMPTY
    return f"{day(value)}, {value:%H:%M} UTC"


def last_day(end) -> str:
    """An exclusive end (an annual term's `term_end`, the first day after it) as the last day
    it covers: 5 Dec 2027 → "4 Dec 2027", as the term's invoice names its period."""
    if not isinstance(end, date):
        return EMPTY
    return day(end - timedelta(days=1))


def unit_price(value) -> str:
    """A price per unit as stored (`Decimal("0.0100")`, an MTU's overage) → "$0.01": to the
    cent, and further where the places count ("$0.0125")."""
    amount = _decimal(value)
    if amount is None:
        return EMPTY
    places = max(2, -amount.normalize().as_tuple().exponent)
    return f"${amount:,.{places}f}"


def billed(interval: str) -> str:
    """A billing interval as a customer reads it: "billed monthly", "billed annually"."""
    return "billed annually" if interval == "annual" else f"billed {interval}"


def rate(value) -> str:
    """A percentage as stored (`Decimal("7.250")`) → "7.25 %"; trailing zeros go, and a whole
    rate reads "7 %"."""
    percent = _decimal(value)
    if percent is None:
        return EMPTY
    text = f"{percent.normalize():f}"
    return f"{text} %"


def count(value) -> str:
    """A whole number with thousands separators: 12500 → "12,500"."""
    if value is None or value == "":
        return EMPTY
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def _days(start: date, last: date, *, month: str, dash: str) -> str:
    """The days `start` to `last` (inclusive), naming each month and year once where they are
    shared: `month` is "%B" (December) or "%b" (Dec); `dash` joins two days of one month."""
    if (start.year, start.month) == (last.year, last.month):
        return f"{start.day}{dash}{last.day} {last:{month} %Y}"
    if start.year == last.year:
        return f"{start.day} {start:{month}} – {last.day} {last:{month} %Y}"
    return f"{start.day} {start:{month} %Y} – {last.day} {last:{month} %Y}"


def period_text(start: date, end: date) -> str:
    """The days from `start` up to `end` (exclusive), as a reader names them: "1 – 31 December
    2026", "24 January – 28 February 2026", "1 December 2026 – 30 November 2027"."""
    last = end - timedelta(days=1)
    if last <= start:
        return f"{start.day} {start:%B %Y}"
    return _days(start, last, month="%B", dash=" – ")


def _period_of(obj) -> tuple[date, date] | None:
    """An object's `period_start` and `period_end` (exclusive), e.g. an invoice's."""
    start, end = getattr(obj, "period_start", None), getattr(obj, "period_end", None)
    if isinstance(start, date) and isinstance(end, date):
        return start, end
    return None


def period(obj) -> str:
    """An object's period, e.g. an invoice's: "1 – 31 December 2026"."""
    dates = _period_of(obj)
    return period_text(*dates) if dates else EMPTY


def period_short(obj) -> str:
    """An object's period in a list column (`days_short`)."""
    dates = _period_of(obj)
    return days_short(*dates) if dates else EMPTY


def days_short(start: date, end: date) -> str:
    """The days from `start` up to `end` (exclusive) in a column: a whole calendar month is its
    name ("January 2026"), a whole year "Dec 2026 – Nov 2027", anything else "24–31 Jan 2026"."""
    last = end - timedelta(days=1)
    months = (end.year - start.year) * 12 + end.month - start.month
    if start.day == 1 and end.day == 1 and months == 1:
        return f"{start:%B %Y}"
    if start.day == 1 and end.day == 1:
        return f"{start:%b %Y} – {last:%b %Y}"
    return _days(start, last, month="%b", dash="–")


def email_kind(kind: str) -> str:
    """An outbound email's kind as a label: "trial_reminder" → "Trial ends soon (reminder)"."""
    if not kind:
        return EMPTY
    return EMAIL_KINDS.get(kind, kind.replace("_", " ").capitalize())


def import_outcome(created, replaced, unchanged) -> str:
    """What a usage import did, as its page, its job's page and the command say it (U1)."""
    return (
        f"{count(created)} new figure(s), {count(replaced)} replaced, {count(unchanged)} "
        "unchanged (as on file)"
    )
