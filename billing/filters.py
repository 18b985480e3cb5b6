"""Filters of the finance pages (R3), shared by the invoice list, its CSV export and
`manage.py export_invoices`, so the export of a filtered list is exactly that list."""

import django_filters
from django import forms
from django.db.models import Q
from django_countries import countries

from billing import reports
from billing.models import Interval, Invoice, Plan, Workspace
from billing.months import next_month, parse_month
from billing.tax import EXEMPT_NOTE_PREFIX


class MonthField(forms.CharField):
    """`YYYY-MM` (what a browser's month input sends) → the 1st of that month."""

    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "size": 8})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return parse_month(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class MonthFilter(django_filters.Filter):
    field_class = MonthField


class MonthRangeForm(forms.Form):
    def clean(self):
        data = super().clean()
        start, end = data.get("issued_from"), data.get("issued_to")
        if start and end and end < start:
            raise forms.ValidationError(
                f"The range ends ({end:%Y-%m}) before it starts ({start:%Y-%m})."
            )
        return data


class IssueMonthFilter(django_filters.FilterSet):
    """Invoices by issue month, both ends included."""

    issued_from = MonthFilter(label="Issued from", method="filter_issued_from")
    issued_to = MonthFilter(label="Issued to", method="filter_issued_to")

    class Meta:
        model = Invoice
        fields = []
        form = MonthRangeForm

    def filter_issued_from(self, queryset, name, month):
        return queryset.filter(issue_date__gte=month)

    def filter_issued_to(self, queryset, name, month):
        return queryset.filter(issue_date__lt=next_month(month))


def _country_choices():
    return [(code, f"{code} — {name}") for code, name in countries]


class InvoiceFilter(IssueMonthFilter):
    TAXED, EXEMPT, UNTAXED = "taxed", "exempt", "untaxed"
    TAX_CHOICES = [
        (TAXED, "Taxed"),
        (EXEMPT, "Exempt (certificate)"),
        (UNTAXED, "No tax (no rate, or nothing to tax)"),
    ]

    COUNTED = "counted"

    # "Not void": what the reports count (I3), so a report's figure opens its invoices.
    status = django_filters.ChoiceFilter(
        choices=[*Invoice.Status.choices, (COUNTED, "Not void (as the reports count)")],
        method="filter_status",
    )
    kind = django_filters.ChoiceFilter(choices=Invoice.Kind.choices)
    plan = django_filters.ChoiceFilter(
        field_name="plan_code", choices=Plan.Code.choices, label="Plan"
    )
    # The revenue report's columns are plan and interval as invoiced: each figure opens these.
    interval = django_filters.ChoiceFilter(choices=Interval.choices, label="Billing interval")
    country = django_filters.ChoiceFilter(
        field_name="tax_country", choices=_country_choices, label="Tax country"
    )
    region = django_filters.CharFilter(
        field_name="tax_region", method="filter_region", label="Tax region (state)"
    )
    tax = django_filters.ChoiceFilter(choices=TAX_CHOICES, method="filter_tax", label="Tax")
    # Walk 5: one customer's invoices, or one invoice, without the header's search box; the
    # export of that list is then that customer's.
    workspace = django_filters.CharFilter(
        method="filter_workspace", label="Workspace (slug)", max_length=100
    )
    number = django_filters.CharFilter(
        method="filter_number", label="Invoice number", max_length=20
    )

    class Meta(IssueMonthFilter.Meta):
        pass

    # The filters a figure of the reports opens its invoices with: the roll-up counts them.
    ROLLED_UP = {"issued_from", "issued_to", "status", "plan", "interval", "country", "region"}

    def rollup_count(self) -> int | None:
        """How many invoices the (valid) filters list, from the invoices' roll-up
        (`reports.counted_invoices`), when they ask for no more than it keeps: "not void"
        invoices by issue months, tax place, plan and interval. Otherwise None."""
        given = {name: value for name, value in self.form.cleaned_data.items() if value}
        if given.get("status") != self.COUNTED or given.keys() - self.ROLLED_UP:
            return None
        return reports.counted_invoices(
            first=given.get("issued_from"),
            last=given.get("issued_to"),
            tax_country=given.get("country"),
            tax_region=given["region"].upper() if "region" in given else None,
            plan_code=given.get("plan"),
            interval=given.get("interval"),
        )

    def filter_status(self, queryset, name, value):
        if value == self.COUNTED:
            return queryset.exclude(status=Invoice.Status.VOID)
        return queryset.filter(status=value)

    def filter_workspace(self, queryset, name, value):
        found = Workspace.objects.filter(slug__iexact=value.strip()).values("pk")
        return queryset.filter(workspace_id__in=found)

    def filter_number(self, queryset, name, value):
        return queryset.filter(number=value.strip().upper())  # numbers are upper case: indexed

    def filter_region(self, queryset, name, value):
        return queryset.filter(tax_region=value.strip().upper())

    def filter_tax(self, queryset, name, value):
        exempt = Q(tax_note__startswith=EXEMPT_NOTE_PREFIX)
        if value == self.TAXED:
            return queryset.filter(tax__gt=0)
        if value == self.EXEMPT:
            return queryset.filter(exempt)
        return queryset.filter(tax=0).exclude(exempt)
