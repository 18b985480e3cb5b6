"""The public application form of accelerator programs (C7): no login, CSRF-protected, with
per-field errors, a honeypot and a per-address rate limit. Staff review in the admin. And the
finance report on startup credits."""

from decimal import Decimal

from django.contrib import admin
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django.views.generic import TemplateView

from billing.months import add_months, month_start, next_month
from billing.views import PublicFormPages, document_view, finance_required, public_form
from coupons import reports, services
from coupons.forms import PartnerApplicationForm
from coupons.models import NonprofitProof

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
    today = timezone.now().date()
    start = add_months(month_start(today), -11)
    movements = reports.credit_movements(start=start, end=next_month(today))
    totals = {
        key: sum((row[key] for row in movements), Decimal("0.00"))
        for key in ("granted", "drawn", "returned", "lapsed")
    }
    return render(
        request,
        "coupons/credit_liability.html",
        {
            **admin.site.each_context(request),
            "title": "Startup credits",
            "movements": movements,
            "totals": totals,
            "liability": reports.outstanding(as_of=today),
            "today": today,
        },
    )


# C6 (as X5): a non-profit proof to staff who may see proofs.
proof_document = document_view(
    NonprofitProof, permission="coupons.view_nonprofitproof", name="nonprofit-proof"
)
