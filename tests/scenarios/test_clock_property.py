"""D4 as a property: for random scenarios built from a seed, the billing clock run every day and
the clock run as seldom as D2 lets it give the same invoices (every amount, line and tax note),
invoice numbers, credit notes, strikes, locks, subscriptions, redemptions and discounts, credit
ledger, grants, certificates, emails, statuses and refusals, whatever the order of the changes
within a day.

Each seed makes a handful of workspaces (Free or Team, trial with or without a card, monthly or
annual, taxed in various places) and dated changes on random days: plan and interval changes,
cards added and removed, usage (some over the Free limit), coupons of every duration, credit
grants and approved startup applications, unlocks, a closure and its reopening, a business that
moves, exemption certificates, credit notes, tax rates and plan terms entered ahead of the day
they start. Both runs make the same changes, each before its day is processed (D1), in another
order within a day: the changes to one workspace keep their order (a cancellation after an
upgrade is not an upgrade after a cancellation); the workspaces', the rates' and the terms'
turns are shuffled. The catch-up's clock runs only when a change would otherwise be refused as
ahead of it (`ClockBehind`: past a month close it has not run, or numbering an invoice before
one it owes), so about once a month, over a month of changes made ahead of it.

Not compared: ids, which two orders of the same changes give out in two orders (what names a row
by its id, an email or a tax note, is compared by what the id stands for); and which of one
day's invoices gets which of that day's numbers (I1 numbers them in the order they are issued).
"""

import random
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.base import ContentFile

from billing import services
from billing.clock import last_processed_day
from billing.errors import BillingError, ClockBehind
from billing.models import (
    CreditNote,
    Invoice,
    LockEvent,
    OutboundEmail,
    Plan,
    Strike,
    Subscription,
    TaxExemption,
    Workspace,
    WorkspaceClosure,
)
from billing.months import month_start, next_month
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import CreditGrant, CreditLedgerEntry, DiscountApplication, Redemption
from startups import services as startups
from startups.models import StartupApplication
from tests.billing.factories import workspace
from tests.coupons.factories import PDF

from .clock import daily_and_catch_up

# Where a seed's days start: a plain year, and the calendar's edges (the leap day 29 February
# 2028, its anniversary in a year without one, a year's end).
STARTS = [date(2026, 1, 1), date(2027, 12, 20), date(2028, 2, 10), date(2029, 1, 25)]
SEEDS = range(20)
# How many days a scenario runs (two or three month closes), and the chance, each day, of a
# change to a workspace besides its usage. Widen both to look further (each seed's days cost
# the most: both runs process every one).
DAYS = (50, 85)
CHANGE_RATE = 0.12

# Business locations (X1) and whether tax applies there (X2's seeded rates): Oregon and Montana
# have no sales tax; the rest do.
LOCATIONS = [
    ("US", "OR"),
    ("US", "CA"),
    ("US", "NY"),
    ("US", "TX"),
    ("US", "MT"),
    ("DE", ""),
    ("GB", ""),
    ("CA", "ON"),
    ("AU", ""),
]
MTUS = [0, 400, 999, 1_000, 1_001, 2_500, 9_000, 10_000, 10_001, 12_345, 30_000]

# New terms of a plan (P1, P2, as finance may date them ahead): (plan, field, value).
TERMS = [
    ("team", "monthly_price", "150.00"),
    ("team", "annual_price", "1200.00"),
    ("team", "included_mtus", 5_000),
    ("team", "overage_rate", "0.02"),
    ("team", "trial_days", 7),
    ("free", "included_mtus", 2_500),
]

# (code, create_coupon's keywords); the follow-up first, so the coupon naming it finds it.
COUPONS = [
    ("AFTER5", {"percent_off": "5", "duration": "forever"}),
    ("ONCE20", {"percent_off": "20", "duration": "once"}),
    ("REP3HALF", {"percent_off": "50", "duration": "repeating", "duration_months": 3}),
    (
        "REP2FOLLOW",
        {"percent_off": "15", "duration": "repeating", "duration_months": 2, "follow_up": "AFTER5"},
    ),
    ("AMT30FOREVER", {"amount_off": "30", "duration": "forever"}),
    ("AMT200ONCE", {"amount_off": "200", "duration": "once"}),
    ("MONTHLY10", {"percent_off": "10", "duration": "forever", "intervals": ("monthly",)}),
    ("ANNUAL25", {"percent_off": "25", "duration": "once", "intervals": ("annual",)}),
    ("FULLONCE", {"percent_off": "100", "duration": "once"}),
]


