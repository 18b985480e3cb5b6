"""Small builders for billing tests: they go through the services, as staff would."""

from datetime import date

from django.core.files.base import ContentFile

from billing import services
from billing.demo import certificate_pdf
from billing.models import Invoice

_counter = iter(range(1, 10_000_000))


def workspace(*, as_of=date(2026, 1, 1), plan="free", card=False, interval="monthly", **kwargs):
    n = next(_counter)
    defaults = {
        "slug": f"ws-{n}",
        # Oregon has no sales tax: invoices untaxed unless a test sets a taxed location.
        "business_country": "US",
        "business_region": "OR",
        "billing_email": f"billing{n}@example.com",
    }
    defaults.update(kwargs)
    return services.create_workspace(
        kwargs.pop("name", f"Workspace {n}"),
        **{k: v for k, v in defaults.items() if k != "name"},
        has_payment_method=card,
        plan=plan,
        interval=interval,
        as_of=as_of,
    )


def _paid_team(as_of=date(2026, 1, 1), *, interval="monthly", **kwargs):
    """A workspace with a card on paid Team from `as_of`: it had Team before (Team, back to Free
    and Team again the same day), so the second move starts paid, with no trial day (T1)."""
    ws = workspace(as_of=as_of, card=True, **kwargs)
    services.change_to_team(ws, as_of=as_of)
    services.change_to_free(ws, as_of=as_of)
    services.change_to_team(ws, interval=interval, as_of=as_of)
    return ws


def paid_monthly(as_of=date(2026, 1, 1), **kwargs):
    """A workspace on paid monthly Team from `as_of` (no trial, T1); `workspace`'s keywords."""
    return _paid_team(as_of, **kwargs)


def paid_annual(as_of=date(2026, 1, 1), **kwargs):
    """A workspace on paid annual Team from `as_of` (no trial, T1): its annual invoice that day."""
    return _paid_team(as_of, interval="annual", **kwargs)


def certificate(
    ws,
    region,
    *,
    on,
    valid_from=date(2025, 1, 1),
    valid_to=None,
    reason="nonprofit",
    document=None,
    by=None,
):
    """An exemption certificate for `region` submitted on `on` (X4, X5); a PDF unless `document`
    (a ContentFile) says otherwise."""
    if document is None:
        document = ContentFile(certificate_pdf("Exemption certificate"), name="c.pdf")
    return services.submit_exemption(
        ws,
        region=region,
        reason=reason,
        document=document,
        valid_from=valid_from,
        valid_to=valid_to,
        as_of=on,
        by=by,
    )


def invoice_totals(ws, issued: date):
    """(subtotal, discount, total) of the invoice `ws` was issued on `issued`."""
    invoice = Invoice.objects.get(workspace=ws, issue_date=issued)
    return invoice.subtotal, invoice.discount, invoice.total


def move_business(ws, region, *, by, as_of, reason="Business moved"):
    """X1: the business moves to `region` (a US state) on `as_of`, through the service."""
    return services.update_workspace(
        ws,
        by=by,
        reason=reason,
        name=ws.name,
        business_country="US",
        business_region=region,
        billing_email=ws.billing_email,
        as_of=as_of,
    )


def team_terms_form(**changes) -> dict:
    """The Team plan's change page as finance sends it (P2): the seeded terms (120.00 a month,
    1,440.00 a year, 10,000 MTUs, 0.01 an MTU over, 10 seats, 2 syncs a day, a 14-day trial),
    effective 1 Jan 2027 "for a price review", with `changes` (the form's field names) over them."""
    return {
        "name": "Team",
        "monthly_price": "120.00",
        "annual_price": "1440.00",
        "included_mtus": "10000",
        "overage_rate": "0.01",
        "bills_overage": "on",
        "seats": "10",
        "warehouse_syncs_per_day": "2",
        "trial_days": "14",
        "effective_on": "2027-01-01",
        "change_reason": "Price review",
        **changes,
    }
