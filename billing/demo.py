"""Billing's part of the demo data: tax rates and a few hundred workspaces in every state,
built through the services over the last six months (used by `manage.py seed_demo`)."""

import random
from datetime import date, timedelta

from django.db import transaction

from billing import services
from billing.models import Workspace
from billing.months import add_months, month_start, next_month

COUNTRIES = [
    ("US", "CA"),
    ("US", "NY"),
    ("US", "TX"),
    ("DE", ""),
    ("GB", ""),
    ("FR", ""),
    ("AU", ""),
    ("IN", ""),
    ("BR", ""),
    ("CA", "ON"),
]
TAX_RATES = [
    ("US", "CA", "7.25", "California sales tax"),
    ("US", "NY", "4.00", "New York sales tax"),
    ("US", "TX", "6.25", "Texas sales tax"),
    ("DE", "", "19.00", "VAT"),
    ("GB", "", "20.00", "VAT"),
    ("FR", "", "20.00", "VAT"),
    ("AU", "", "10.00", "GST"),
    ("IN", "", "18.00", "GST"),
    ("CA", "ON", "13.00", "HST"),
]
WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Aperture",
    "Gringotts",
    "Monarch",
    "Pied Piper",
]
SUFFIXES = ["Analytics", "Labs", "Health", "Retail", "Games", "Media", "Bank", "Travel"]


def create_world(*, today: date, count: int = 300) -> bool:
    """Create the demo workspaces once; False when they exist already."""
    if Workspace.objects.filter(slug__startswith="demo-").exists():
        return False
    rng = random.Random(2026)
    start = add_months(month_start(today), -6)
    for country, region, rate, name in TAX_RATES:
        services.set_tax_rate(country, region=region, rate=rate, name=name, valid_from=start)
    kinds = (
        ["free"] * 40
        + ["free_over"] * 12
        + ["free_twice"] * 6
        + ["team"] * 20
        + ["annual"] * 8
        + ["trialing"] * 5
        + ["trial_lapsed"] * 5
        + ["cancelled"] * 4
    )
    with transaction.atomic():
        for n in range(count):
            _create_workspace(rng, n, rng.choice(kinds), start, today)
    return True


def _create_workspace(rng, n, kind, start, today):
    country, region = rng.choice(COUNTRIES)
    name = f"{rng.choice(WORDS)} {rng.choice(SUFFIXES)} {n + 1}"
    created = start + timedelta(days=rng.randrange(0, 40))
    if kind == "trialing":
        created = today - timedelta(days=rng.randrange(1, 12))
    # Trials are sign-ups straight into Team, which need no card (T2).
    signs_up_to_team = kind in ("trialing", "trial_lapsed")
    ws = services.create_workspace(
        name,
        slug=f"demo-{n + 1:04d}",
        business_country=country,
        business_region=region,
        billing_email=f"billing+{n + 1}@example.com",
        as_of=created,
        plan="team" if signs_up_to_team else "free",
        has_payment_method=kind in ("team", "annual", "cancelled")
        or (kind == "trialing" and rng.random() < 0.5),
    )
    if kind in ("team", "annual", "cancelled"):
        services.change_to_team(
            ws,
            interval="annual" if kind == "annual" else "monthly",
            as_of=created + timedelta(days=rng.randrange(0, 5)),
        )
    if kind == "cancelled":
        services.change_to_free(ws, as_of=created + timedelta(days=rng.randrange(45, 120)))
    _usage(rng, ws, kind, created, today)


def _usage(rng, ws, kind, created, today):
    month = month_start(created)
    over_months = set()
    if kind == "free_over":
        over_months = {add_months(month_start(today), -rng.randrange(1, 4))}
    elif kind == "free_twice":
        over_months = {add_months(month_start(today), -k) for k in rng.sample([1, 2, 3, 4], 2)}
    while month <= today:
        if kind.startswith("free"):
            mtus = rng.randrange(1_500, 4_000) if month in over_months else rng.randrange(50, 950)
        else:
            mtus = rng.randrange(4_000, 16_000)
        services.record_usage(ws, month=month, mtus=mtus)
        month = next_month(month)