class Scenario:
    """What one seed makes: the workspaces' sign-ups and every dated change, as data, so both
    runs make the same changes; `order(day, rng)` is the order one run makes a day's in."""

    def __init__(self, seed):
        rng = random.Random(seed)
        self.start = STARTS[seed % len(STARTS)]
        self.end = self.start + timedelta(days=rng.randint(*DAYS))
        self.signups = []  # (key, created_on, kwargs)
        self.changes = {}  # day -> {lane: [(label, args)]}
        self.applications = []  # keys of workspaces that apply on the first day
        for n in range(rng.randint(3, 6)):
            key = f"ws{n}"
            plan = rng.choice(["free", "team", "team"])
            country, region = rng.choice(LOCATIONS)
            kwargs = {
                "plan": plan,
                "interval": rng.choice(["monthly", "monthly", "annual"]),
                "card": rng.random() < 0.75,
                "business_country": country,
                "business_region": region,
            }
            created_on = self.start + timedelta(days=0 if n < 2 else rng.randint(0, 25))
            self.signups.append((key, created_on, kwargs))
            if created_on == self.start and rng.random() < 0.4:
                self.applications.append(key)
            self._plan_changes(rng, key, created_on)
        for _ in range(rng.randint(0, 3)):
            day = self.start + timedelta(days=rng.randint(1, (self.end - self.start).days))
            country, region = rng.choice(LOCATIONS)
            rate = rng.choice(["0", "3.5", "8.875", "12", "21"])
            starts = day + timedelta(days=rng.randint(1, 45))
            self._add(day, f"tax-{day}-{country}-{region}", "tax", (country, region, rate, starts))
        # New plan terms dated ahead (a plan's terms are entered in date order).
        effective = {"team": self.start, "free": self.start}
        for n in range(rng.randint(0, 2)):
            plan, field, value = rng.choice(TERMS)
            day = effective[plan] + timedelta(days=rng.randint(1, 40))
            effective[plan] = day + timedelta(days=rng.randint(1, 30))
            if effective[plan] <= self.end:
                self._add(day, f"terms-{n}", "terms", (plan, field, value, effective[plan]))

    def _add(self, day, lane, label, args=()):
        self.changes.setdefault(day, {}).setdefault(lane, []).append((label, args))

    def _plan_changes(self, rng, key, created_on):
        day = created_on + timedelta(days=1)
        closed = False
        while day <= self.end:
            # Usage for the month, and some days for the month before (before its close).
            if rng.random() < 0.12:
                month = month_start(day if rng.random() < 0.8 else day - timedelta(days=1))
                self._add(day, key, "usage", (month, rng.choice(MTUS)))
            if rng.random() < CHANGE_RATE:
                label = rng.choices(
                    [
                        "team",
                        "free",
                        "interval",
                        "add_card",
                        "remove_card",
                        "coupon",
                        "remove_discount",
                        "grant",
                        "approve",
                        "unlock",
                        "close",
                        "move",
                        "refund",
                        "certificate",
                    ],
                    weights=[8, 3, 4, 6, 2, 6, 2, 2, 2, 3, 1, 2, 3, 2],
                )[0]
                args, then = (), None
                if label == "team":
                    args = (rng.choice(["monthly", "monthly", "annual"]),)
                elif label == "interval":
                    args = (rng.choice(["monthly", "annual"]),)
                elif label == "coupon":
                    args = (rng.choice([c for c, _ in COUPONS]),)
                elif label == "grant":
                    args = (rng.choice(["100", "250.50", "5000"]),)
                elif label == "move":
                    args = rng.choice(LOCATIONS)
                elif label == "certificate":
                    region = rng.choice(["CA", "NY", "TX"])
                    args = (region, self.start + timedelta(days=rng.randint(-30, 60)))
                    then = (day + timedelta(days=rng.randint(0, 20)), "decide_certificate")
                elif label == "close":
                    then = (day + timedelta(days=rng.randint(0, 30)), "reopen")
                if not (label == "close" and closed):  # one closure a workspace
                    closed = closed or label == "close"
                    self._add(day, key, label, args)
                    if then and then[0] <= self.end and rng.random() < 0.8:
                        self._add(*then, (rng.random() < 0.8,))
            # Two changes to one workspace on one day, now and then.
            if rng.random() < 0.85:
                day += timedelta(days=1)

    def order(self, day, rng):
        """The day's changes, each lane's in its order, the lanes' turns shuffled."""
        lanes = {lane: list(items) for lane, items in self.changes.get(day, {}).items()}
        done = []
        while lanes:
            lane = rng.choice(sorted(lanes))
            label, args = lanes[lane].pop(0)
            done.append((lane, label, args))
            if not lanes[lane]:
                del lanes[lane]
        return done


