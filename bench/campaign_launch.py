"""Benchmark: a promotion campaign over 100,000 workspaces on PostgreSQL (G1, G2). 30 % on
Team, 70 % on Free, one in five with a running discount and one in twenty a program member (the
coupons bench's mix), eleven months of usage. Prints the server time (median of 3) and query
count of the launch page, the campaign page (preview computed, then kept) and the campaign
list, then the launch's time, then the pages again with the recipients it recorded.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \
        .venv/bin/python bench/campaign_launch.py
"""

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import (
    add_discounts_and_credits,
    as_in_production,
    fresh_workspaces,
    setup_django,
    staff_client,
    time_page,
    timed,
)

MONTHS = [f"2026-{m:02d}-01" for m in range(1, 12)]


def build_campaign(user):
    from coupons.models import Campaign, Coupon
    from coupons.services import create_campaign, create_coupon

    Campaign.objects.all().delete()  # an earlier run's (its recipients went with the workspaces)
    Coupon.objects.filter(code="BENCHWINTER").delete()
    create_coupon(
        "BENCHWINTER", name="Winter 15 % off", kind="promotion", percent_off=15, duration="once"
    )
    return create_campaign(
        "Winter", "BENCHWINTER", "15% off your next bill", "Winter is here.", {}, by=user
    )


def page(client, url, params=None, runs=3):
    """The median server time of `runs` GETs of `url` (ms), the queries of the last one, the
    slowest of them and the page's figures."""
    timing = time_page(client, url, params, runs=runs)
    slowest = max(timing.queries, key=lambda q: float(q["time"]))
    response = timing.response
    body = response.content.decode()
    figures = [
        " ".join(match.groups()) for pattern in FIGURES if (match := re.search(pattern, body))
    ]
    return timing.ms, len(timing.queries), slowest, figures


FIGURES = [
    r"<strong>(\d+)</strong> (workspace\(s\) will be emailed now)",
    r"(Audience today: \d+ workspace\(s\)[^<]*)",
    r"(Left out[^<]*)",
    r"(\d+ sent, \d+ queued, \d+ waiting)",
]


def show(client, pages):
    for label, url, params in pages:
        ms, queries, slowest, figures = page(client, url, params)
        print(f"{label}: {ms:.0f} ms, {queries} queries; {'; '.join(figures)}")
        print(f"    slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:150]}")


def main():
    setup_django()
    from django.core.cache import cache
    from django.urls import reverse

    from billing.admin_toolkit import today
    from billing.roles import SUPPORT
    from coupons import campaigns

    fresh_workspaces(team=30_000, free=70_000, months=MONTHS, month_of_team="2026-01-01")
    timed("discounts and credits", add_discounts_and_credits, since="2026-02-01")
    client, user = staff_client("bench-support", SUPPORT)
    campaign = build_campaign(user)
    launch = reverse("admin:coupons_campaign_launch", args=[campaign.pk])
    change = reverse("admin:coupons_campaign_change", args=[campaign.pk])
    pages = [
        ("launch page", launch, None),
        ("campaign page, preview computed", change, {"refresh": "preview"}),
        ("campaign page, preview kept", change, None),
        ("campaign list", reverse("admin:coupons_campaign_changelist"), None),
    ]
    cache.clear()
    with as_in_production():
        show(client, pages)

        # The launch evaluates the audience again and records every recipient; nothing is
        # handed to the workers (the bench measures the launch, not the sending).
        start = time.perf_counter()
        added = campaigns.launch_campaign(
            campaign, by=user, as_of=today(), dispatch=lambda *args: None
        )
        print(f"launch: {time.perf_counter() - start:.2f} s, {added:,} workspaces reached")
        print(f"after the launch ({added:,} recipients):")
        show(client, pages)


if __name__ == "__main__":
    main()
