"""The public application form of accelerator programs (C7): no login, CSRF-protected, with
per-field errors, a honeypot and a per-address rate limit. Staff review in the admin. And the
finance report on startup credits."""

from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import admin
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django.views.generic import TemplateView

from billing import admin_toolkit
from billing.months import add_months, month_start, next_month
from billing.views import PublicFormPages, document_view, finance_required, public_form
from coupons import reports, services
from coupons.forms import PartnerApplicationForm
from coupons.models import CreditLedgerEntry, NonprofitProof

PAGES = PublicFormPages(
    templates="coupons/partner_", thanks="coupons:partner_thanks", limit="partner-apply"
)


@require_http_methods(["GET", "POST"])
def apply(request):
    """C7: the accelerators' public application form."""
    today = timezone.now().date()
    form = PartnerApplicationForm(request.POST or None)
    return public_form(
        request, form, PAGES, lambda answers: services.apply_as_partner(**answers, as_of=today)
    )


thanks = TemplateView.as_view(template_name="coupons/partner_thanks.html")


@finance_required
def credit_liability(request):
    """Finance: startup credit granted, used, given back, lapsed and outstanding (CR1–CR3, I3)."""
    today = admin_toolkit.today()
    start = add_months(month_start(today), -11)
    movements = reports.credit_movements(start=start, end=next_month(today))
    totals = {
        key: sum((row[key] for row in movements), Decimal("0.00"))
        for key in ("granted", "drawn", "returned", "lapsed")
    }
    rows = [
        {
            "month": row["month"],
            "figures": _with_entries(row, row["month"], next_month(row["month"])),
        }
        for row in movements
    ]
    return render(
        request,
        "coupons/credit_liability.html",
        {
            **admin.site.each_context(request),
            "title": "Startup credits",
            "movements": rows,
            "totals": _with_entries(totals, start, next_month(today)),
            "liability": reports.outstanding(as_of=today),
            "today": today,
        },
    )


# The report's columns, each a kind of ledger entry.
REPORTED_KINDS = {
    "granted": CreditLedgerEntry.Kind.GRANT,
    "drawn": CreditLedgerEntry.Kind.DRAW,
    "returned": CreditLedgerEntry.Kind.RETURN,
    "lapsed": CreditLedgerEntry.Kind.LAPSE,
}


def _with_entries(figures: dict, start, end) -> list:
    """(figure, link) for each column: a figure from `start` to `end` (exclusive) opens the
    ledger entries it adds up, the credit ledger's list filtered by kind and by day (the
    parameters of the list's own kind and date filters)."""
    changelist = reverse("admin:coupons_creditledgerentry_changelist")
    days = {"on__gte": f"{start:%Y-%m-%d}", "on__lt": f"{end:%Y-%m-%d}"}
    return [
        (figures[column], f"{changelist}?{urlencode({'kind__exact': kind, **days})}")
        for column, kind in REPORTED_KINDS.items()
    ]


# C6 (as X5): a non-profit proof to staff who may see proofs.
proof_document = document_view(
    NonprofitProof, permission="coupons.view_nonprofitproof", name="nonprofit-proof"
)