def _run(scenario, *, daily, order_seed, capture, support, reviewer, finance):
    """One run of the scenario: the changes made each day before it is processed, in the order
    `order_seed` shuffles them; returns the outcome and the refusals."""
    rng = random.Random(order_seed)
    for code, kwargs in COUPONS:
        coupons.create_coupon(code, code.title(), "promotion", **kwargs)
    ws, apps, certificates, refusals = {}, {}, {}, []
    signups_on = {}
    for key, created_on, kwargs in scenario.signups:
        signups_on.setdefault(created_on, []).append((key, kwargs))

    def act(day, lane, label, args):
        w = ws.get(lane)
        if label == "usage":
            services.record_usage(w, month=args[0], mtus=args[1])
        elif label == "team":
            services.change_to_team(w, interval=args[0], as_of=day, by=support, reason="Upgrade")
        elif label == "free":
            services.change_to_free(w, as_of=day, by=support, reason="Downgrade")
        elif label == "interval":
            services.change_interval(w, interval=args[0], as_of=day, by=support, reason="Asked")
        elif label == "add_card":
            services.add_payment_method(w, as_of=day, brand="Visa", last4="4242")
        elif label == "remove_card":
            services.remove_payment_method(w, as_of=day)
        elif label == "coupon":
            coupons.redeem_coupon(w, args[0], by=support, as_of=day, reason="Retention")
        elif label == "remove_discount":
            coupons.remove_discount(w, by=support, reason="Ended by support", as_of=day)
        elif label == "grant":
            coupons.grant_credits(w, amount=Decimal(args[0]), year=1, by=support, as_of=day)
        elif label == "approve":
            application = apps.get(lane)
            if application is None:
                return
            startups.approve_application(
                application, by=reviewer, as_of=day, credits_scope_confirmed=True
            )
        elif label == "unlock":
            services.unlock_workspace(w, by=support, reason="Asked nicely", as_of=day)
        elif label == "close":
            services.close_workspace(w, by=support, reason="Asked to", as_of=day)
        elif label == "reopen":
            services.reopen_workspace(w, by=support, reason="Came back", as_of=day)
        elif label == "move":
            w = Workspace.objects.get(pk=w.pk)
            services.update_workspace(
                w,
                by=support,
                reason="Business moved",
                name=w.name,
                business_country=args[0],
                business_region=args[1],
                billing_email=w.billing_email,
                as_of=day,
            )
        elif label == "refund":
            # K3: on an invoice both runs have issued by now (the catch-up's clock has run
            # through the month's 1st).
            invoice = (
                w.invoices.filter(issue_date__lte=month_start(day - timedelta(days=1)))
                .order_by("-issue_date", "-number")
                .first()
            )
            if invoice is not None:
                note = services.request_credit_note(
                    invoice,
                    by=support,
                    amount=min(invoice.total, Decimal("10.00")),
                    reason="Goodwill",
                    as_of=day,
                )
                services.decide_credit_note(note, by=finance, approve=True, as_of=day)
        elif label == "certificate":
            certificates[lane] = services.submit_exemption(
                w,
                region=args[0],
                reason="resale",
                document=ContentFile(PDF, name="c.pdf"),
                valid_from=args[1],
                as_of=day,
            )
        elif label == "decide_certificate":
            certificate = certificates.pop(lane, None)  # none: its submission was refused
            if certificate is not None and args[0]:
                services.approve_exemption(certificate, by=finance, as_of=day)
            elif certificate is not None:
                services.reject_exemption(certificate, by=finance, reason="Unreadable", as_of=day)
        elif label == "terms":
            plan, field, value, effective_on = args
            services.update_plan(
                Plan.objects.get(code=plan),
                by=finance,
                reason="Repriced",
                effective_on=effective_on,
                **{field: value},
            )
        elif label == "tax":
            country, region, rate, starts = args
            services.set_tax_rate(
                country, region=region, rate=rate, name="Changed", valid_from=starts
            )
        else:  # pragma: no cover
            raise AssertionError(label)

    def actions(day):
        for key, kwargs in signups_on.get(day, []):
            ws[key] = workspace(
                slug=key, name=key, billing_email=f"{key}@example.com", as_of=day, **kwargs
            )
            if day == scenario.start and key in scenario.applications:
                apps[key] = startups.submit_application(
                    f"Company {key}",
                    website=f"https://{key}.example.com",
                    contact_name="Founder",
                    contact_email=f"founder@{key}.example.com",
                    # E1: incorporated well within two years of applying.
                    incorporation_date=scenario.start - timedelta(days=200),
                    total_funding=Decimal("1500000.00"),
                    country="DE",
                    workspace=ws[key],
                    as_of=day,
                )
        for lane, label, args in scenario.order(day, rng):
            if lane in ws or label in ("tax", "terms"):
                try:
                    try:
                        act(day, lane, label, args)
                    except ClockBehind:
                        if daily:
                            raise
                        # I1, D4: the change would number an invoice ahead of one the
                        # lagging clock owes: the clock runs through the day before, as the
                        # refusal asks, and the change is made again.
                        services.run_billing(as_of=day - timedelta(days=1))
                        act(day, lane, label, args)
                except BillingError as exc:
                    message = _certificates_named(str(exc))
                    refusals.append((day, lane, label, type(exc).__name__, message))

    with capture(execute=True):
        day = scenario.start
        while day <= scenario.end:
            if not daily and (_close_due_before(day, scenario.start) or rng.random() < 0.03):
                services.run_billing(as_of=day - timedelta(days=1))
            actions(day)
            if daily:
                services.run_billing(as_of=day)
            day += timedelta(days=1)
        services.run_billing(as_of=scenario.end)
    outcome = _outcome(ws, scenario.start, scenario.end)
    # Sorted by what was refused, not by when: the two runs make a day's changes in two orders.
    outcome["refusals"] = sorted(refusals, key=str)
    return outcome


