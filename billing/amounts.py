"""Dollar amounts as people type them into services (a coupon's value, a credit grant, a
partner's credit amount, a credit note, a startup's funding): one check, one set of messages."""

from decimal import Decimal, InvalidOperation

from billing.pricing import CENT


def parse_dollars(value, label: str, problems: list[str], *, positive=False) -> Decimal | None:
    """`value` in dollars and cents, or None when it is empty or is not such an amount (then
    `problems` says why, naming it by `label`). With `positive`, 0 or less is refused too."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"The {label} “{value}” is not an amount.")
        return None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        problems.append(f"The {label} must be in dollars and cents, not “{value}”.")
        return None
    if positive and amount <= 0:
        problems.append(f"The {label} must be more than 0, not {amount}.")
    return amount
