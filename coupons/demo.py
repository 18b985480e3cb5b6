"""Coupons' part of the demo data (used by `manage.py seed_demo` after billing's world and
before the billing clock runs, so the demo invoices show discounts and credits): coupons of
every kind, partners in every state, redemptions (some already run out, with follow-ups),
expired and used-up coupons, non-profit proofs, startup credit grants, and promotion campaigns
(one launched two months ago, with the workspaces it notified and those that took the offer;
one draft)."""

import random
from datetime import date, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Min

from billing.emails import send_queued_emails
from billing.models import Subscription
from billing.months import add_months, month_start
from coupons import services
from coupons.campaigns import create_campaign, launch_campaign, notify_batch
from coupons.errors import CouponError
from coupons.models import Coupon

DEMO_PDF = (
    b"%PDF-1.4\n% demo proof of non-profit status\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
)


def seed(*, today: date) -> bool:
    """Create the demo coupons once; False when they exist already."""
    if Coupon.objects.filter(code="LOYALTY10").exists():
        return False
    rng = random.Random(2027)
    start = add_months(month_start(today), -6)
    with transaction.atomic():
        partners = _partners(start)
        coupons = _coupons(start, partners)
        _redemptions(rng, start, today, coupons, partners)
        _campaigns(today)
    return True


def _partners(start):
    def partner(name, status, credit=None):
        p = services.apply_as_partner(
            name,
            contact_name="Demo Contact",
            contact_email=f"{name.split()[0].lower()}@example.com",
            website=f"https://{name.split()[0].lower()}.example.com",
            description=f"{name}: a demo accelerator program.",
            as_of=start,
        )
        if status == "active":
            note = "Larger cohorts, agreed with the program (demo)" if credit else ""
            p = services.approve_partner(p, by=None, as_of=start, credit_amount=credit, note=note)
        elif status == "inactive":
            p = services.decline_partner(p, by=None, reason="Not a fit (demo)", as_of=start)
        return p

    return {
        "northstar": partner("Northstar Accelerator", "active", Decimal("50000.00")),
        "harbor": partner("Harbor Labs", "active"),
        "applied": partner("Lighthouse Ventures", "applied"),
        "declined": partner("Old Forge Incubator", "inactive"),
    }


def _coupons(start, partners):
    create = services.create_coupon
    loyalty = create(
        "LOYALTY10", "Loyalty: 10% off", "promotion", percent_off="10", duration="forever"
    )
    return {
        "loyalty": loyalty,
        "intro": create(
            "INTRO50",
            "Intro: half price for 3 months",
            "promotion",
            percent_off="50",
            duration="repeating",
            duration_months=3,
            follow_up=loyalty,
        ),
        "welcome": create(
            "WELCOME50", "Welcome: $50 off", "promotion", amount_off="50.00", max_redemptions=40
        ),
        "spring": create(
            "SPRING25",
            "Spring sale (expired)",
            "promotion",
            percent_off="25",
            redeem_by=start + timedelta(days=20),
        ),
        "single": create(
            "VIP100", "One-off VIP credit note", "promotion", amount_off="100.00", max_redemptions=1
        ),
        "annual": create(
            "ANNUAL10", "10% off annual plans", "promotion", percent_off="10", intervals=["annual"]
        ),
        "retired": create(
            "RETIRED", "A retired offer", "promotion", percent_off="15", active=False
        ),
        "northstar": create(
            "NORTHSTAR",
            "Northstar alumni: 30% off for 6 months",
            "accelerator",
            percent_off="30",
            duration="repeating",
            duration_months=6,
            partner=partners["northstar"],
            follow_up=loyalty,
        ),
        "harbor": create(
            "HARBOR",
            "Harbor Labs: $60 off forever",
            "accelerator",
            amount_off="60.00",
            duration="forever",
            partner=partners["harbor"],
        ),
    }


