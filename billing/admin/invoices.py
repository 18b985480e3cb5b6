"""Invoices (I3, I5, K3): read-only for everyone; finance voids with a reason, support asks for a
refund from the invoice's page."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing import admin_toolkit as toolkit
from billing import search, selectors, services
from billing.admin_toolkit import (
    ReadOnlyInline,
    ServiceAdmin,
    badge_column,
    money_column,
    service_form_page,
    shown_column,
)
from billing.formatting import billed, count, day, money, period, period_short
from billing.forms import CreditNoteRequestForm, VoidInvoiceForm
from billing.invoice_documents import line_quantity
from billing.models import CreditNote, Invoice, InvoiceLine, number_order
from billing.tax import rate_as_invoiced

INVOICE_TONES = {"issued": "waiting", "paid": "good", "void": "quiet"}


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["position", "kind", "description", "quantity_display", "amount_display"]

    @admin.display(description="Quantity")
    def quantity_display(self, line):
        return line_quantity(line, line.invoice.kind)

    amount_display = money_column("amount", description="Amount", sortable=False)


class InvoiceChangeList(toolkit.CheckedChangeList):
    """I1: sorted by its Number column, the list is in number order (`number_order`), where
    the numbers' text put INV-2026-1000000 before INV-2026-999999; read through the list's
    index either way. Sorted by Issued, its ties come in number order already (the default
    order's, turned the column's way: the toolkit's ties), so the same index is read."""

    def get_ordering(self, request, queryset):
        ordering = []
        for part in super().get_ordering(request, queryset):
            # Sorted by Issued, the ties bring the number after its length: in order already.
            by_length = {"number__length", "-number__length"} & set(map(str, ordering))
            if part in ("number", "-number") and not by_length:
                ordering += number_order(descending=part == "-number")
            else:
                ordering.append(part)
        return ordering


@admin.register(Invoice)
class InvoiceAdmin(ServiceAdmin):
    """I3: read-only for everyone; finance voids with a reason, support asks for a refund. The
    page shows what is refunded, pending and left (K3) and links the documents (I5)."""

    workspace_of_row = "workspace"
    # Fits 1366 px beside the filters, Status and Total included.
    list_display = [
        "number",
        "workspace_name",
        "kind_display",
        "period_in_list",
        "issued",
        "status_display",
        "total_display",
    ]
    list_select_related = ["workspace"]
    list_filter = ["status", "kind", "issue_date"]
    search_fields = ["number", "workspace__slug", "workspace__name"]
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline]
    change_form_template = "admin/billing/invoice/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "workspace",
                    "kind",
                    "status_display",
                    "issue_date",
                    "period_display",
                ]
            },
        ),
        (
            "Amounts",
            {
                "fields": [
                    "subtotal_display",
                    "discount_display",
                    "credits_display",
                    "tax_display",
                    "total_display",
                ]
            },
        ),
        ("Tax", {"fields": ["jurisdiction", "rate_display", "tax_note"]}),
        ("As issued", {"fields": ["plan_display", "overage_display"]}),
    ]
    void_fieldset = ("Void", {"fields": ["voided_on", "void_reason"]})
    readonly_fields = [
        name for _, options in fieldsets for name in options["fields"] if name.endswith("display")
    ] + ["jurisdiction"]
    pages = (
        ("<int:pk>/void/", "void_view", "billing_invoice_void"),
        ("<int:pk>/credit-note/", "credit_note_view", "billing_invoice_credit_note"),
    )

    def get_changelist(self, request, **kwargs):
        return InvoiceChangeList

    def get_search_results(self, request, queryset, search_term):
        """R3: searched for a whole invoice number, the list shows the numbers that begin with
        it (that invoice, and past a million a year the longer numbers it begins), found in the
        number's btree (`search.whole_invoice_number`); other words are searched as on every
        list."""
        if number := search.whole_invoice_number(search_term):
            return queryset.filter(number__startswith=number), False
        return super().get_search_results(request, queryset, search_term)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.status == Invoice.Status.VOID:
            return [*self.fieldsets, self.void_fieldset]
        return self.fieldsets

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_name(self, obj):
        return obj.workspace.name

    @admin.display(description="Period", ordering="period_start")
    def period_display(self, obj):
        return period(obj)

    # Not sortable, Kind, Period, Status and Total: sorted by one, the list sorted every
    # invoice for one page (600,000: 0.45–0.73 s; bench_sorts), and an index for each would
    # slow every month close. Kind, Status and the issue date are the list's filters (a period
    # is a month before its issue date); finance finds the largest invoices through the finance
    # invoice list's filters and its export.
    @admin.display(description="Period")
    def period_in_list(self, obj):
        return period_short(obj)

    kind_display = toolkit.unsorted_column("kind", description="Kind")
    issued = shown_column("issue_date", day, description="Issued")
    status_display = badge_column("status", INVOICE_TONES, sortable=False)
    total_display = money_column("total", description="Total", sortable=False)
    subtotal_display = money_column("subtotal", description="Subtotal", sortable=False)
    discount_display = money_column("discount", description="Discount", sortable=False)
    credits_display = money_column("credits", description="Startup credit", sortable=False)
    tax_display = money_column("tax", description="Tax", sortable=False)
    overage_display = shown_column(
        "overage_mtus", count, description="MTUs billed as overage", sortable=False
    )

    @admin.display(description="Jurisdiction")
    def jurisdiction(self, obj):
        if not obj.tax_country:
            return "—"
        return f"{obj.tax_country}-{obj.tax_region}" if obj.tax_region else obj.tax_country

    @admin.display(description="Tax rate")
    def rate_display(self, obj):
        return rate_as_invoiced(obj)

    @admin.display(description="Plan")
    def plan_display(self, obj):
        return f"{obj.plan_code.capitalize()}, {billed(obj.interval)}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        if invoice is not None:
            extra_context = {
                **(extra_context or {}),
                "refunds": selectors.refund_summary(invoice),
                "can_decide": request.user.has_perm("billing.approve_creditnote"),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _form_page(self, request, invoice, form, title, permission, perform, **context):
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return service_form_page(
            self,
            request,
            invoice,
            form=form,
            perform=perform,
            template="admin/billing/invoice/action.html",
            title=f"{title}: {invoice.number}",
            invoice=invoice,
            **context,
        )

    def void_view(self, request, pk):
        invoice = get_object_or_404(Invoice.objects.select_related("workspace"), pk=pk)

        def perform(data):
            toolkit.call_service(services.void_invoice, invoice, request, data, "reason")
            return f"{invoice.number} ({money(invoice.total)}) voided: {data['reason']}"

        effects, way_on = [], {}
        if invoice.status == Invoice.Status.VOID:
            closed = f"{invoice.number} is already void (since {day(invoice.voided_on)}): "
            closed += invoice.void_reason or "no reason recorded."
        else:
            closed = services.void_refusal(invoice)  # K3: refunded, or a refund waits
            if not closed:  # refused, the page says why, not what a void would do
                effects = services.void_effects(invoice, toolkit.today())
        waiting = invoice.credit_notes.filter(status=CreditNote.Status.REQUESTED)
        if closed and waiting.exists():
            way_on = {
                "way_on_url": reverse("admin:billing_creditnote_changelist")
                + f"?invoice={invoice.pk}&status={CreditNote.Status.REQUESTED}",
                "way_on_label": "Credit notes waiting",
            }
        form = VoidInvoiceForm(request.POST or None)
        return self._form_page(
            request,
            invoice,
            form,
            "Void invoice",
            "billing.void_invoice",
            perform,
            closed=closed,
            # I3, CR2: what voiding does, the credit it gives back included; a page that said
            # otherwise (a grant lapsed since) confirms nothing.
            effects=[*effects, "This cannot be undone."] if effects else [],
            shown=" ".join(effects),
            **way_on,
        )

    def credit_note_view(self, request, pk):
        """K3: support asks for a refund; the page shows what is refunded, what is already
        requested and what is left, so a request that can never be approved is not filed."""
        invoice = get_object_or_404(Invoice.objects.select_related("workspace"), pk=pk)
        refunds = selectors.refund_summary(invoice)

        def perform(data):
            toolkit.call_service(
                services.request_credit_note, invoice, request, data, "amount", "reason"
            )
            return (
                f"Credit note of {money(data['amount'])} on {invoice.number} requested; "
                "finance decides."
            )

        closed = ""
        if invoice.status == Invoice.Status.VOID:
            closed = f"{invoice.number} is void: there is nothing to refund."
        elif refunds.total <= 0:  # M1: issued even at 0.00; nobody paid anything
            closed = f"{invoice.number} came to {money(refunds.total)}: there is nothing to refund."
        elif refunds.left <= 0:
            closed = f"{invoice.number} is refunded in full ({money(refunds.refunded)})."
        form = CreditNoteRequestForm(request.POST or None)
        return self._form_page(
            request,
            invoice,
            form,
            "Request a credit note",
            "billing.add_creditnote",
            perform,
            closed=closed,
            # K3: a page sent again after its request was filed, or one opened before a
            # decision on this invoice's refunds, files nothing: its figures were not these.
            shown=f"Refunded {refunds.refunded}, waiting {refunds.pending}, left {refunds.left}.",
            refunds=refunds,
        )
