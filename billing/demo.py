"""Billing's part of the demo data: a few hundred workspaces, built through the services over
the last six months, tax exemption certificates in every US state, a workspace closed at its
customer's request (W1), whose confirmation email failed, and (once the clock has issued
invoices) credit notes waiting for finance (used by `manage.py seed_demo`). Tax rates come from
the data migration 0006_seed_tax_rates."""

import logging
import random
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from django.test.utils import override_settings

from billing import services
from billing.clock import last_processed_day
from billing.closures import closure_preview
from billing.emails import send_queued_email
from billing.models import (
    CreditNote,
    Invoice,
    OutboundEmail,
    Subscription,
    TaxExemption,
    Workspace,
    WorkspaceClosure,
)
from billing.months import add_months, month_start, next_month
from billing.regions import US_STATES

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
        _create_certificates(rng, start, today)
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


# --- Tax exemption certificates (X4, X5) ------------------------------------------------------

REVIEW_OUTCOMES = ["approved"] * 6 + ["in_review", "submitted", "rejected"]


def certificate_pdf(*lines: str) -> bytes:
    """A one-page PDF showing `lines`: a real document for the demo and the tests (X5)."""

    def escape(text):
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " ".join(f"({escape(line)}) Tj T*" for line in lines)
    content = f"BT /F1 14 Tf 18 TL 72 720 Td {shown} ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


def _submit_certificate(ws, region, reason, submitted_on, outcome, decided_on):
    document = ContentFile(
        certificate_pdf(
            f"{region} sales tax exemption certificate",
            f"Holder: {ws.name}",
            f"Reason: {reason}",
        ),
        name="certificate.pdf",
    )
    certificate = services.submit_exemption(
        ws,
        region=region,
        reason=reason,
        document=document,
        valid_from=submitted_on - timedelta(days=30),
        as_of=submitted_on,
    )
    if outcome in ("in_review", "approved", "rejected"):
        services.start_exemption_review(certificate, by=None, as_of=submitted_on)
    if outcome == "approved":
        services.approve_exemption(certificate, by=None, as_of=decided_on)
    elif outcome == "rejected":
        services.reject_exemption(
            certificate,
            by=None,
            reason="The certificate is not signed by the purchaser.",
            as_of=decided_on,
        )
    return certificate


def _paid_team_workspace(slug, name, region, start, today):
    ws = services.create_workspace(
        name,
        slug=slug,
        business_country="US",
        business_region=region,
        billing_email=f"billing+{slug}@example.com",
        has_payment_method=True,
        as_of=start,
    )
    services.change_to_team(ws, as_of=start)
    month = start
    while month <= today:
        services.record_usage(ws, month=month, mtus=12_000)
        month = next_month(month)
    return ws


def _create_certificates(rng, start, today):
    """Two workspaces whose invoices show why tax was still charged (the plans and billing
    FAQ's two cases), and a certificate for every state, held by the US demo workspaces, in
    every review status. Where a Team workspace is located in the state, the certificate is
    its own and approved, so that its invoices are exempt (the tax report's exempt amounts);
    the others go to any of them (a workspace may hold certificates for other states); and two
    more, waiting, for other Team workspaces of a state, covering it."""
    approved_late = add_months(today, -2) + timedelta(days=2)
    approved_soon = start + timedelta(days=5)
    for slug, name, located_in, covers, reason, approved_on in [
        # In review while the first invoices were issued, approved later: the early invoices
        # are taxed with "still in review on …", the later ones exempt.
        ("demo-tax-in-review", "Harbor Food Bank", "TX", "TX", "nonprofit", approved_late),
        # The certificate covers another state than the business location.
        ("demo-tax-other-state", "Green Mountain Co-op", "VT", "NH", "resale", approved_soon),
    ]:
        ws = _paid_team_workspace(slug, name, located_in, start, today)
        _submit_certificate(ws, covers, reason, start + timedelta(days=3), "approved", approved_on)

    holders = list(
        Workspace.objects.filter(slug__startswith="demo-", business_country="US").order_by("pk")
    )
    on_team = set(
        Subscription.objects.filter(ended_on=None, plan__code="team").values_list(
            "workspace_id", flat=True
        )
    )
    team_in = {}
    for ws in holders:
        if ws.pk in on_team and not ws.slug.startswith("demo-tax-"):  # those two have theirs
            team_in.setdefault(ws.business_region, []).append(ws)
    for n, region in enumerate(sorted(US_STATES)):
        submitted = start + timedelta(days=rng.randrange(0, 60))
        reason, outcome = rng.choice(TaxExemption.Reason.values), rng.choice(REVIEW_OUTCOMES)
        located = team_in.get(region)
        holder = located[n % len(located)] if located else holders[n % len(holders)]
        submitted = max(submitted, holder.created_on)  # D3: not before it signed up
        _submit_certificate(
            holder,
            region,
            reason,
            submitted,
            "approved" if located else outcome,
            submitted + timedelta(days=rng.randrange(1, 20)),
        )
    # Two waiting for finance that cover their own workspace's state: approving one exempts
    # that workspace's next invoices (walk 5: every waiting one covered another state).
    second_in_state = [ws for _, located in sorted(team_in.items()) for ws in located[1:]]
    for ws, outcome in zip(second_in_state, ("submitted", "in_review"), strict=False):
        submitted = today - timedelta(days=3)
        _submit_certificate(ws, ws.business_region, "resale", submitted, outcome, submitted)