def _redemptions(rng, start, today, coupons, partners):
    monthly = list(
        Subscription.objects.filter(
            ended_on=None,
            plan__code="team",
            interval="monthly",
            workspace__slug__startswith="demo-",
        )
        .select_related("workspace")
        .order_by("workspace__slug")
    )
    annual = list(
        Subscription.objects.filter(
            ended_on=None, plan__code="team", interval="annual", workspace__slug__startswith="demo-"
        ).select_related("workspace")[:3]
    )
    workspaces = [s.workspace for s in monthly]
    rng.shuffle(workspaces)
    plan = (
        ["intro"] * 4
        + ["welcome"] * 4
        + ["spring"] * 2
        + ["single"] * 2  # the second is refused: maximum reached
        + ["northstar"] * 3
        + ["harbor"] * 2
        + ["nonprofit"] * 2
        + ["startup"] * 3
        + ["proof_waiting"]
    )
    for ws, what in zip(workspaces, plan, strict=False):
        # Nothing dated after today: a workspace that signed up this week gets it today.
        day = min(max(ws.created_on + timedelta(days=7), start + timedelta(days=10)), today)
        try:
            _give(ws, what, day, today, coupons, partners)
        except CouponError:
            continue  # the demo keeps the refusal's story: nothing was given
    for sub in annual:
        # On the day it moved to annual Team (D4: after that day's move, in date order), before
        # its annual invoice.
        try:
            services.redeem_coupon(sub.workspace, "ANNUAL10", by=None, as_of=sub.started_on)
        except CouponError:
            continue


def _give(ws, what, day, today, coupons, partners):
    if what in ("nonprofit", "proof_waiting"):
        proof = services.submit_nonprofit_proof(
            ws, document=ContentFile(DEMO_PDF, name="501c3-letter.pdf"), by=None, as_of=day
        )
        if what == "nonprofit":
            approved_on = min(day + timedelta(days=2), today)
            services.approve_nonprofit_proof(proof, by=None, as_of=approved_on)
        return
    if what == "startup":
        partner = partners["northstar"] if ws.pk % 2 else None
        services.redeem_coupon(ws, "STARTUP", by=None, as_of=day, partner=partner)
        return
    services.redeem_coupon(ws, coupons[what].code, by=None, as_of=day, reason="Demo")


# --- Promotion campaigns (G1–G3) ---------------------------------------------------------------

CAMPAIGN_MESSAGE = (
    "Thank you for building with us. For the next three months your Team plan is 20% off: "
    "reply to this email and support applies it to your workspace."
)


def _campaigns(today):
    """A campaign to monthly Team customers launched early in the month before last (so the
    billing clock has billed its discounts since), six of them redeeming the coupon in the
    days after (support applies it: C2), and a draft campaign to Free workspaces whose preview
    staff can still change."""
    comeback = services.create_coupon(
        "COMEBACK20",
        "Comeback: 20% off Team for 3 months",
        "promotion",
        percent_off="20",
        duration="repeating",
        duration_months=3,
        intervals=["monthly"],
    )
    launched_on = min(add_months(month_start(today), -2) + timedelta(days=2), today)
    campaign = create_campaign(
        "Team customers: 20% off for three months",
        comeback.code,
        "20% off your Team plan for three months",
        CAMPAIGN_MESSAGE,
        {"plan": "team", "interval": "monthly"},
    )
    # The demo sends the batch itself, at once: no worker may be running yet, and a redemption
    # is attributed only once the workspace's email went (G3), so its emails go here, before
    # the replies below (the hook after the demo's commit then finds them sent).
    launch_campaign(campaign, by=None, as_of=launched_on, dispatch=lambda *batches: None)
    bounds = campaign.recipients.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is not None:
        notify_batch(campaign.pk, first_id=bounds["first"], last_id=bounds["last"])
        send_queued_emails(list(campaign.recipients.values_list("email_id", flat=True)))
    reached = list(campaign.recipients.select_related("workspace").order_by("workspace__slug")[:6])
    for n, recipient in enumerate(reached):
        try:
            services.redeem_coupon(
                recipient.workspace,
                comeback.code,
                by=None,
                as_of=min(launched_on + timedelta(days=2 + n), today),
                reason="Replied to the campaign email (demo)",
            )
        except CouponError:
            continue
    create_campaign(
        "Free workspaces near the limit: $50 off Team",
        "WELCOME50",
        "$50 off your first Team invoice",
        "Your workspace is close to the Free plan's limit: Team lifts it, and your first "
        "invoice is $50 less.",
        {"plan": "free", "min_mtus": 500},
    )
