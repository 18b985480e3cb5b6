"""The startup program's part of the demo data (used by `manage.py seed_demo` after billing's
and coupons' parts): applications in every state, members whose first anniversary is due (so
the billing clock opens their renewal reviews), partner deals and requests."""

import random
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.db import transaction

from billing import services as billing
from billing.models import Workspace
from billing.roles import STARTUP_REVIEWERS
from coupons.selectors import ever_received_coupon_or_credit
from startups import services
from startups.models import PartnerDeal, StartupApplication

DEALS = [
    ("WarehouseCo", "Six months of the Starter warehouse free"),
    ("MailRocket", "50% off email sends for a year"),
    ("FlagShip", "Feature flags free up to 50 seats"),
    ("CloudNine", "$5,000 in hosting credit"),
]
COMPANIES = [
    "Nimbus",
    "Quanta",
    "Orbital",
    "Fable",
    "Lattice",
    "Beacon",
    "Kite",
    "Mosaic",
    "Tandem",
    "Ember",
    "Summit",
    "Harbor",
    "Vector",
    "Juniper",
    "Pylon",
    "Atlas",
    "Sonar",
    "Cobalt",
    "Prism",
    "Willow",
    "Zephyr",
    "Onyx",
    "Rally",
    "Tidal",
]


def seed(*, today: date) -> bool:
    """Create the demo applications once; False when they exist already."""
    if StartupApplication.objects.exists():
        return False
    rng = random.Random(2028)
    reviewer, _ = User.objects.get_or_create(username="reviewer", defaults={"is_staff": True})
    reviewer.groups.add(Group.objects.get(name=STARTUP_REVIEWERS))
    with transaction.atomic():
        deals = [PartnerDeal.objects.create(company=c, title=t, description=t) for c, t in DEALS]
        candidates = [
            ws
            for ws in Workspace.objects.filter(slug__startswith="demo-").order_by("pk")
            if not ever_received_coupon_or_credit(ws)
        ]
        for n, company in enumerate(COMPANIES):
            _application(rng, n, company, today, reviewer, candidates, deals)
        _anniversary_members(today, reviewer)
    return True


def _application(rng, n, company, today, reviewer, candidates, deals):
    submitted = today - timedelta(days=rng.randrange(1, 60))
    state = ["submitted", "submitted", "in_review", "approved", "rejected", "withdrawn"][n % 6]
    app = services.submit_application(
        f"{company} {['Labs', 'AI', 'Data', 'Health'][n % 4]}",
        website=f"https://{company.lower()}.example.com",
        contact_name=f"{company} Founder",
        contact_email=f"founders@{company.lower()}.example.com",
        incorporation_date=submitted - timedelta(days=rng.choice([120, 400, 800])),
        total_funding=Decimal(rng.choice([250_000, 1_800_000, 4_999_999, 7_500_000])),
        country=rng.choice(["US", "DE", "FR", "IN", "BR", "RU", "GB"]),
        workspace=_signed_up_by(candidates, submitted) if state == "approved" else None,
        partner_name=rng.choice(["", "", "Y Combinator", "Techstars"]),
        as_of=submitted,
    )
    if state == "in_review":
        services.start_review(app, by=reviewer, as_of=submitted + timedelta(days=1))
    elif state == "approved" and app.workspace:
        # Nothing dated after today: the coupon and grant are dated the approval day.
        decided = min(submitted + timedelta(days=2), today)
        app = services.approve_application(
            app,
            by=reviewer,
            as_of=decided,
            override_reason="Demo: accepted despite a failing check" if app.failing_checks else "",
            credits_scope_confirmed=True,  # S7: the demo reviewer has read the warning
        )
        for deal in rng.sample(deals, 2):
            request = services.request_deal(app, deal=deal, as_of=decided)
            if rng.random() < 0.5:
                services.decide_deal_request(
                    request, by=reviewer, fulfil=True, as_of=today, note="Code sent by email"
                )
    elif state == "rejected":
        services.reject_application(
            app, by=reviewer, reason="Incorporated more than two years ago.", as_of=today
        )
    elif state == "withdrawn":
        services.withdraw_application(app, by=reviewer, as_of=today, reason="Raised a Series B")


def _signed_up_by(candidates, day):
    """The last of `candidates` that had signed up by `day`, taken from them; None if none had:
    an application names a workspace that exists on its day (the grant's coupon is dated then;
    a workspace seeded this week was refused for an application of last month)."""
    for i in reversed(range(len(candidates))):
        if candidates[i].created_on <= day:
            return candidates.pop(i)
    return None


def _anniversary_members(today, reviewer):
    """Two members accepted a year ago: the billing clock opens their year-two reviews."""
    joined = today - timedelta(days=370)
    for n in (1, 2):
        ws = billing.create_workspace(
            f"Veteran Startup {n}",
            slug=f"demo-veteran-{n}",
            business_country="US",
            business_region="CA",
            billing_email=f"billing@veteran{n}.example.com",
            as_of=joined - timedelta(days=10),
            has_payment_method=True,
        )
        app = services.submit_application(
            f"Veteran Startup {n}",
            website=f"https://veteran{n}.example.com",
            contact_name="Vera",
            contact_email=f"vera@veteran{n}.example.com",
            incorporation_date=joined - timedelta(days=200),
            total_funding=Decimal("900000"),
            country="US",
            workspace=ws,
            as_of=joined,
        )
        services.approve_application(app, by=reviewer, as_of=joined, credits_scope_confirmed=True)
        billing.change_to_team(ws, as_of=joined)
