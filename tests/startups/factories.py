from datetime import date
from decimal import Decimal

from startups import services

_counter = iter(range(1, 10_000_000))

# A good submission of the public application form (S1), as posted.
APPLICATION_FORM = {
    "company_name": "Lumen Data",
    "website": "https://lumen.example.com",
    "contact_name": "Ada",
    "contact_email": "ada@lumen.example.com",
    "incorporation_date": "2025-05-01",
    "total_funding": "250000",
    "country": "NL",
    "workspace": "",
    "partner_name": "",
    "nickname": "",
}


def application(*, as_of=date(2026, 1, 20), **overrides):
    n = next(_counter)
    values = {
        "website": f"https://startup{n}.example.com",
        "contact_name": f"Founder {n}",
        "contact_email": f"founder{n}@startup{n}.example.com",
        "incorporation_date": date(2025, 6, 1),
        "total_funding": Decimal("1500000.00"),
        "country": "DE",
    }
    values.update(overrides)
    name = values.pop("company_name", f"Startup {n}")
    return services.submit_application(name, as_of=as_of, **values)


def confirm_year_two(application, *, by, as_of):
    """CR3: year two of an approved application confirmed with figures that pass E2 and E3
    (1,000,000.00 raised, Germany); its renewal review is open."""
    from startups.models import RenewalReview

    return services.confirm_renewal(
        RenewalReview.objects.get(application=application),
        by=by,
        total_funding=Decimal("1000000"),
        country="DE",
        as_of=as_of,
    )


def renewal_review_due(*, by, pin_today=None):
    """CR3: an application approved on 21 Jan 2026 for a Free workspace (S7 confirmed), the
    clock run through its first anniversary (21 Jan 2027) and, given `pin_today`, the admin's
    today the day after: its year-two review, due."""
    from billing import services as billing
    from startups.models import RenewalReview
    from tests.billing.factories import workspace

    app = services.approve_application(
        application(workspace=workspace(as_of=date(2026, 1, 2))),
        by=by,
        as_of=date(2026, 1, 21),
        credits_scope_confirmed=True,
    )
    billing.run_billing(as_of=date(2027, 1, 21))
    if pin_today:
        pin_today(date(2027, 1, 22))
    return RenewalReview.objects.get(application=app)
