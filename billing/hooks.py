"""Extension points that let `coupons` and `startups` take part in billing without billing
importing them (DESIGN "Layout": layers point startups → coupons → billing).

All are registered from an AppConfig.ready(); until then every invoice gets no discount and
no credit, the billing clock has no extra daily steps, closing a workspace ends only its
subscription, a workspace's history shows billing's rows only and the admin index counts only
billing's rows waiting for someone.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from billing.pricing import ZERO, Discount


class DraftInvoice(NamedTuple):
    """What the adjustments need to know about an invoice about to be issued (a NamedTuple: a
    month close makes one per invoice)."""

    workspace_id: int
    kind: str  # monthly, annual, final
    interval: str  # the subscription's: monthly or annual
    issue_date: date
    period_start: date


@dataclass(frozen=True)
class Adjustment:
    """The discount for one invoice and the credit balance its workspace may draw on.

    `reference` is the implementation's own (e.g. the redemption); it comes back with the
    issued invoice in `record_applied`.
    """

    discount: Discount | None = None
    credit_available: Decimal = ZERO
    reference: object = None


class NoAdjustments:
    def adjustments_for(self, drafts: list[DraftInvoice]) -> list[Adjustment | None]:
        """One entry per draft, in order: a month close asks once per chunk.

        Drafts of one workspace in a batch share its credit balance: billing lets the later
        ones draw only what the earlier ones left.
        """
        return [None] * len(drafts)

    def record_applied(self, applied: list[tuple[object, Adjustment]]) -> None:
        """Called in the issuing transaction with each saved invoice that was offered a
        discount or credit, and that adjustment (the invoice's `discount` and `credits` say what
        was used: write the ledger here)."""

    def void_effects(self, invoice, as_of: date) -> list[str]:
        """I3: what voiding `invoice` on `as_of` would give back, read-only, one sentence each
        (the void page says it before finance confirms)."""
        return []

    def record_void(self, invoice, as_of: date) -> None:
        """Called in the voiding transaction: give back what the invoice drew (CR2: its credit,
        to the grants still valid), as `void_effects` said."""

    def credit_balance(self, workspace_id: int, as_of: date) -> Decimal:
        return ZERO

    def program_member(self, workspace_id: int, as_of: date) -> bool:
        """S4: whether the workspace is a startup-program member on `as_of`."""
        return False


@dataclass(frozen=True)
class ClosureStep:
    """What an app above billing does when a workspace is closed (W1: the coupons end the
    active discount and lapse unused credit).

    `describe(workspace, *, as_of, final_invoice)` says, read-only, what closing on `as_of`
    would do (`final_invoice`: the preview of the final invoice, or None), one sentence each;
    `apply(workspace, *, as_of, by, reason)` does it in the closure's transaction, after the
    final invoice, and returns the same sentences for the confirmation email.
    """

    describe: Callable[..., list[str]]
    apply: Callable[..., list[str]]


_adjustments = NoAdjustments()
_daily_steps: list[Callable[[date], dict]] = []
_closure_steps: list[ClosureStep] = []
_workspace_histories: list[tuple[type, str]] = []
_waiting_lists: list["WaitingList"] = []


def register_invoice_adjustments(implementation) -> None:
    global _adjustments
    _adjustments = implementation


def invoice_adjustments():
    return _adjustments


def register_daily_step(step: Callable[[date], dict]) -> None:
    """Add `step(as_of) -> counts` to the billing clock, run after the day's month closes and
    subscription events (coupon expiries, startup-program anniversaries)."""
    if step not in _daily_steps:
        _daily_steps.append(step)


def daily_steps() -> list[Callable[[date], dict]]:
    return list(_daily_steps)


def register_closure_step(step: ClosureStep) -> None:
    """Take part in closing a workspace (W1); registered from an AppConfig.ready()."""
    if step not in _closure_steps:
        _closure_steps.append(step)


def closure_steps() -> list[ClosureStep]:
    return list(_closure_steps)


def register_workspace_history(model: type, path: str) -> None:
    """Show the history of `model`'s rows on a workspace's history page (R4); `path` is the
    lookup from such a row to its workspace ("workspace", "application__workspace")."""
    if (model, path) not in _workspace_histories:
        _workspace_histories.append((model, path))


def workspace_histories() -> list[tuple[type, str]]:
    return list(_workspace_histories)


class WaitingList(NamedTuple):
    """Rows waiting for whoever has `permission` to act on them, shown on the admin index as
    "Waiting for you: N `what`", linked to `list_url_name` filtered by `only_those` to exactly
    those rows (`rows`, a queryset: counted afresh on each page)."""

    permission: str
    rows: object
    what: str
    list_url_name: str
    only_those: dict


def register_waiting_list(waiting: WaitingList) -> None:
    """Count `waiting` on the admin index; registered from an AppConfig.ready()."""
    if waiting not in _waiting_lists:
        _waiting_lists.append(waiting)


def waiting_lists() -> list[WaitingList]:
    return list(_waiting_lists)
