"""Startup credit (CR1–CR3), read-only for finance: the grants and their ledger, and the grants
on the workspace page."""

from django import forms
from django.contrib import admin

from billing.admin_toolkit import (
    ReadOnlyInline,
    ServiceAdmin,
    money_column,
    unsorted_column,
    validity_column,
)
from coupons.models import CreditGrant, CreditLedgerEntry


class GrantColumns:
    """A grant's amount, what is left, and its first and last valid days (the end is stored
    exclusive)."""

    terms = ["year", "amount_display", "remaining_display", "validity"]
    amount_display = money_column("amount", description="Amount")
    remaining_display = money_column("remaining", description="Left")
    validity = validity_column("valid_from", "valid_until", last_is_exclusive=True)


class LedgerInline(ReadOnlyInline):
    model = CreditLedgerEntry
    fields = ["on", "kind", "amount_display", "invoice"]

    amount_display = money_column("amount", description="Amount", sortable=False)


class CreditGrantForm(forms.ModelForm):
    """The grant page is read-only: help texts in the readers' words."""

    class Meta:
        model = CreditGrant
        fields = []
        help_texts = {"year": "Program year: 1 or 2 (a second year after a renewal review)."}


@admin.register(CreditGrant)
class CreditGrantAdmin(GrantColumns, ServiceAdmin):
    form = CreditGrantForm
    list_display = ["workspace", *GrantColumns.terms, "lapsed_on", "partner_name"]
    list_filter = ["year", "valid_until"]
    list_select_related = ["workspace", "partner"]
    # A partner's grants by its name: the list has no partner filter (partners apply through
    # a public form, too many for a filter's choices) and its column is not sortable.
    search_fields = ["workspace__slug", "workspace__name", "partner__name"]
    fields = [
        "workspace",
        *GrantColumns.terms,
        "lapsed_on",
        "redemption",
        "partner",
        "granted_by",
    ]
    readonly_fields = ["amount_display", "remaining_display", "validity"]
    inlines = [LedgerInline]

    # Not sortable: sorted by partner, the list joined every grant to its partner and sorted
    # them all (18,750 grants: 0.10–0.18 s a page); no index can give that order, as most grants
    # have no partner.
    @admin.display(description="Partner")
    def partner_name(self, grant):
        return grant.partner.name if grant.partner else None


class CreditGrantInline(GrantColumns, ReadOnlyInline):
    """The workspace page's startup credit grants."""

    model = CreditGrant
    fields = [*GrantColumns.terms, "lapsed_on"]
    show_change_link = True
    verbose_name_plural = "startup credit grants"


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ServiceAdmin):
    """CR2: every movement of every grant, grant by grant (newest valid first: the grants'
    index) and in date order within one."""

    list_display = ["grant", "on_day", "kind_display", "amount_display", "invoice_number"]
    list_filter = ["kind", "on"]
    list_select_related = ["grant__workspace", "invoice"]
    search_fields = ["grant__workspace__slug", "invoice__number"]
    fields = ["grant", "on", "kind", "amount_display", "invoice"]
    readonly_fields = ["amount_display"]

    # Not sortable, On, Kind and Amount: sorted by one, the list sorted every entry for one
    # page (168,750: 93–168 ms of the database's time; bench_sorts), and an index for each
    # would slow every month close, which writes the draws. The Kind and On filters narrow the
    # list instead.
    on_day = unsorted_column("on", description="On")
    kind_display = unsorted_column("kind", description="Kind")
    amount_display = money_column("amount", description="Amount", sortable=False)

    # Not sortable: sorted by invoice, the list joined every entry to its invoice and sorted
    # them all (168,750 entries: 0.7–1.1 s a page); no index can give that order, as grants
    # and lapses have no invoice. The search finds an invoice's entries by its number.
    @admin.display(description="Invoice")
    def invoice_number(self, entry):
        return entry.invoice.number if entry.invoice else None
