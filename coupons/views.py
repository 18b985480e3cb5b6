"""The public application form of accelerator programs (C7): no login, CSRF-protected, with
per-field errors, a honeypot and a per-address rate limit. Staff review in the admin. And the
finance report on startup credits."""

from decimal import Decimal

from django.contrib import admin
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from billing import ratelimit
from billing.documents import EXTENSIONS, document_response
from billing.months import add_months, month_start, next_month
from billing.views import finance_required, staff_permission_required, wants_preview
from coupons import reports, services
from coupons.errors import CouponError
from coupons.forms import PartnerApplicationForm
from coupons.models import NonprofitProof

# Accepted applications per client address per hour (billing.ratelimit, SPEC R7).
RATE_LIMITED_FORM = "partner-apply"


@require_http_methods(["GET", "POST"])
def apply(request):
    form = PartnerApplicationForm(request.POST or None)
    if request.method == "POST":
        if ratelimit.limit_reached(request, RATE_LIMITED_FORM):
            return render(request, "coupons/partner_rate_limited.html", status=429)
        if form.is_bot:
            return redirect("coupons:partner_thanks")  # tell a bot nothing
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.apply_as_partner(
                    data["name"],
                    website=data["website"],
                    contact_name=data["contact_name"],
                    contact_email=data["contact_email"],
                    description=data["description"],
                    as_of=timezone.now().date(),
                )
            except CouponError as exc:
                form.add_error(None, str(exc))
            else:
                ratelimit.count_submission(request, RATE_LIMITED_FORM)
                return redirect("coupons:partner_thanks")
    return render(request, "coupons/partner_apply.html", {"form": form})


def thanks(request):
    return render(request, "coupons/partner_thanks.html")


@finance_required
def credit_liability(request):
    """Finance: startup credit granted, used, lapsed and outstanding (CR1–CR3)."""
    today = timezone.now().date()
    start = add_months(month_start(today), -11)
    movements = reports.credit_movements(start=start, end=next_month(today))
    totals = {
        key: sum((row[key] for row in movements), Decimal("0.00"))
        for key in ("granted", "drawn", "lapsed")
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


@staff_permission_required("coupons.view_nonprofitproof")
def proof_document(request, pk: int):
    """C6 (as X5): a non-profit proof to staff who may see proofs: a download, or with
    `?preview=1` shown on the proof's page (sandboxed, never sniffed)."""
    proof = get_object_or_404(NonprofitProof, pk=pk)
    return document_response(
        proof.document,
        content_type=proof.content_type,
        filename=f"nonprofit-proof-{proof.pk}{EXTENSIONS.get(proof.content_type, '')}",
        inline=wants_preview(request),
    )
