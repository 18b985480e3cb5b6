"""Tax exemption certificates (SPEC X4, X5): upload, review by finance, decision.

submitted → in review → approved | rejected, and a decision may come straight from submitted.
Whether a certificate waives an invoice's tax is decided when the invoice is issued
(`billing.tax.TaxTable`), from the dates recorded here.
"""

from datetime import date

from django.db import transaction

from billing.audit import save_with_reason
from billing.clock import refuse_before_sign_up, refuse_issued_already, refuse_processed
from billing.closed_workspaces import refuse_closed
from billing.documents import document_type, stored_until_rollback
from billing.errors import BillingError, refuse_dated_before, refuse_problems
from billing.formatting import day
from billing.models import Invoice, TaxExemption, Workspace
from billing.months import day_problem
from billing.regions import US_STATES

__all__ = [
    "approve_exemption",
    "reject_exemption",
    "start_exemption_review",
    "submit_exemption",
]

Status = TaxExemption.Status


def _locked(certificate: TaxExemption) -> TaxExemption:
    return TaxExemption.objects.select_for_update().get(pk=certificate.pk)


def _check_open(certificate: TaxExemption, as_of: date):
    if certificate.status in (Status.APPROVED, Status.REJECTED):
        raise BillingError(
            f"Certificate #{certificate.pk} was already "
            f"{certificate.get_status_display().lower()} on {day(certificate.decided_on)}; a "
            "decision is final."
        )
    refuse_dated_before(
        as_of, certificate.submitted_on, "A review", f"certificate #{certificate.pk} was submitted"
    )


def _refuse_before_review(certificate: TaxExemption, as_of: date):
    """X4: a decision is dated on or after the day the review started (the history would show
    it decided before it was taken into review)."""
    if certificate.review_started_on is not None:
        refuse_dated_before(
            as_of,
            certificate.review_started_on,
            "A decision",
            f"the review of certificate #{certificate.pk} started",
        )


def _refuse_noted_already(workspace_id: int, as_of: date, what: str):
    """D4, X4: a certificate submitted or rejected changes the tax note of every taxed invoice
    of its workspace from `as_of` on (in review, rejected, or covering another state), so it
    is not dated on or before such an invoice issued already (a final, an annual one): the
    other order would have noted it."""
    refuse_issued_already(
        Invoice.objects.filter(workspace_id=workspace_id, tax_rate__gt=0), as_of, what
    )


def _refuse_one_waiting(workspace: Workspace, region: str):
    """X4: one certificate for a state waits for finance at a time (the same upload twice, or
    a second copy while one waits); a rejected one can then be replaced."""
    waiting = (
        TaxExemption.objects.filter(
            workspace=workspace,
            region=region,
            status__in=TaxExemption.OPEN_STATUSES,
        )
        .order_by("submitted_on", "pk")
        .first()
    )
    if waiting is not None:
        raise BillingError(
            f"Certificate #{waiting.pk} for {region}, submitted on {day(waiting.submitted_on)}, "
            f"is {waiting.get_status_display().lower()} already: finance decides it first (a "
            "rejected one can then be replaced)."
        )


