"""Non-profit proofs (C6): support reviews each proof on its page, the document beside the
decision buttons, or in bulk from the list."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import (
    DecisionPages,
    ServiceAdmin,
    badge_column,
    decision_action,
    waiting_first,
)
from billing.formatting import day
from coupons import services
from coupons.forms import NonprofitProofForm
from coupons.models import NonprofitProof

PROOF_TONES = {"submitted": "waiting", "approved": "good", "rejected": "bad"}


@admin.register(NonprofitProof)
class NonprofitProofAdmin(DecisionPages, ServiceAdmin):
    """C6: support reviews each proof on its page, with the document shown beside the decision
    buttons (or in bulk from the list)."""

    workspace_of_row = "workspace"
    change_form_template = "admin/toolkit/decision_change_form.html"
    decisions = {
        "approve-and-apply": "Approve and apply NONPROFIT",
        "approve": "Approve only",
        "reject": "Reject",
    }
    review_permission = "coupons.review_nonprofitproof"
    decide_url_name = "coupons_proof_decide"
    decide_template = "admin/coupons/nonprofitproof/decide.html"
    row_name = "proof"
    document_label = "Proof of non-profit status"
    decision_related = ("workspace",)
    list_display = [
        "workspace",
        "submitted_on",
        "status_display",
        "original_name",
        "size",
        "reviewed_by",
        "reviewed_on",
    ]
    list_filter = ["status", "submitted_on"]
    ordering = waiting_first(
        [NonprofitProof.Status.SUBMITTED], since="submitted_on", decided="reviewed_on"
    )
    list_select_related = ["workspace", "reviewed_by"]
    search_fields = ["workspace__slug", "workspace__name"]
    autocomplete_fields = ["workspace"]
    actions = ["approve_and_apply", "approve_only", "reject"]
    change_readonly = [
        "workspace",
        "download",
        "content_type",
        "original_name",
        "size",
        "submitted_on",
        "submitted_by",
        "status",
        "reviewed_by",
        "reviewed_on",
        "reason",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NonprofitProofForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["workspace", "document"] if obj is None else self.change_readonly

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.change_readonly

    def create(self, request, data):
        return services.submit_nonprofit_proof(
            data["workspace"], document=data["document"], by=request.user, as_of=toolkit.today()
        )

    @admin.display(description="Document")
    def download(self, obj):
        url = reverse("coupons:proof-document", args=[obj.pk])
        return format_html(
            '<a href="{}">Download ({}, {} bytes)</a>', url, obj.content_type, f"{obj.size:,}"
        )

    status_display = badge_column("status", PROOF_TONES)

    # --- the review page: the document and the decision buttons (toolkit.DecisionPages) ---

    def open_decisions(self, proof):
        return list(self.decisions) if proof.status == NonprofitProof.Status.SUBMITTED else []

    def document_url(self, proof):
        return reverse("coupons:proof-document", args=[proof.pk])

    def decided(self, proof, decision):
        if proof.status == NonprofitProof.Status.SUBMITTED:
            return ""
        return (
            f"This proof was already {proof.get_status_display().lower()} on "
            f"{day(proof.reviewed_on)}: a decision is final."
        )

    def decision_subject(self, proof):
        return proof.workspace.name

    def decision_intros(self, proof):
        return {
            "approve-and-apply": f"NONPROFIT takes $120.00 off each monthly Team bill of "
            f"{proof.workspace.name}, forever, from this month's bill.",
            "approve": "The proof is approved; no discount is applied now.",
            "reject": "The reason is kept with the proof.",
        }

    def decide(self, request, proof, decision, data):
        """C6: approve (and apply the $120.00 a month discount, which moves money: a
        confirmation), approve only, or reject with a reason."""
        workspace, today, by = proof.workspace, toolkit.today(), request.user
        if decision == "reject":
            services.reject_nonprofit_proof(proof, by=by, reason=data["reason"], as_of=today)
            return f"The proof of {workspace.name} is rejected: {data['reason']}"
        apply_discount = decision == "approve-and-apply"
        services.approve_nonprofit_proof(proof, by=by, as_of=today, apply_discount=apply_discount)
        if apply_discount:
            return f"The proof of {workspace.name} is approved and NONPROFIT applied."
        return f"The proof of {workspace.name} is approved; apply NONPROFIT when it is due."

    def describe_row(self, proof):
        return f"{proof.workspace.name}: {proof.original_name}"

    approve_and_apply = decision_action(
        "approve-and-apply",
        "Approve and apply the non-profit discount…",
        title="Approve and apply NONPROFIT",
        done="proof(s) approved; NONPROFIT applied",
        intro="NONPROFIT takes $120.00 off each monthly Team bill, forever.",
    )
    approve_only = decision_action(
        "approve",
        "Approve only (apply the discount later)…",
        title="Approve proofs",
        done="proof(s) approved",
    )
    reject = decision_action(
        "reject", "Reject selected proofs…", title="Reject proofs", done="proof(s) rejected"
    )
