"""Credit notes (K3): support requests them from an invoice; finance approves or rejects each on
its page (the invoice's figures beside the buttons) or in bulk from the list."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.text import Truncator

from billing import admin_toolkit as toolkit
from billing import selectors, services
from billing.admin_toolkit import (
    OptionalReasonForm,
    ReasonForm,
    ServiceAdmin,
    badge_column,
    bulk_action,
    money_column,
    service_form_page,
    waiting_first,
    with_note,
)
from billing.formatting import day, money
from billing.models import CreditNote

CREDIT_NOTE_TONES = {"requested": "waiting", "approved": "good", "rejected": "bad"}


def _bulk_decision(*, approve):
    """K3 in bulk: one decision for each selected credit note, behind one confirmation page;
    rejecting asks why."""
    verb = "approve" if approve else "reject"
    return bulk_action(
        f"{verb.capitalize()} selected credit notes…",
        lambda model_admin, request, note, data: model_admin._decide_one(
            request, note, approve, data
        ),
        permission="approve",
        title=f"{verb.capitalize()} credit notes",
        done=f"credit note(s) {verb}d",
        form_class=OptionalReasonForm if approve else ReasonForm,
        describe=lambda note: f"{note.invoice.number}: {money(note.amount)} — {note.reason}",
        related=("invoice",),
    )


@admin.register(CreditNote)
class CreditNoteAdmin(ServiceAdmin):
    """K3: finance approves or rejects what support requested, from the credit note's page
    (the invoice's figures beside the buttons) or in bulk from the list."""

    workspace_of_row = "invoice__workspace"
    list_display = [
        "invoice",
        "workspace_name",
        "amount_display",
        "status_display",
        "reason_in_list",
        "requested",
        "decided",
    ]
    list_select_related = ["invoice__workspace", "requested_by", "decided_by"]
    list_filter = ["status", "requested_on"]
    ordering = waiting_first(
        [CreditNote.Status.REQUESTED], since="requested_on", decided="decided_on"
    )
    search_fields = ["invoice__number", "reason"]
    actions = ["approve", "reject"]
    change_form_template = "admin/billing/creditnote/change_form.html"
    fields = [
        "invoice",
        "amount_display",
        "tax_display",
        "status_display",
        "reason",
        "requested_by",
        "requested_on",
        "decided_by",
        "decided_on",
        "decision_note",
    ]
    readonly_fields = ["amount_display", "tax_display", "status_display"]
    pages = (("<int:pk>/decide/<str:decision>/", "decide_view", "billing_creditnote_decide"),)

    def has_approve_permission(self, request):
        return request.user.has_perm("billing.approve_creditnote")

    @admin.display(description="Workspace", ordering="invoice__workspace__name")
    def workspace_name(self, note):
        return note.invoice.workspace.name

    amount_display = money_column("amount", description="Amount")
    # K3: set when approved (`tax_given_back`); 0.00 while the note waits.
    tax_display = money_column("tax", description="Of which tax given back")
    status_display = badge_column("status", CREDIT_NOTE_TONES)

    # The list fits 1366 px beside the filters: who and when share a column, the reason is cut
    # (the note's page has it whole).
    @admin.display(description="Reason")
    def reason_in_list(self, note):
        return Truncator(note.reason).chars(70)

    @admin.display(description="Requested", ordering="requested_on")
    def requested(self, note):
        return with_note(day(note.requested_on), note.requested_by)

    @admin.display(description="Decided", ordering="decided_on")
    def decided(self, note):
        if note.decided_on is None:
            return "—"
        return with_note(day(note.decided_on), note.decided_by)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        note = self.get_object(request, object_id)
        if note is not None:
            extra_context = {
                **(extra_context or {}),
                "invoice": note.invoice,
                "refunds": selectors.refund_summary(note.invoice),
                "can_decide": self.has_approve_permission(request),
                "document_number": note.number,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, pk, decision):
        """K3: one credit note, decided on a page that shows the invoice's refunded, pending
        and left amounts; approving moves money, so the page is a confirmation."""
        if not self.has_approve_permission(request):
            raise PermissionDenied
        if decision not in ("approve", "reject"):
            raise Http404(f"No decision “{decision}” for a credit note.")
        note = get_object_or_404(
            CreditNote.objects.select_related("invoice__workspace", "decided_by"), pk=pk
        )
        approve = decision == "approve"
        invoice = note.invoice

        def perform(data):
            self._decide_one(request, note, approve, data)
            done = "approved" if approve else "rejected"
            return f"Credit note of {money(note.amount)} on {invoice.number} {done}."

        closed = ""
        if note.status != CreditNote.Status.REQUESTED:
            closed = (
                f"This credit note was already {note.get_status_display().lower()} on "
                f"{day(note.decided_on)}"
                + (f" by {note.decided_by}" if note.decided_by else "")
                + ": a decision is final."
            )
        form_class = OptionalReasonForm if approve else ReasonForm
        verb = "Approve" if approve else "Reject"
        refunds = selectors.refund_summary(invoice)
        # K3: what approving gives back of the invoice's tax, said before, not after.
        tax_back = services.tax_given_back(invoice, note.amount) if approve else None
        return service_form_page(
            self,
            request,
            note,
            form=form_class(request.POST or None),
            perform=perform,
            template="admin/billing/creditnote/decide.html",
            title=f"{verb} the credit note of {money(note.amount)} on {invoice.number}",
            submit_label=f"Yes, {verb.lower()} {money(note.amount)}",
            closed=closed,
            # Another note decided since the page was read changes what is left and the tax
            # this one gives back (its share is rounded against what was given back before):
            # the page is shown again with the new figures, not confirmed.
            shown=(
                f"{note.status} {invoice.status} refunded {refunds.refunded} pending "
                f"{refunds.pending} tax back {tax_back}"
            ),
            note=note,
            invoice=invoice,
            refunds=refunds,
            tax_back=tax_back,
        )

    def _decide_one(self, request, note, approve, data):
        services.decide_credit_note(
            note,
            by=request.user,
            approve=approve,
            as_of=toolkit.today(),
            note_text=data["reason"],
        )

    approve = _bulk_decision(approve=True)
    reject = _bulk_decision(approve=False)
