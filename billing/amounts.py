"""Dollar amounts as people type them into services (a coupon's value, a credit grant, a
partner's credit amount, a credit note, a startup's funding): one check, one set of messages."""

from decimal import Decimal, InvalidOperation

from billing.pricing import CENT

# The money columns' size: 12 digits, 2 of them cents (a coupon's amount off has 10).
MONEY_DIGITS = 12


def parse_dollars(
    value, label: str, problems: list[str], *, positive=False, max_digits=MONEY_DIGITS
) -> Decimal | None:
    """`value` in dollars and cents, or None when it is empty or is not such an amount (then
    `problems` says why, naming it by `label`). With `positive`, 0 or less is refused too; an
    amount too large for its column (`max_digits` digits, 2 of them cents) is refused."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"The {label} “{value}” is not an amount.")
        return None
    limit = Decimal(10) ** (max_digits - 2)
    if amount.is_finite() and abs(amount) >= limit:
        problems.append(f"The {label} must be less than {limit:,}, not “{value}”.")
        return None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        problems.append(f"The {label} must be in dollars and cents, not “{value}”.")
        return None
    if positive and amount <= 0:
        problems.append(f"The {label} must be more than 0, not {amount}.")
    return amount
