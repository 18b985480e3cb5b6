"""How an invoice asks for discounts and credits without billing importing `coupons`.

`coupons` registers an implementation in its AppConfig.ready(); until then (or in a project
without it) every invoice gets no discount and no credit. The calls are batched so a month
close asks once per chunk, not once per workspace.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing.pricing import ZERO, Discount


@dataclass(frozen=True)
class DraftInvoice:
    """What the adjustments need to know about an invoice about to be issued."""

    workspace_id: int
    kind: str
    interval: str
    issue_date: date
    period_start: date


@dataclass(frozen=True)
class Adjustment:
    discount: Discount | None = None
    credit_available: Decimal = ZERO


class NoAdjustments:
    def adjustments_for(self, drafts: list[DraftInvoice]) -> dict[int, Adjustment]:
        return {}

    def record_applied(self, invoices) -> None:
        """Called in the issuing transaction with the saved invoices (ledger draws etc.)."""

    def credit_balance(self, workspace_id: int, as_of: date) -> Decimal:
        return ZERO


_registered = NoAdjustments()


def register_invoice_adjustments(implementation) -> None:
    global _registered
    _registered = implementation


def invoice_adjustments():
    return _registered