def _close_due_before(day, start):
    """The catch-up run's clock lags as far as D2 lets it: until a change is dated past a month
    close it has not run (`billing.clock.refuse_processed`), so it runs about once a month,
    through the 1st, over a month of changes made ahead of it (and now and then on another
    day)."""
    last = last_processed_day() or start - timedelta(days=1)
    return next_month(last) < day


def _invoice_key(invoice):
    return (invoice.workspace.slug, invoice.kind, invoice.issue_date, invoice.period_start)


def _certificates_named(text):
    """`text` with each certificate it names by id ("certificate #3", "Certificate #3") named
    by what it is."""

    def named(match):
        certificate = TaxExemption.objects.select_related("workspace").get(pk=match[1])
        return f"{certificate.workspace.slug}'s {certificate.region} certificate from " + str(
            certificate.valid_from
        )

    return re.sub(r"[Cc]ertificate #(\d+)", named, text)


def _numbers_by_issue_date():
    numbers = {}
    for issue_date, number in Invoice.objects.values_list("issue_date", "number"):
        numbers.setdefault(issue_date, []).append(number)
    return numbers


def _email_subject(key):
    """An email's object key by what its id stands for."""
    kind, _, pk = key.partition(":")
    if kind == "lock":
        event = LockEvent.objects.select_related("workspace").get(pk=pk)
        return ("lock", event.workspace.slug, event.on, event.to_lock, event.cause)
    if kind == "sub":
        sub = Subscription.objects.select_related("workspace", "plan").get(pk=pk)
        return ("sub", sub.workspace.slug, sub.started_on, sub.plan.code)
    if kind == "closure":
        closure = WorkspaceClosure.objects.select_related("workspace").get(pk=pk)
        return ("closure", closure.workspace.slug, closure.closed_on)
    if kind == "application":
        return ("application", StartupApplication.objects.get(pk=pk).company_name)
    raise AssertionError(f"an email about {key}: say what its id stands for")


def _rows(rows):
    """Rows in an order that does not depend on the order they were written in."""
    return sorted(rows, key=repr)