# --- A workspace closed at its customer's request (W1) ------------------------------------------

CLOSURE_REASON = (
    "Ticket 5120: the customer asked us to delete the workspace (moving to an in-house tool)."
)


def closure_day(today: date) -> date:
    """The day the demo's closure is dated: the 10th of last month, so the final invoice has
    paid days to bill (K1) and the clock has billed every month before it (`seed_demo` runs
    the clock through the day before, closes, then runs it on)."""
    return add_months(month_start(today), -1) + timedelta(days=9)


def subscription_to_close(day: date):
    """The monthly Team subscription whose workspace the demo closes on `day`: the first whose
    final invoice would bill something (a coupon or credit the other demos gave may pay it
    whole, and the demo shows a final invoice to pay); None if none would."""
    subscriptions = (
        Subscription.objects.filter(
            ended_on=None,
            plan__code="team",
            interval="monthly",
            paid_from__lt=day,
            workspace__slug__startswith="demo-",
            workspace__closed_on=None,
        )
        .select_related("workspace")
        .order_by("workspace__slug")
    )
    for subscription in subscriptions:
        final = closure_preview(subscription.workspace, as_of=day).final_invoice
        if final is not None and final.total > 0:
            return subscription
    return None


def close_workspace(*, today: date, support) -> bool:
    """W1: support closes a monthly Team customer's workspace, with the reason from the
    ticket; its final invoice bills the paid days of the month and the overage reported so
    far. Once; False when a closure exists already or the clock is past the closure's day."""
    day = closure_day(today)
    if WorkspaceClosure.objects.exists() or (last_processed_day() or date.min) >= day:
        return False
    subscription = subscription_to_close(day)
    if subscription is None:
        return False
    with _mail_server_down():
        closure = services.close_workspace(
            subscription.workspace, by=support, reason=CLOSURE_REASON, as_of=day
        )
        # A sender with workers retries later; this last try fails the row as theirs would.
        for email in OutboundEmail.objects.filter(
            kind="workspace_closed", object_key=f"closure:{closure.pk}"
        ):
            send_queued_email(email.pk, last_try=True)
    return True


@contextmanager
def _mail_server_down():
    """Inside, mail goes to an SMTP server that is not there (nothing listens on port 1), so
    the demo's closure confirmation fails as an outage fails it: support and finance have an
    email to resend (F6), and their portal's mail server takes it. `seed_demo` says so; the
    sender's error lines, written for an outage, stay out of the terminal."""
    logging.disable(logging.ERROR)
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=1,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_TIMEOUT=2,
        ):
            yield
    finally:
        logging.disable(logging.NOTSET)


# --- Credit notes waiting for finance (K3) ----------------------------------------------------

CREDIT_NOTE_REQUESTS = [
    (Decimal("20.00"), "Ticket 4812: two days of downtime in the EU region."),
    (Decimal("45.00"), "Ticket 4877: charged for a month after the customer asked to cancel."),
    (Decimal("12.50"), "Ticket 4901: overage counted test users; goodwill."),
    (Decimal("30.00"), "Ticket 4760: duplicate seats during the migration."),
]


def request_credit_notes(*, today: date, support, finance) -> bool:
    """Refunds support asked for on recent invoices, so finance has decisions waiting today:
    all but one still requested, one approved (an invoice with a refunded amount and a
    credit-note document). Once; False when credit notes exist already. Runs after the
    billing clock, which issues the invoices."""
    if CreditNote.objects.exists():
        return False
    invoices = Invoice.objects.filter(
        status=Invoice.Status.ISSUED,
        total__gt=Decimal("100.00"),
        workspace__slug__startswith="demo-",
    ).order_by("-issue_date", "number__length", "number")[: len(CREDIT_NOTE_REQUESTS)]  # I1
    notes = [
        services.request_credit_note(invoice, by=support, amount=amount, reason=reason, as_of=today)
        for invoice, (amount, reason) in zip(invoices, CREDIT_NOTE_REQUESTS, strict=False)
    ]
    if notes:
        services.decide_credit_note(
            notes[-1], by=finance, approve=True, as_of=today, note_text="Refunded to the card."
        )
    return bool(notes)