def submit_exemption(
    workspace: Workspace,
    *,
    region: str,
    reason: str,
    document,
    valid_from: date,
    valid_to: date | None = None,
    as_of: date,
    by=None,
) -> TaxExemption:
    """X4, X5: a certificate for one US state, waiting for finance's review. The document is
    checked by content and stored under a random name in private storage (transactional: the
    file goes again if the row is not committed)."""
    region = (region or "").strip().upper()
    problems = []
    if region not in US_STATES:
        problems.append(f"“{region}” is not a US state code (e.g. NH).")
    if reason not in TaxExemption.Reason.values:
        problems.append(
            f"“{reason}” is not an exemption reason: use "
            + ", ".join(TaxExemption.Reason.values)
            + "."
        )
    if not isinstance(valid_from, date):
        problems.append("A certificate needs the first day it is valid.")
    elif valid_to is not None and valid_to < valid_from:
        problems.append(
            f"The certificate cannot end ({day(valid_to)}) before it starts ({day(valid_from)})."
        )
    for value, what, hint in (
        (valid_from, "Its first valid day", ""),
        (valid_to, "Its last valid day", ": leave it empty for a certificate without an end"),
    ):
        problem = isinstance(value, date) and day_problem(value, what)
        if problem:
            problems.append(f"{problem}{hint}.")
    refuse_problems(problems)
    refuse_before_sign_up(workspace, as_of, "A tax exemption certificate")
    # A certificate submitted after an invoice's issue date is not on its note: only a day
    # the clock has yet to process, or one after a close it has yet to run, is open.
    refuse_processed(as_of, "A tax exemption certificate", past_a_close=True)
    content_type = document_type(document, what="certificate")
    certificate = TaxExemption(
        workspace=workspace,
        region=region,
        reason=reason,
        content_type=content_type,
        valid_from=valid_from,
        valid_to=valid_to,
        submitted_on=as_of,
    )
    # Stored under a random name (never the uploader's), and removed if the row is not saved.
    with stored_until_rollback(certificate.document, document):
        # Held, so two submissions of one certificate at once take turns for the check below.
        Workspace.objects.select_for_update(no_key=True).filter(pk=workspace.pk).first()
        refuse_closed(workspace, "A tax exemption certificate")
        _refuse_noted_already(workspace.pk, as_of, "A tax exemption certificate")
        _refuse_one_waiting(workspace, region)
        save_with_reason(certificate, f"Submitted for {region} ({reason})", by=by)
    return certificate


@transaction.atomic
def start_exemption_review(certificate: TaxExemption, *, by, as_of: date) -> TaxExemption:
    """X4: finance takes a submitted certificate into review."""
    certificate = _locked(certificate)
    _check_open(certificate, as_of)
    if certificate.status == Status.IN_REVIEW:
        raise BillingError(
            f"Certificate #{certificate.pk} is already in review since "
            f"{day(certificate.review_started_on)}."
        )
    certificate.status, certificate.review_started_on = Status.IN_REVIEW, as_of
    save_with_reason(certificate, "Review started", by=by)
    return certificate


@transaction.atomic
def approve_exemption(certificate: TaxExemption, *, by, as_of: date) -> TaxExemption:
    """X4: approve, from submitted or in review. Invoices issued from `as_of` on, for the
    certificate's state and within its validity, carry no tax."""
    refuse_processed(as_of, "A certificate decision")
    certificate = _locked(certificate)
    _check_open(certificate, as_of)
    _refuse_before_review(certificate, as_of)
    # W1: no approval for a closed workspace (a rejection still closes the review).
    refuse_closed(certificate.workspace, "Approving a certificate")
    refuse_issued_already(
        Invoice.objects.filter(
            workspace_id=certificate.workspace_id, tax_country="US", tax_region=certificate.region
        ),
        as_of,
        "An approval",
    )
    certificate.status, certificate.decided_on, certificate.reviewed_by = (
        Status.APPROVED,
        as_of,
        by,
    )
    save_with_reason(certificate, "Approved", by=by)
    return certificate


@transaction.atomic
def reject_exemption(certificate: TaxExemption, *, by, reason: str, as_of: date) -> TaxExemption:
    """X4: reject, from submitted or in review, with a reason that is kept."""
    refuse_processed(as_of, "A certificate decision")
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("Say why the certificate is rejected: the reason is kept.")
    certificate = _locked(certificate)
    _check_open(certificate, as_of)
    _refuse_before_review(certificate, as_of)
    _refuse_noted_already(certificate.workspace_id, as_of, "A rejection")
    certificate.status, certificate.decided_on, certificate.reviewed_by = (
        Status.REJECTED,
        as_of,
        by,
    )
    certificate.rejection_reason = reason
    save_with_reason(certificate, f"Rejected: {reason}", by=by)
    return certificate
