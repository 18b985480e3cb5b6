"""Proofs of non-profit status (SPEC C6): a workspace uploads one, support approves it (and the
NONPROFIT discount is applied at once) or rejects it with a reason."""

from datetime import date
from pathlib import PurePath

from django.db import transaction

from billing.audit import require_reason, save_with_reason
from billing.clock import refuse_before_sign_up
from billing.closed_workspaces import refuse_closed
from billing.documents import document_type, stored_until_rollback
from billing.errors import refuse_dated_before
from billing.formatting import day
from billing.models import Workspace
from coupons.errors import CouponError, CouponRefused
from coupons.models import NonprofitProof, Redemption
from coupons.redemptions import redeem_coupon

# C8: the seeded coupon an approved proof applies.
NONPROFIT_CODE = "NONPROFIT"


def submit_nonprofit_proof(workspace: Workspace, *, document, by, as_of: date) -> NonprofitProof:
    """C6: a proof document (PDF, PNG or JPEG by its content, not empty, at most 10 MB) is
    stored privately under a random name, for support to review (transactional: the file goes
    again if the row is not committed). One proof waits for support at a time (the upload
    sent twice, at once too); a rejected one can then be replaced."""
    refuse_closed(workspace, "A non-profit proof")
    refuse_before_sign_up(workspace, as_of, "A non-profit proof")
    content_type = document_type(document, what="proof")
    proof = NonprofitProof(
        workspace=workspace,
        content_type=content_type,
        original_name=PurePath(getattr(document, "name", "") or "").name[:255],
        size=document.size,
        submitted_on=as_of,
        submitted_by=by,
    )
    with stored_until_rollback(proof.document, document):
        # Held, so two uploads at once take turns for the check below.
        workspace = Workspace.objects.for_change(workspace)
        waiting = workspace.nonprofit_proofs.filter(status=NonprofitProof.Status.SUBMITTED).first()
        if waiting is not None:
            raise CouponError(
                f"A proof of {workspace.name}'s non-profit status, submitted on "
                f"{day(waiting.submitted_on)}, waits for review already: support decides it "
                "first (a rejected one can then be replaced)."
            )
        save_with_reason(proof, "Submitted", by=by)
    return proof


def _locked_proof(proof) -> NonprofitProof:
    proof = NonprofitProof.objects.select_for_update().select_related("workspace").get(pk=proof.pk)
    if proof.status != NonprofitProof.Status.SUBMITTED:
        raise CouponError(
            f"This proof was already {proof.get_status_display().lower()} on "
            f"{day(proof.reviewed_on)}."
        )
    return proof


def _refuse_before_submitted(proof: NonprofitProof, as_of: date):
    """C6: a review dated before the proof was submitted would apply NONPROFIT from a day
    support had no proof."""
    refuse_dated_before(
        as_of, proof.submitted_on, "A review", "the proof was submitted", error=CouponError
    )


@transaction.atomic
def approve_nonprofit_proof(
    proof: NonprofitProof, *, by, as_of: date, apply_discount: bool = True
) -> Redemption | None:
    """C6: support approves the proof and, by default, the system applies the NONPROFIT
    discount at once, in the same transaction: if C2 refuses it, nothing is approved and the
    refusal says why (approve without the discount to apply it later)."""
    proof = _locked_proof(proof)
    _refuse_before_submitted(proof, as_of)
    refuse_closed(proof.workspace, "Approving a non-profit proof")
    proof.status, proof.reviewed_by, proof.reviewed_on = NonprofitProof.Status.APPROVED, by, as_of
    save_with_reason(proof, "Approved", by=by)
    if not apply_discount:
        return None
    try:
        return redeem_coupon(
            proof.workspace,
            NONPROFIT_CODE,
            by=by,
            as_of=as_of,
            reason=f"Non-profit proof {proof.pk} approved",
        )
    except CouponRefused as exc:
        raise CouponRefused(
            exc.reason,
            f"The proof was not approved: {exc} Approve it without the discount to apply the "
            "discount later.",
        ) from None


@transaction.atomic
def reject_nonprofit_proof(proof: NonprofitProof, *, by, reason: str, as_of: date):
    """C6: support rejects a proof, with a reason that is kept."""
    reason = require_reason(
        reason, "Say why the proof is rejected: the reason is kept.", error=CouponError
    )
    proof = _locked_proof(proof)
    _refuse_before_submitted(proof, as_of)
    proof.status, proof.reviewed_by, proof.reviewed_on = NonprofitProof.Status.REJECTED, by, as_of
    proof.reason = reason
    save_with_reason(proof, f"Rejected: {reason}", by=by)
    return proof
