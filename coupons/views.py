"""The public application form of accelerator programs (C7): no login, CSRF-protected, with
per-field errors, a honeypot and a per-address rate limit. Staff review in the admin. And the
finance report on startup credits."""

from decimal import Decimal

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from billing.months import add_months, month_start, next_month
from billing.views import finance_required
from coupons import reports, services
from coupons.errors import CouponError
from coupons.forms import PartnerApplicationForm

RATE_WINDOW_SECONDS = 3600


def _over_rate_limit(request) -> bool:
    """Submissions per client address per hour (settings.PUBLIC_FORM_RATE_LIMIT). The address
    is the connection's: a forwarded-for header is the client's to invent."""
    key = f"partner-apply:{request.META.get('REMOTE_ADDR', 'unknown')}"
    cache.add(key, 0, RATE_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, RATE_WINDOW_SECONDS)
        count = 1
    return count > settings.PUBLIC_FORM_RATE_LIMIT


@require_http_methods(["GET", "POST"])
def apply(request):
    form = PartnerApplicationForm(request.POST or None)
    if request.method == "POST":
        if _over_rate_limit(request):
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
