"""Small builders for billing tests: they go through the services, as staff would."""

from datetime import date

from billing import services

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
