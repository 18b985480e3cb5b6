"""Invoices after issue (I3, K3): voiding, and credit notes that support requests and finance
decides, never refunding more than is left.
"""

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Sum

from billing.amounts import parse_dollars
from billing.audit import keep_first_version, require_reason, save_with_reason, with_reason
from billing.clock import refuse_processed
from billing.errors import BillingError, refuse_dated_before, refuse_problems
from billing.formatting import day, money
from billing.hooks import invoice_adjustments
from billing.models import CreditNote, Invoice
from billing.pricing import round_cents

ZERO = Decimal("0.00")


def _locked_invoice(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


def _refuse_before_issued(invoice: Invoice, as_of: date, what: str):
    """K3, I3: nothing is refunded or voided before its invoice was issued (a credit note's tax
    would be reported in a month before the invoice's; a void would give credit back to grants
    as they were before the invoice drew any)."""
    refuse_dated_before(as_of, invoice.issue_date, what, f"{invoice.number} was issued")


def void_refusal(invoice: Invoice) -> str:
    """Why the invoice's credit notes rule out voiding it, or "" (the void page says so before
    finance types a reason). K3: voided after a refund, the customer would owe nothing and keep
    the refund."""
    notes = invoice.credit_notes.exclude(status=CreditNote.Status.REJECTED)
    if refunded := notes.filter(status=CreditNote.Status.APPROVED).aggregate(s=Sum("amount"))["s"]:
        left = refundable_amount(invoice)
        then = (
            f"Request a credit note for what is left ({money(left)}) instead."
            if left
            else "Nothing is left to refund."
        )
        return (
            f"{invoice.number} cannot be voided: {money(round_cents(refunded))} of it was "
            f"refunded already (approved credit notes). {then}"
        )
    if notes.exists():
        return (
            f"{invoice.number} cannot be voided while a credit note on it waits for a "
            "decision: decide it first."
        )
    return ""


@transaction.atomic
def void_invoice(invoice: Invoice, *, by, reason: str, as_of: date) -> Invoice:
    """I3: an issued invoice is never edited or deleted; finance may void it, with a reason.
    D2, D4: dated as a credit grant is, since the credit it gives back (CR2) is read by the
    invoices after it: not on a day the clock has processed, nor past a month close it has not
    run (that close would draw credit given back after its day)."""
    require_reason(reason, "Say why the invoice is voided: the reason is kept.")
    refuse_processed(as_of, "A void")
    _refuse_before_issued(invoice, as_of, "A void")
    invoice = _locked_invoice(invoice)
    if invoice.status == Invoice.Status.VOID:
        raise BillingError(f"{invoice.number} is already void.")
    if refusal := void_refusal(invoice):
        raise BillingError(refusal)
    keep_first_version(
        invoice, reason=f"Issued on {day(invoice.issue_date)}", when=invoice.created_at
    )
    invoice.status, invoice.voided_on, invoice.void_reason = (
        Invoice.Status.VOID,
        as_of,
        reason.strip(),
    )
    save_with_reason(invoice, f"Voided: {reason.strip()}", by=by)
    invoice_adjustments().record_void(invoice, as_of)
    return invoice


def void_effects(invoice: Invoice, as_of: date) -> list[str]:
    """I3: what voiding the invoice on `as_of` does, one sentence each, for the page that asks
    finance to confirm it."""
    return [
        f"{invoice.number} stays, marked void, under its number; nothing is due on it.",
        f"Its period is not billed again, and {invoice.workspace.name} is not emailed.",
        *invoice_adjustments().void_effects(invoice, as_of),
    ]


def refundable_amount(invoice: Invoice) -> Decimal:
    """K3: what is left unrefunded on the invoice (approved credit notes taken off)."""
    approved = invoice.credit_notes.filter(status=CreditNote.Status.APPROVED).aggregate(
        total=Sum("amount")
    )["total"]
    # To the cent: SQLite sums decimals as floats ("100.0000000000000").
    return (invoice.total - (approved or ZERO)).quantize(Decimal("0.01"))


def tax_given_back(invoice: Invoice, amount: Decimal) -> Decimal:
    """The part of a credit of `amount` that gives back tax: the invoice's tax in proportion
    to all it has credited with this one, less what earlier credit notes gave back, so credit
    notes refunding the whole invoice give back exactly its tax, however it was split."""
    if not invoice.tax:
        return ZERO
    before = invoice.credit_notes.filter(status=CreditNote.Status.APPROVED).aggregate(
        amount=Sum("amount"), tax=Sum("tax")
    )
    # SQLite sums decimals as floats: each sum is taken back to the cent.
    credited = round_cents(before["amount"] or ZERO) + amount
    return round_cents(credited * invoice.tax / invoice.total) - round_cents(before["tax"] or ZERO)


def _check_refund(invoice: Invoice, amount: Decimal):
    if invoice.status == Invoice.Status.VOID:
        raise BillingError(f"{invoice.number} is void: there is nothing to refund.")
    left = refundable_amount(invoice)
    if amount > left:
        raise BillingError(
            f"A credit note on {invoice.number} can be at most {money(left)} (what is left "
            f"unrefunded), not {money(amount)}."
        )


def _check_with_waiting(invoice: Invoice, amount: Decimal):
    """K3 for a request: with the requests still waiting, no more than what is left, so finance
    is never handed asks that cannot all be approved (a waiting one is rejected first)."""
    waiting = invoice.credit_notes.filter(status=CreditNote.Status.REQUESTED).aggregate(
        total=Sum("amount")
    )["total"]
    if not waiting:
        return
    waiting = round_cents(waiting)  # SQLite sums decimals as floats
    room = refundable_amount(invoice) - waiting
    if amount > room:
        raise BillingError(
            f"A credit note on {invoice.number} can be at most {money(max(room, ZERO))} now: "
            f"{money(waiting)} of what is left unrefunded is requested already and waiting for "
            f"finance. Not {money(amount)}."
        )


@transaction.atomic
def request_credit_note(invoice: Invoice, *, by, amount, reason: str, as_of: date) -> CreditNote:
    """K3: support asks for a refund with a reason; finance decides. The same request again
    while the first waits (a form posted twice, a browser resubmitting it) is refused: finance
    would see two asks for one refund, and both may fit what is left."""
    problems = []
    amount = parse_dollars(amount, "credit note's amount", problems, positive=True)
    if amount is None and not problems:
        problems.append("A credit note needs an amount.")
    refuse_problems(problems)
    require_reason(reason, "Say why the refund is requested: finance sees the reason.")
    _refuse_before_issued(invoice, as_of, "A credit note")
    invoice = _locked_invoice(invoice)
    # The invoice's row is held: a second post waits for the first and sees it.
    same = invoice.credit_notes.filter(
        status=CreditNote.Status.REQUESTED, amount=amount, reason=reason.strip()
    ).first()
    if same is not None:
        raise BillingError(
            f"This credit note ({money(amount)} on {invoice.number}, for the same reason) was "
            f"requested on {day(same.requested_on)} already and is waiting for finance."
        )
    # The waiting requests first: over what is left and with a request waiting, the figure to
    # ask for is what is left after it, not what is left.
    _check_with_waiting(invoice, amount)
    _check_refund(invoice, amount)
    note = CreditNote(
        invoice=invoice, amount=amount, reason=reason.strip(), requested_by=by, requested_on=as_of
    )
    save_with_reason(note, with_reason("Requested", reason), by=by)
    return note


@transaction.atomic
def decide_credit_note(note: CreditNote, *, by, approve: bool, as_of: date, note_text: str = ""):
    """K3: finance approves (never above what is left unrefunded) or rejects a request. An
    approved credit note gives back its share of the invoice's tax (`tax_given_back`)."""
    invoice = _locked_invoice(note.invoice)  # serialises approvals on one invoice
    note = CreditNote.objects.select_for_update().get(pk=note.pk)
    if note.status != CreditNote.Status.REQUESTED:
        raise BillingError(f"This credit note was already {note.status}.")
    # The tax report counts what a credit note gives back in the month it was approved.
    refuse_dated_before(as_of, note.requested_on, "A decision", "the credit note was requested")
    if approve:
        _check_refund(invoice, note.amount)
        note.tax = tax_given_back(invoice, note.amount)
        # I5: the next number on this invoice; the invoice's row is held, so one at a time.
        numbered = invoice.credit_notes.aggregate(last=Max("sequence"))["last"]
        note.sequence = (numbered or 0) + 1
    note.status = CreditNote.Status.APPROVED if approve else CreditNote.Status.REJECTED
    note.decided_by, note.decided_on, note.decision_note = by, as_of, note_text
    save_with_reason(note, with_reason(note.status.capitalize(), note_text), by=by)
    return note
