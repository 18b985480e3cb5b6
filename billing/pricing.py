"""The pricing core: charges, a discount, available credit and a tax rate → invoice lines.

No database access, so every invariant (lines add up to the total, never below zero, a full
month is exactly the list price, half-up rounding) can be property-tested. SPEC M2, M3, C4, CR2,
X3, I1, I2.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_cents(amount) -> Decimal:
    """The one rounding rule of the project: to the cent, half up."""
    if not isinstance(amount, Decimal):  # a month close rounds 400,000 Decimals: no copy
        amount = Decimal(amount)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def prorated_base(price: Decimal, paid_days: int, days_in_month: int) -> Decimal:
    """M2: the full price for a full month, else price × paid days / days in month, rounded."""
    if paid_days >= days_in_month:
        return round_cents(price)
    return round_cents(Decimal(price) * paid_days / days_in_month)


def overage_amount(overage_mtus: int, rate: Decimal) -> Decimal:
    """M3: MTUs above the allowance at the per-MTU rate, rounded."""
    return round_cents(Decimal(max(overage_mtus, 0)) * rate)


# Charges and lines are NamedTuples: immutable like a frozen dataclass, and built in a third
# of the time (a month close of 100,000 workspaces builds 300,000 of them).
class Charge(NamedTuple):
    kind: str  # "base" or "overage"
    description: str
    amount: Decimal
    quantity: int | None = None


@dataclass(frozen=True)
class Discount:
    """C4: exactly one of `percent` (0 < p ≤ 100) or `amount` (> 0)."""

    description: str
    percent: Decimal | None = None
    amount: Decimal | None = None

    def value_on(self, subtotal: Decimal) -> Decimal:
        if self.percent is not None:
            return min(round_cents(subtotal * self.percent / 100), subtotal)
        return min(round_cents(self.amount), subtotal)


class Line(NamedTuple):
    kind: str  # base, overage, discount, credit, tax
    description: str
    amount: Decimal
    quantity: int | None = None


@dataclass
class PricedInvoice:
    subtotal: Decimal
    discount: Decimal
    credits: Decimal
    tax: Decimal
    total: Decimal
    lines: list[Line] = field(default_factory=list)


def price_invoice(
    charges: list[Charge],
    *,
    discount: Discount | None = None,
    credit_available: Decimal = ZERO,
    tax_rate: Decimal | None = None,
    tax_description: str = "Tax",
) -> PricedInvoice:
    """I2: total = subtotal − discount − credits + tax, never below zero.

    The discount comes off the subtotal (C4), credits off what is left (CR2: after discounts,
    before tax, never more than the balance) and tax is charged on the remainder, rounded once
    per invoice (X3). `tax_rate` is in percent.
    """
    lines = [
        Line(kind, text, round_cents(amount), quantity) for kind, text, amount, quantity in charges
    ]
    subtotal = sum([line.amount for line in lines], ZERO)

    discount_amount = discount.value_on(subtotal) if discount and subtotal > 0 else ZERO
    if discount_amount:
        lines.append(Line("discount", discount.description, -discount_amount))

    after_discount = subtotal - discount_amount
    credits = min(round_cents(max(credit_available, ZERO)), after_discount)
    if credits:
        lines.append(Line("credit", "Startup program credit", -credits))

    taxable = after_discount - credits
    tax = round_cents(taxable * tax_rate / 100) if tax_rate and taxable > 0 else ZERO
    if tax:
        lines.append(Line("tax", tax_description, tax))

    total = taxable + tax
    return PricedInvoice(subtotal, discount_amount, credits, tax, total, lines)