def _outcome(ws, start, end):
    invoices = Invoice.objects.select_related("workspace").prefetch_related("lines")
    days = [start + timedelta(days=n) for n in range(0, (end - start).days + 1, 10)] + [end]
    return {
        "invoices": _rows(
            (
                *_invoice_key(i),
                i.period_end,
                i.status,
                i.plan_code,
                i.interval,
                i.subtotal,
                i.discount,
                i.credits,
                i.tax,
                i.total,
                i.tax_country,
                i.tax_region,
                i.tax_rate,
                _certificates_named(i.tax_note),
                i.overage_mtus,
                tuple(
                    (line.position, line.kind, line.description, line.quantity, line.amount)
                    for line in sorted(i.lines.all(), key=lambda line: line.position)
                ),
            )
            for i in invoices
        ),
        # I1: numbers follow issue dates; those of one day go in the order of its changes.
        "numbers": _rows(
            (issue_date, sorted(numbers))
            for issue_date, numbers in _numbers_by_issue_date().items()
        ),
        "credit_notes": _rows(
            (_invoice_key(n.invoice), n.amount, n.tax, n.status)
            for n in CreditNote.objects.select_related("invoice__workspace")
        ),
        "certificates": _rows(
            TaxExemption.objects.values_list("workspace__slug", "region", "status", "decided_on")
        ),
        "strikes": _rows(Strike.objects.values_list("workspace__slug", "month", "mtus")),
        "lock_events": _rows(
            LockEvent.objects.values_list(
                "workspace__slug", "on", "month", "from_lock", "to_lock", "cause", "reason"
            )
        ),
        "workspaces": _rows(
            Workspace.objects.values_list(
                "slug", "lock", "data_flow", "closed_on", "startup_member", "lock_changed_on"
            )
        ),
        "subscriptions": _rows(
            Subscription.objects.values_list(
                "workspace__slug",
                "plan__code",
                "interval",
                "started_on",
                "ended_on",
                "end_reason",
                "trial_end",
                "trial_outcome",
                "paid_from",
                "term_start",
                "term_end",
                "cancel_at_term_end",
                "cancelled_on",
                "cancel_withdrawn_on",
                "switch_to_monthly_at_term_end",
                "trial_reminder_sent_on",
            )
        ),
        "redemptions": _rows(
            Redemption.objects.values_list(
                "workspace__slug",
                "coupon__code",
                "redeemed_on",
                "started_month",
                "runs_out_on",
                "status",
                "ended_on",
                "is_follow_up",
            )
        ),
        "discounts": _rows(
            (_invoice_key(d.invoice), d.redemption.coupon.code, d.amount)
            for d in DiscountApplication.objects.select_related(
                "invoice__workspace", "redemption__coupon"
            )
        ),
        "grants": _rows(
            CreditGrant.objects.values_list(
                "workspace__slug",
                "year",
                "amount",
                "remaining",
                "valid_from",
                "valid_until",
                "lapsed_on",
            )
        ),
        "ledger": _rows(
            (
                e.grant.workspace.slug,
                e.grant.year,
                e.kind,
                e.on,
                e.amount,
                _invoice_key(e.invoice) if e.invoice else None,
            )
            for e in CreditLedgerEntry.objects.select_related("grant__workspace", "invoice")
        ),
        "outbox": _rows(
            (e.kind, e.to, _email_subject(e.object_key), e.subject, e.status)
            for e in OutboundEmail.objects.all()
        ),
        "mail": _rows((m.to[0], m.subject) for m in mail.outbox),
        "statuses": {
            (key, day): workspace_status(w, as_of=day)
            for key, w in ws.items()
            for day in days
            if day >= w.created_on
        },
    }


def check_seed(seed, capture, support, reviewer, finance):
    scenario = Scenario(seed)

    def run(daily):
        return _run(
            scenario,
            daily=daily,
            order_seed=f"{seed}-{daily}",
            capture=capture,
            support=support,
            reviewer=reviewer,
            finance=finance,
        )

    daily, catch_up = daily_and_catch_up(run)
    for key in daily:
        assert daily[key] == catch_up[key], (seed, key)
    return daily


@pytest.mark.parametrize("seed", SEEDS)
def test_d4_random_changes_day_by_day_equal_one_catch_up(
    db, django_capture_on_commit_callbacks, support, reviewer, finance, seed
):
    check_seed(seed, django_capture_on_commit_callbacks, support, reviewer, finance)
