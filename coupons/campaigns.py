"""Promotion campaigns (SPEC G1–G3): "customers will be notified directly if they are eligible
for a special promotion".

A campaign names a promotion coupon, a message and an audience (filters over workspaces). Before
launch staff see its reach, a sample and the workspaces the coupon would refuse, counted by
reason: C2's own decision (`coupons.redemptions.refusal`, which `redeem_coupon` takes too) on
the facts read in SQL for the whole audience at once, grouped (`judge_audience`), never a copy of
it. D4: a workspace the billing clock still owes a trial or term end (or a discount's end)
is judged, filters and all, as the clock will leave it (caught up as `redeem_coupon` catches
it up, rolled back); where `redeem_coupon` refuses because of the clock (a day processed, a
month close not run, a catch-up that must wait), the preview and the launch refuse too.
Launching judges the audience again and records each workspace reached once (INSERT …
SELECT, a unique constraint) and hands the emails to the workers in batches; each batch
queues its emails in the outbox under its rows' locks, so a relaunch or a retried task sends
nobody a second email. Coupons stay staff-applied (C2): a redemption for a notified workspace is
attributed to the campaign (`redeem_coupon`).

A draft can be edited (`update_campaign`, with a reason); a launched campaign cannot. The
campaign page's preview is cached (`cached_audience_preview`) under a key that changes with the
filters and the data. The workers get the batches through `coupons.tasks`, which registers its
dispatcher: this module never imports the tasks.
"""

import hashlib
import logging
import operator
from collections import Counter
from datetime import date, datetime, timedelta
from functools import reduce
from typing import NamedTuple

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django_countries import countries

from billing.audit import require_reason, save_with_reason
from billing.bulk_rows import id_in
from billing.clock import last_processed_day, refuse_processed
from billing.contact_details import hidden_character
from billing.emails import EmailSpec, queue_emails
from billing.errors import BillingError, ClockBehind, refuse_dated_before, refuse_problems
from billing.formatting import billed, day
from billing.invoicing import placeholder_numbers
from billing.models import (
    BillingClock,
    Interval,
    Invoice,
    Lock,
    LockEvent,
    MonthClose,
    OutboundEmail,
    Plan,
    Subscription,
    Usage,
    Workspace,
)
from billing.months import add_months, day_problem, month_start, parse_day
from billing.pricing import ZERO, round_cents
from billing.tax import RegionNotACode
from billing.turns import take_turns
from billing.usage_import import MAX_MTUS
from coupons.errors import CouponError, CouponRefused
from coupons.models import (
    Campaign,
    CampaignRecipient,
    Coupon,
    CreditGrant,
    DiscountApplication,
    NonprofitProof,
    Redemption,
)
from coupons.redemptions import (
    Standing,
    catch_up,
    check_coupon,
    ran_out,
    refusal,
    standing_expressions,
    team_on,
)

AUDIENCE_FILTERS = (
    "plan",
    "interval",
    "country",
    "lock",
    "startup_member",
    "created_before",
    "created_after",
    "min_mtus",
    "max_mtus",
)
# D4: the filters a catch-up may move (T4, K2, K4: a trial or term end changes the plan or the
# interval; F7: a trial ended unpaid puts a lock back). The others read rows the clock's trial
# and term ends and C5's follow-ups never write (country, sign-up, usage, grants).
MOVED_BY_A_CATCH_UP = ("plan", "interval", "lock")
# G1: why the coupon would refuse a workspace, as staff read it (C2's reasons, and W1's).
WORKSPACE_CLOSED = "workspace_closed"
# X1: what the clock owes it cannot be issued (no tax without a region code): `redeem_coupon`,
# which issues it first, refuses it alone, and the clock skips it until it is corrected.
REGION_NOT_A_CODE = "region_not_a_code"
REFUSAL_LABELS = {
    CouponRefused.INACTIVE: "the coupon is inactive",
    CouponRefused.PAST_REDEEM_BY: "the coupon is past its redeem-by date",
    CouponRefused.MAXIMUM_REACHED: "the coupon reached its maximum redemptions",
    CouponRefused.ALREADY_RECEIVED: "already received this coupon",
    CouponRefused.STARTUP_AFTER_COUPON: "received a coupon before (startup program)",
    CouponRefused.INTERVAL_NOT_COVERED: "on a Team interval the coupon does not cover",
    CouponRefused.DISCOUNT_ACTIVE: "a discount is already active",
    CouponRefused.NO_NONPROFIT_PROOF: "no approved non-profit proof",
    CouponRefused.INVOICED_ALREADY: "an invoice dated today or later was issued already",
    CouponRefused.OUT_OF_DATE_ORDER: "a change dated later was entered already",
    WORKSPACE_CLOSED: "the workspace is closed",
    REGION_NOT_A_CODE: "its business region is not a code tax depends on (X1): correct it first",
}
# Workspaces the clock owes an event judged per round (after a catch-up, rolled back): each
# round costs a fixed number of queries.
CHECK_CHUNK = 2_000
# Emails per worker task (RECIPES: Celery tasks in chunks of 100 run ~20x faster than single).
CAMPAIGN_BATCH = 500
# G1: an email's message, about four pages of text; the help centre says the rest.
MESSAGE_MAX_LENGTH = 10_000
SAMPLE_SIZE = 10

logger = logging.getLogger(__name__)


# --- The audience (G1) ------------------------------------------------------------------------


def _day(value, label, problems) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        parsed = value
    else:
        try:
            parsed = parse_day(str(value))
        except ValueError:
            problems.append(f"“{value}” is not a date ({label}): use YYYY-MM-DD.")
            return None
    if problem := day_problem(parsed, f"The “{label}” day"):  # I6, as a coupon's dates
        problems.append(f"{problem}.")
        return None
    return parsed


def _count(value, label, problems):
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        number = -1
    if isinstance(value, bool) or number < 0 or str(number) != str(value).strip():
        problems.append(f"{label} must be a whole number of MTUs, at least 0, not “{value}”.")
        return None
    if number > MAX_MTUS:  # I6: no month can report more, so a bound above it is a typo
        problems.append(
            f"{label} must be at most {MAX_MTUS:,} (the most a month can report), not {number:,}."
        )
        return None
    return number


def clean_audience(audience: dict | None) -> tuple[dict, list[str]]:
    """The audience's filters, checked and in the form they are stored (dates ISO); empty
    filters dropped. Returns (filters, problems). A filter no workspace could pass is a
    problem, not an empty audience: an interval with the Free plan (only Team has one), a
    range of sign-up days or of MTUs that ends before it starts; so are days outside the
    years billed and MTUs above what a month can report (I6)."""
    audience = dict(audience or {})
    problems = []
    unknown = set(audience) - set(AUDIENCE_FILTERS)
    if unknown:
        problems.append(f"Unknown audience filters: {', '.join(sorted(unknown))}.")
    clean = {}
    if plan := audience.get("plan"):
        if plan not in Plan.Code.values:
            problems.append(f"“{plan}” is not a plan: use free or team.")
        clean["plan"] = plan
    if interval := audience.get("interval"):
        if interval not in Interval.values:
            problems.append(f"“{interval}” is not a billing interval: use monthly or annual.")
        clean["interval"] = interval
        if plan == Plan.Code.FREE:  # only Team is billed by an interval
            problems.append(
                f"A Free workspace has no billing interval: choose the Team plan for the "
                f"interval {interval}, or leave the interval empty."
            )
    if country := audience.get("country"):
        if str(country).upper() not in countries:
            problems.append(f"“{country}” is not an ISO 3166-1 country code.")
        clean["country"] = str(country).upper()
    if lock := audience.get("lock"):
        if lock not in Lock.values:
            problems.append(f"“{lock}” is not a lock level: use {', '.join(Lock.values)}.")
        clean["lock"] = lock
    member = audience.get("startup_member")
    if member not in (None, ""):
        if not isinstance(member, bool):
            problems.append("Program membership is yes or no.")
        clean["startup_member"] = bool(member)
    after = _day(audience.get("created_after"), "created after", problems)
    before = _day(audience.get("created_before"), "created before", problems)
    if after is not None and before is not None and before - after <= timedelta(days=1):
        # `audience_workspaces` reads both strictly: created on a day after one, before the other
        problems.append(
            f"Created after {after} and before {before}: no day lies between the two, so no "
            "workspace could match."
        )
    for key, value in (("created_before", before), ("created_after", after)):
        if value is not None:
            clean[key] = value.isoformat()
    for key, label in (("min_mtus", "The least MTUs"), ("max_mtus", "The most MTUs")):
        if (number := _count(audience.get(key), label, problems)) is not None:
            clean[key] = number
    if clean.get("min_mtus", 0) > clean.get("max_mtus", float("inf")):
        problems.append("The MTU range ends before it starts.")
    return clean, problems


def describe_audience(audience: dict) -> str:
    """The filters in words, for the campaign page."""
    if not audience:
        return "Every workspace (no filter)"
    words = []
    if plan := audience.get("plan"):
        words.append(f"on {plan.capitalize()}")
    if interval := audience.get("interval"):
        words.append(billed(interval))
    if country := audience.get("country"):
        words.append(f"in {countries.name(country) or country}")
    if lock := audience.get("lock"):
        words.append(Lock(lock).label.lower())
    if "startup_member" in audience:
        words.append("startup-program members" if audience["startup_member"] else "not members")
    if after := audience.get("created_after"):
        words.append(f"created after {after}")
    if before := audience.get("created_before"):
        words.append(f"created before {before}")
    low, high = audience.get("min_mtus"), audience.get("max_mtus")
    if low is not None or high is not None:
        span = f"{low or 0:,} to {high:,}" if high is not None else f"at least {low:,}"
        words.append(f"{span} MTUs in the last closed month")
    return "Workspaces " + ", ".join(words)


def mtu_month(as_of: date) -> date:
    """The month the MTU filter reads: the last month whose close has finished before
    `as_of`, or the month before `as_of` when none has."""
    closed = (
        MonthClose.objects.filter(finished=True, month__lt=month_start(as_of))
        .order_by("-month")
        .values_list("month", flat=True)
        .first()
    )
    return closed or add_months(month_start(as_of), -1)


def audience_workspaces(audience: dict, *, as_of: date):
    """G1: the workspaces that match the filters on `as_of`, read as things stood that day
    (D3: plan, interval, lock and program membership from the dated history; K2, K4: an annual
    term ending that day the clock has yet to end is Free or monthly, as C2 reads it,
    `team_on`). One query."""
    workspaces = Workspace.objects.filter(created_on__lte=as_of)
    team = team_on(as_of)
    if plan := audience.get("plan"):
        current = Subscription.objects.filter(
            workspace=OuterRef("pk"), started_on__lte=as_of
        ).exclude(ended_on__lte=as_of)
        on_team = Q(pk__in=team.values("workspace_id"))
        workspaces = workspaces.filter(Exists(current)).filter(
            on_team if plan == Plan.Code.TEAM else ~on_team
        )
    if interval := audience.get("interval"):
        workspaces = workspaces.filter(
            pk__in=team.filter(interval_then=interval).values("workspace_id")
        )
    if country := audience.get("country"):
        workspaces = workspaces.filter(business_country=country)
    if lock := audience.get("lock"):
        # `billing.selectors.lock_on`, for a whole set: the last change on or before `as_of`;
        # unlocked when every change came later; the row's level when none was recorded.
        events = LockEvent.objects.filter(workspace=OuterRef("pk"))
        last = events.filter(on__lte=as_of).order_by("-on", "-id").values("to_lock")[:1]
        never_before = Case(
            When(Exists(events), then=Value(Lock.UNLOCKED)),
            default=F("lock"),
            output_field=CharField(),
        )
        workspaces = workspaces.annotate(
            lock_then=Coalesce(Subquery(last), never_before, output_field=CharField())
        ).filter(lock_then=lock)
    if "startup_member" in audience:
        member = Exists(CreditGrant.objects.valid_on(as_of).filter(workspace=OuterRef("pk")))
        workspaces = workspaces.filter(member if audience["startup_member"] else ~member)
    if before := audience.get("created_before"):
        workspaces = workspaces.filter(created_on__lt=before)
    if after := audience.get("created_after"):
        workspaces = workspaces.filter(created_on__gt=after)
    if "min_mtus" in audience or "max_mtus" in audience:
        usage = Usage.objects.filter(workspace=OuterRef("pk"), month=mtu_month(as_of))
        workspaces = workspaces.annotate(
            month_mtus=Coalesce(Subquery(usage.values("mtus")[:1]), Value(0))
        )
        if "min_mtus" in audience:
            workspaces = workspaces.filter(month_mtus__gte=audience["min_mtus"])
        if "max_mtus" in audience:
            workspaces = workspaces.filter(month_mtus__lte=audience["max_mtus"])
    return workspaces


def _owed_events(as_of: date):
    """The running subscriptions with a trial or term end dated before `as_of` that a lagging
    clock has not applied yet (a trial that ended is Free now)."""
    before = as_of - timedelta(days=1)
    return Subscription.objects.filter(ended_on=None).filter(
        Q(trial_outcome=Subscription.TrialOutcome.RUNNING, trial_end__lte=before)
        | Q(interval=Interval.ANNUAL, term_end__lte=before)
    )


def _owing(as_of: date) -> Q:
    """The workspaces whose C2 facts `redeem_coupon` would see moved by what it catches up
    first on `as_of`: a trial or term end the clock owes (`_owed_events`), or a discount that
    ran out by then and has yet to give way to its follow-up (C5; on the 1st the clock has yet
    to write those due that day). None while the clock keeps up, a few when it lags."""
    return Q(pk__in=_owed_events(as_of).values("workspace_id")) | Q(
        pk__in=ran_out(as_of).values("workspace_id")
    )


def _last_owed_first(workspaces: QuerySet, as_of: date) -> list[int]:
    """The ids of `workspaces` (each owed something, `_owing`) in the clock's order reversed:
    the day of the trial or term end owed, then the id (the clock goes by date, then
    workspace); those owed only a discount's end come last. Caught up in this order, each
    sees the others the clock takes before it still owed, as `redeem_coupon` sees them when it
    catches up that workspace alone (I1: an invoice of its numbered ahead of theirs waits)."""
    before = as_of - timedelta(days=1)
    due = {}
    rows = _owed_events(as_of).filter(workspace__in=workspaces.values("pk"))
    for workspace_id, outcome, trial_end, interval, term_end in rows.values_list(
        "workspace_id", "trial_outcome", "trial_end", "interval", "term_end"
    ):
        days = (
            trial_end if outcome == Subscription.TrialOutcome.RUNNING else None,
            term_end if interval == Interval.ANNUAL else None,
        )
        due[workspace_id] = min(day for day in days if day is not None and day <= before)
    ids = workspaces.values_list("pk", flat=True)
    return sorted(ids, key=lambda pk: (due.get(pk, date.min), pk), reverse=True)


def _caught_up_standings(
    workspace_ids: list[int], coupon: Coupon, as_of: date, notified: Q, audience: dict, what: str
):
    """([(id, notified, Standing)], [ids refused, X1]) of the workspaces among `workspace_ids`
    (each owed something by the clock, `_owing`; `_last_owed_first`) that match `audience`
    once caught up, judged as `redeem_coupon` judges them after catching them up
    (`catch_up`). D4: the filters too are read after the catch-up (a trial that ended unpaid
    is Free, with the lock it lifted put back). Written in a savepoint rolled back at once
    (invoices with placeholder numbers): nothing stays.

    A catch-up `redeem_coupon` would refuse (the clock owes another workspace's invoice,
    numbered first) refuses `what` with its reason: the audience cannot be told until the
    clock has run.

    X1: a workspace whose owed invoice cannot be taxed (its region is no code: the clock skips
    it, `redeem_coupon` refuses it) is not caught up; it is returned as refused with
    `REGION_NOT_A_CODE` when it matches `audience` as it stands, and the others are judged."""
    held = []
    with transaction.atomic():
        savepoint = transaction.savepoint()
        try:
            with placeholder_numbers(wait_for_the_clock=True):
                for workspace_id in workspace_ids:
                    workspace = Workspace.objects.for_change(Workspace(pk=workspace_id))
                    try:
                        with transaction.atomic():  # its own catch-up undone when refused
                            catch_up(workspace, as_of)
                    except RegionNotACode:
                        held.append(workspace_id)
                    except BillingError as exc:
                        error = ClockBehind if isinstance(exc, ClockBehind) else BillingError
                        raise error(
                            f"{what} on {day(as_of)} must wait: a coupon for {workspace.name} "
                            f"would wait too. {exc}"
                        ) from exc
            judged = [pk for pk in workspace_ids if pk not in held]
            rows = (
                audience_workspaces(audience, as_of=as_of)
                .filter(id_in("pk", judged))
                .annotate(notified=ExpressionWrapper(notified, BooleanField()))
                .annotate(**standing_expressions(coupon, as_of=as_of))
                .values_list("pk", "notified", *Standing._fields)
            )
            standings = [(pk, was_notified, Standing(*facts)) for pk, was_notified, *facts in rows]
            refused = []
            if held:
                matching = audience_workspaces(audience, as_of=as_of).filter(id_in("pk", held))
                refused = list(matching.values_list("pk", flat=True))
            return standings, refused
        finally:
            transaction.savepoint_rollback(savepoint)


def _refused_by_coupon(coupon: Coupon, as_of: date) -> str | None:
    """C2's reason to refuse `coupon` to every workspace alike on `as_of` (switched off, used
    up, past its redeem-by day: `check_coupon`), or None; the launch and the send-time check
    both ask it before judging each workspace's standing (`refusal`)."""
    try:
        check_coupon(coupon, as_of=as_of)
    except CouponRefused as exc:
        return exc.reason
    return None


class JudgedAudience(NamedTuple):
    """G1: a campaign's audience on a day, each workspace judged as `redeem_coupon` would."""

    reached: QuerySet  # the workspaces reached among those judged in SQL
    caught_up: list[tuple[int, bool]]  # (id, notified before) reached among the others
    refusals: Counter  # {refusal reason: how many left out}
    reach: int
    new: int  # reached and not notified by the campaign before


def judge_audience(campaign: Campaign, as_of: date, *, what: str = "") -> JudgedAudience:
    """G1: the workspaces matching the campaign's filters on `as_of`, less those the coupon
    would refuse (C2's `refusal`, nothing written) or that are closed (W1), counted by reason.

    Set-based: the audience is judged in SQL, grouped by what C2 decides on (`Standing`), so
    it costs the same few queries and reads a handful of rows for 10 workspaces or 100,000; the
    reached ones stay a queryset. Only the few the clock owes an event (`_owing`) are read one
    by one, filters and all, after catching them up as `redeem_coupon` does (D4: what a
    lagging clock has yet to do does not change the audience).

    D2, D4: refused (`what`, e.g. "Launching …", names it) where `redeem_coupon` refuses
    because of the clock: a day it has processed, a month close it has yet to run before
    `as_of` (the last closed month's MTUs, the closing month's invoices), or a catch-up that
    must wait for it."""
    what = what or f"The audience of the campaign {campaign.name}"
    refuse_processed(as_of, what)
    coupon = Coupon.objects.get(pk=campaign.coupon_id)
    refused_by_coupon = _refused_by_coupon(coupon, as_of)

    def verdict(closed: bool, standing: Standing) -> str | None:
        if closed:
            return WORKSPACE_CLOSED
        return refused_by_coupon or refusal(coupon, standing)

    audience = audience_workspaces(campaign.audience, as_of=as_of)
    notified = Q(pk__in=campaign.recipients.values("workspace_id"))
    owing = Q(closed_on=None) & _owing(as_of)
    settled = audience.exclude(owing).annotate(
        closed=ExpressionWrapper(Q(closed_on__isnull=False), BooleanField()),
        notified=ExpressionWrapper(notified, BooleanField()),
        **standing_expressions(coupon, as_of=as_of),
    )
    refusals, reach, new, passing = Counter(), 0, 0, set()
    groups = settled.values("closed", "notified", *Standing._fields).annotate(n=Count("pk"))
    for group in groups.order_by():
        standing = Standing(*(group[field] for field in Standing._fields))
        if reason := verdict(group["closed"], standing):
            refusals[reason] += group["n"]
        else:
            passing.add(standing)
            reach += group["n"]
            new += 0 if group["notified"] else group["n"]
    reached = settled.none()
    if passing:
        alike = reduce(operator.or_, (Q(**standing._asdict()) for standing in passing))
        reached = settled.filter(alike, closed_on=None)

    # The owed ones whatever the filters a catch-up may move say now: judged after it.
    unmoved = {k: v for k, v in campaign.audience.items() if k not in MOVED_BY_A_CATCH_UP}
    owed = _last_owed_first(audience_workspaces(unmoved, as_of=as_of).filter(owing), as_of)
    caught_up = []
    for start in range(0, len(owed), CHECK_CHUNK):
        chunk = owed[start : start + CHECK_CHUNK]
        judged, untaxable = _caught_up_standings(
            chunk, coupon, as_of, notified, campaign.audience, what
        )
        if untaxable:
            refusals[REGION_NOT_A_CODE] += len(untaxable)
        for pk, was_notified, standing in judged:
            if reason := verdict(False, standing):
                refusals[reason] += 1
            else:
                caught_up.append((pk, was_notified))
                reach += 1
                new += 0 if was_notified else 1
    return JudgedAudience(reached, caught_up, refusals, reach, new)


def campaign_audience(campaign: Campaign, as_of: date) -> tuple[list[int], dict[str, int]]:
    """G1: (the ids of the workspaces the campaign reaches on `as_of`, {refusal reason: how
    many left out}), from `judge_audience`."""
    judged = judge_audience(campaign, as_of)
    ids = [*judged.reached.values_list("pk", flat=True), *(pk for pk, _ in judged.caught_up)]
    return sorted(ids), dict(judged.refusals)


def _labelled(refusals: Counter) -> list[tuple[str, int]]:
    """The refusals by reason as staff read them, the most frequent first."""
    labelled = ((REFUSAL_LABELS.get(reason, reason), n) for reason, n in refusals.items())
    return sorted(labelled, key=lambda item: -item[1])


def _reaching_nobody(refusals: list[tuple[str, int]]) -> str:
    """Why an audience reaches nobody, from its refusals (`_labelled`)."""
    if not refusals:
        return "no workspace matches its filters"
    left_out = "; ".join(f"{label}: {n}" for label, n in refusals)
    return f"no workspace in its audience can take the coupon (left out: {left_out})"


MEND_BEFORE_LAUNCH = "Change the filters or the coupon first: a launched campaign cannot change."


def nothing_to_launch(campaign: Campaign, *, preview: dict, progress: dict) -> str:
    """G2: why launching now would email nobody (`preview`: `audience_preview`, `progress`:
    `campaign_progress`), for the launch page to say instead of offering the button; "" when
    it would email someone new or hand on emails still waiting for a worker. A draft's such
    launch `launch_campaign` refuses too (launched, the campaign could no longer be mended); a
    relaunch that adds nobody stays allowed there, as it changes nothing (G2)."""
    if preview["new"] or progress["waiting"]:
        return ""
    if campaign.status == Campaign.Status.DRAFT:
        return (
            f"Nobody would be emailed: {_reaching_nobody(preview['refusals'])}. "
            f"{MEND_BEFORE_LAUNCH}"
        )
    return (
        f"Nobody new would be emailed: the {progress['reached']:,} workspace(s) reached before "
        "were handed their email (nobody gets it twice) and no other workspace in the audience "
        "can take the coupon today. Launch again once new workspaces join the audience."
    )


class SampleWorkspace(NamedTuple):
    """A workspace of the preview's sample: what the page shows and links to."""

    pk: int
    name: str
    billing_email: str


def audience_preview(campaign: Campaign, *, as_of: date) -> dict:
    """What staff see before launch: the reach, a sample of those not reached yet (the first
    by name, at most `SAMPLE_SIZE`), and the refusals by reason. A fixed number of queries
    whatever the audience's size (`judge_audience`). Plain values only, so that
    `cached_audience_preview` can keep it."""
    judged = judge_audience(campaign, as_of)
    fields = SampleWorkspace._fields
    sample = list(
        judged.reached.filter(notified=False).order_by("name").values_list(*fields)[:SAMPLE_SIZE]
    )
    if newcomers := [pk for pk, was_notified in judged.caught_up if not was_notified]:
        sample += Workspace.objects.filter(pk__in=newcomers[:SAMPLE_SIZE]).values_list(*fields)
    coupon = campaign.coupon
    left = None
    if coupon.max_redemptions is not None:
        left = max(coupon.max_redemptions - coupon.times_redeemed, 0)
    return {
        "reach": judged.reach,
        "new": judged.new,
        "sample": [SampleWorkspace(*row) for row in sorted(sample, key=lambda row: row[1])][
            :SAMPLE_SIZE
        ],
        "refusals": _labelled(judged.refusals),
        "refused": sum(judged.refusals.values()),
        "redemptions_left": left,
    }


# How long the campaign page keeps an audience preview at most. Within it, a change of the
# campaign (filters, coupon, a launch) or of what the audience reads makes a new key at once.
PREVIEW_TIMEOUT = 300  # seconds


def _latest(model):
    """The newest history row of `model` (a subquery): it moves with every change kept."""
    return Subquery(model.history.model.objects.order_by("-history_id").values("history_id")[:1])


def preview_key(campaign: Campaign, *, as_of: date) -> str:
    """The cache key of a campaign's preview on `as_of`, read in one query: the campaign's
    filters, coupon and launches, the coupon's state, the newest change of every kind of row
    the audience reads (workspaces, subscriptions, locks, grants, redemptions, proofs, usage,
    invoices, month closes) and the clock's days. Any of them moving gives a new key; the old
    entry just expires."""
    latest = {
        "last_workspace": _latest(Workspace),
        "last_subscription": _latest(Subscription),
        "last_usage": _latest(Usage),
        "last_grant": _latest(CreditGrant),
        "last_redemption": _latest(Redemption),
        "last_proof": _latest(NonprofitProof),
        "last_coupon": _latest(Coupon),
        "last_lock": Subquery(LockEvent.objects.order_by("-id").values("id")[:1]),
        # C2's invoiced-already refusal: an invoice issued (written in bulk, no history row)
        # or voided (kept in its history).
        "last_invoice": Subquery(Invoice.objects.order_by("-id").values("id")[:1]),
        "last_invoice_change": _latest(Invoice),
        "last_closed_month": Subquery(
            MonthClose.objects.filter(finished=True).order_by("-month").values("month")[:1]
        ),
        # D2, D4: the clock moving on may refuse the day (`judge_audience`).
        "clock_day": Subquery(BillingClock.objects.filter(pk=1).values("last_processed_day")),
        "clock_processing": Subquery(BillingClock.objects.filter(pk=1).values("processing_day")),
    }
    stamp = (
        Campaign.objects.filter(pk=campaign.pk)
        .annotate(**latest)
        .values_list(
            "audience",
            "coupon_id",
            "launches",
            "coupon__active",
            "coupon__redeem_by",
            "coupon__max_redemptions",
            "coupon__times_redeemed",
            *latest,
        )
        .get()
    )
    digest = hashlib.sha256(repr((as_of, stamp)).encode()).hexdigest()[:24]
    return f"campaign-preview:{campaign.pk}:{digest}"


def cached_audience_preview(
    campaign: Campaign, *, as_of: date, now: datetime, refresh: bool = False
) -> dict:
    """G1 on the campaign page: `audience_preview`, kept in the cache (settings CACHES: Redis
    in production) so that a page view over a large base costs one query, not the whole dry
    run; `computed_at` (`now` when it was computed) is shown beside it. `refresh` recomputes."""
    key = preview_key(campaign, as_of=as_of)
    preview = None if refresh else cache.get(key)
    if preview is None:
        preview = {**audience_preview(campaign, as_of=as_of), "computed_at": now}
        cache.set(key, preview, PREVIEW_TIMEOUT)
    return preview


# --- Creating, editing and launching (G1, G2) -------------------------------------------------


def _checked_details(
    name, coupon_code, subject, message, audience, as_of, *, campaign: Campaign | None = None
) -> dict:
    """G1: a campaign's details, checked and cleaned; every problem named at once. A name is
    one campaign's (`campaign` keeps its own): the add page sent twice made two campaigns,
    and launching both emailed every workspace twice (G2). The coupon
    must be on offer on `as_of` (C2's own `check_coupon`): a campaign for a coupon nobody it
    reaches could redeem is pointless. Without `as_of` (a script that names no day), only what
    does not depend on the day is checked: inactive, maximum reached."""
    problems = []
    name, subject, message = (name or "").strip(), (subject or "").strip(), (message or "").strip()
    if not name:
        problems.append("The campaign needs a name.")
    elif len(name) > 200:
        problems.append("The name is longer than 200 characters.")
    elif problem := hidden_character(name, "name"):
        problems.append(problem)
    else:
        # Two sent at once: the second waits for the first's commit and sees its name.
        take_turns("campaign name", name.casefold())
        taken = Campaign.objects.filter(name__iexact=name).exclude(pk=getattr(campaign, "pk", None))
        if (other := taken.first()) is not None:
            when = f"launched on {day(other.launched_on)}" if other.launched_on else "a draft"
            problems.append(f"A campaign named “{other.name}” exists already ({when}).")
    if not subject:
        problems.append("The email needs a subject.")
    elif len(subject) > 200:
        problems.append("The subject is longer than 200 characters.")
    elif problem := hidden_character(subject, "subject"):
        problems.append(problem)
    if not message:
        problems.append("The email needs a message.")
    elif len(message) > MESSAGE_MAX_LENGTH:
        # The campaign audit: 200,000 characters were taken, for every recipient's email.
        problems.append(
            f"The message is {len(message):,} characters long; an email's message is at most "
            f"{MESSAGE_MAX_LENGTH:,}."
        )
    code = coupon_code.code if isinstance(coupon_code, Coupon) else str(coupon_code or "")
    coupon = Coupon.objects.filter(code=code.strip().upper()).first()
    if coupon is None:
        problems.append(f"There is no coupon with the code “{code}”.")
    elif coupon.kind != Coupon.Kind.PROMOTION:
        problems.append(
            f"{coupon.code} is a {coupon.get_kind_display().lower()} coupon: a campaign "
            "announces a promotion coupon."
        )
    else:
        try:
            # date.min: before any redeem-by day, so only the day-free refusals can apply.
            check_coupon(coupon, as_of=as_of or date.min)
        except CouponRefused as exc:
            problems.append(f"{exc} A campaign cannot offer it: nobody it reaches could redeem it.")
    audience, audience_problems = clean_audience(audience)
    problems += audience_problems
    refuse_problems(problems, CouponError)
    return {
        "name": name,
        "coupon": coupon,
        "subject": subject,
        "message": message,
        "audience": audience,
    }


@transaction.atomic
def create_campaign(
    name, coupon_code, subject, message, audience=None, by=None, *, as_of: date | None = None
) -> Campaign:
    """G1: a draft campaign made on `as_of` for a promotion coupon on offer that day; every
    problem with the input named at once (`_checked_details`). `audience` is a dict of filters
    (`AUDIENCE_FILTERS`, all optional)."""
    details = _checked_details(name, coupon_code, subject, message, audience, as_of)
    campaign = Campaign(**details, created_by=by)
    save_with_reason(campaign, "Created", by=by)
    return campaign


EDITABLE_DETAILS = ("name", "coupon_code", "subject", "message", "audience")


@transaction.atomic
def update_campaign(
    campaign: Campaign, *, by, reason: str, as_of: date | None = None, **changes
) -> Campaign:
    """G1: change a draft campaign's name, coupon (`coupon_code`: a code or a Coupon), email
    or audience on `as_of`, with a reason kept in its history (R4); the draft as it would be
    is checked as `create_campaign` checks it (its coupon on offer that day included).
    Refused once the campaign is launched: its emails went out saying what they said, to the
    audience it had (G2); a new campaign says something new."""
    reason = require_reason(
        reason, "Say why the campaign changes: the reason is kept.", error=CouponError
    )
    unknown = set(changes) - set(EDITABLE_DETAILS)
    if unknown:
        raise CouponError(f"These are not campaign details: {', '.join(sorted(unknown))}.")
    campaign = Campaign.objects.select_for_update().select_related("coupon").get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CouponError(
            f"{campaign.name} was launched on {day(campaign.launched_on)}: a launched campaign "
            "cannot change (its emails went out as they were). Create a new campaign instead."
        )
    current = {
        "name": campaign.name,
        "coupon_code": campaign.coupon,
        "subject": campaign.subject,
        "message": campaign.message,
        "audience": campaign.audience,
    }
    details = _checked_details(**{**current, **changes}, as_of=as_of, campaign=campaign)
    changed = sorted(field for field, value in details.items() if getattr(campaign, field) != value)
    if not changed:
        return campaign
    for field in changed:
        setattr(campaign, field, details[field])
    save_with_reason(campaign, f"Changed {', '.join(changed)}: {reason}", by=by)
    return campaign


@transaction.atomic
def launch_campaign(campaign: Campaign, by=None, as_of: date = None, *, dispatch=None) -> int:
    """G2: reach the campaign's audience on `as_of`. Each workspace reached is recorded once
    per campaign (a unique constraint); the workers email the ones not emailed yet, in
    batches, after commit. Launching again reaches only workspaces that joined the audience
    since, and hands on again any batch that was lost: nobody gets a second email. Returns how
    many workspaces this launch newly reached. `dispatch(campaign_id, ranges)` hands the
    batches on (default: `coupons.tasks.dispatch_campaign_batches`, one message per batch)."""
    if as_of is None:
        raise CouponError("A launch needs its date (as_of).")
    dispatch = dispatch or _batch_dispatch
    if dispatch is None:  # before the app registry is ready: nothing could reach the workers
        raise RuntimeError("No campaign batch dispatch is registered (CouponsConfig.ready).")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.launched_on is not None:  # G2: who was reached when, in date order
        refuse_dated_before(
            as_of,
            campaign.launched_on,
            "A launch",
            f"{campaign.name} was launched",
            error=CouponError,
        )
    judged = judge_audience(campaign, as_of, what=f"Launching the campaign {campaign.name}")
    if campaign.status == Campaign.Status.DRAFT and not judged.reach:
        # Launched, it could no longer change (G2): nobody emailed, and nothing left to mend.
        raise CouponError(
            f"Launching the campaign {campaign.name} on {day(as_of)} would email nobody: "
            f"{_reaching_nobody(_labelled(judged.refusals))}. {MEND_BEFORE_LAUNCH}"
        )
    before = campaign.recipients.count()
    _add_recipients(campaign, judged.reached, as_of)
    CampaignRecipient.objects.bulk_create(
        [
            CampaignRecipient(campaign=campaign, workspace_id=pk, added_on=as_of)
            for pk, _ in judged.caught_up
        ],
        ignore_conflicts=True,
    )
    added = campaign.recipients.count() - before
    first = campaign.status == Campaign.Status.DRAFT
    campaign.status = Campaign.Status.LAUNCHED
    campaign.launched_on = campaign.launched_on or as_of
    campaign.launched_by = campaign.launched_by or by
    campaign.launches += 1
    save_with_reason(
        campaign,
        f"{'Launched' if first else 'Launched again'} on {day(as_of)}: {added} workspace(s) added",
        by=by,
    )
    unsent = list(
        campaign.recipients.filter(email=None).order_by("pk").values_list("pk", flat=True)
    )
    ranges = [
        (batch[0], batch[-1])
        for batch in (
            unsent[start : start + CAMPAIGN_BATCH]
            for start in range(0, len(unsent), CAMPAIGN_BATCH)
        )
    ]
    campaign_id = campaign.pk
    transaction.on_commit(lambda: dispatch(campaign_id, ranges))
    return added


def _add_recipients(campaign: Campaign, workspaces: QuerySet, as_of: date) -> None:
    """G2: record `workspaces` as reached by the campaign on `as_of`, in one INSERT … SELECT
    (none read into Python); a workspace reached before keeps its row (the unique
    constraint)."""
    if workspaces.query.is_empty():  # `none()`: no SQL to select from
        return
    ids, params = workspaces.order_by("pk").values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"insert into {CampaignRecipient._meta.db_table} (campaign_id, added_on, workspace_id)"
            # `where true`: SQLite reads `on conflict` after a bare FROM as a join's ON.
            f" select %s, %s, reached.* from ({ids}) reached where true on conflict do nothing",
            [campaign.pk, connection.ops.adapt_datefield_value(as_of), *params],
        )


# G2: how a launch hands its batches to the workers. The task module (the edge) registers its
# dispatcher from `CouponsConfig.ready`: this module never imports the tasks, they import it.
_batch_dispatch = None


def register_batch_dispatch(dispatch) -> None:
    """Set the default `dispatch(campaign_id, ranges)` of `launch_campaign`."""
    global _batch_dispatch
    _batch_dispatch = dispatch


def _offer_day(recipients: list[CampaignRecipient]) -> date:
    """The day a batch judges its recipients on (G1, C2): the earliest a redemption asked for
    now could be dated. Their latest launch day while the clock has not processed it, else the
    first day it has not (D2: on a processed day, the invoices its close issued and changes
    dated since would read as refusals that a redemption dated now does not meet). Read from
    the clock, not as today at the edge: a launch is dated on the clock's days, which a demo or
    a copy runs far from the wall clock's (D1); with the clock through yesterday, it is today."""
    day = max(r.added_on for r in recipients)
    last = last_processed_day()
    return max(day, last + timedelta(days=1)) if last is not None else day


def _refused_now(coupon: Coupon, workspace_ids: list[int], as_of: date) -> dict[int, str]:
    """G1, C2 at send time: {workspace id: reason} for those of `workspace_ids` the coupon
    would refuse on `as_of`, by C2's own decision (`check_coupon`, then `refusal` on the
    facts read in SQL, `standing_expressions`): one query, whatever their number. D4: a
    workspace the clock owes an event (`_owing`) keeps the launch's verdict, which was given
    after catching it up: its rows are not yet what `redeem_coupon` would judge (a trial that
    ended is still on Team), and every dated change to it catches it up first."""
    if reason := _refused_by_coupon(coupon, as_of):
        return dict.fromkeys(workspace_ids, reason)
    rows = (
        Workspace.objects.filter(id_in("pk", workspace_ids))
        .exclude(_owing(as_of))
        .annotate(**standing_expressions(coupon, as_of=as_of))
        .values_list("pk", *Standing._fields)
    )
    refused = {}
    for pk, *facts in rows:
        if reason := refusal(coupon, Standing(*facts)):
            refused[pk] = reason
    return refused


def notify_batch(campaign_id: int, *, first_id: int, last_id: int) -> int:
    """G2, a worker's batch: queue the email of each recipient in the id range not emailed yet,
    in the outbox (sent after commit, once per (kind, object, recipient)), and link it, all in
    one transaction under the rows' locks: a redelivered or concurrent batch finds nothing left.
    A fixed number of queries whatever the batch's size. Returns how many it queued.

    G1, C2, W1: a workspace that can no longer take the coupon (closed since the launch, the
    coupon redeemed for it or another discount given meanwhile, the coupon used up or switched
    off: `_refused_now` on `_offer_day`) is no longer reached: its recipient row goes,
    unemailed, as `campaign_audience` would leave it out now; an offer support would refuse
    is not sent. A launch again reaches it once it can take the coupon."""
    with transaction.atomic():
        campaign = Campaign.objects.select_related("coupon").filter(pk=campaign_id).first()
        if campaign is None:
            return 0
        recipients = list(
            CampaignRecipient.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .filter(campaign_id=campaign_id, pk__gte=first_id, pk__lte=last_id, email=None)
            .order_by("pk")
        )
        if not recipients:
            return 0
        reasons = {
            r.workspace_id: WORKSPACE_CLOSED
            for r in recipients
            if r.workspace.closed_on is not None
        }
        day = _offer_day(recipients)
        open_ids = [r.workspace_id for r in recipients if r.workspace_id not in reasons]
        if open_ids:
            reasons.update(_refused_now(campaign.coupon, open_ids, day))
        if reasons:
            left_out = [r.pk for r in recipients if r.workspace_id in reasons]
            CampaignRecipient.objects.filter(pk__in=left_out).delete()
            recipients = [r for r in recipients if r.workspace_id not in reasons]
            logger.info(
                "campaign %s batch %s-%s on %s: %s left out unemailed (%s)",
                campaign_id,
                first_id,
                last_id,
                day,
                len(reasons),
                "; ".join(
                    f"{label}: {n}" for label, n in sorted(_labelled(Counter(reasons.values())))
                ),
            )
        if not recipients:
            return 0
        specs = [
            EmailSpec(
                kind="campaign",
                object_key=f"campaign:{campaign.pk}:workspace:{r.workspace_id}",
                to=r.workspace.billing_email,
                template="campaign",
                context={"campaign": campaign, "coupon": campaign.coupon, "workspace": r.workspace},
            )
            for r in recipients
        ]
        queue_emails(specs)
        emails = {
            (key, to): pk
            for pk, key, to in OutboundEmail.objects.filter(
                kind="campaign", object_key__in=[s.object_key for s in specs]
            ).values_list("pk", "object_key", "to")
        }
        for recipient, spec in zip(recipients, specs, strict=True):
            recipient.email_id = emails[(spec.object_key, spec.to)]
        CampaignRecipient.objects.bulk_update(recipients, ["email"], batch_size=CAMPAIGN_BATCH)
        return len(recipients)


# --- The campaign page (G2, G3) ----------------------------------------------------------------


def campaign_progress(campaign: Campaign) -> dict:
    """G2: how far sending has got: reached, waiting for a worker, queued, sent, failed."""
    counts = dict(
        campaign.recipients.values_list("email__status").annotate(n=Count("id")).order_by()
    )
    reached = sum(counts.values())
    sent = counts.get(OutboundEmail.Status.SENT, 0)
    return {
        "reached": reached,
        "waiting": counts.get(None, 0),
        "pending": counts.get(OutboundEmail.Status.PENDING, 0),
        "sent": sent,
        "failed": counts.get(OutboundEmail.Status.FAILED, 0),
        "percent_sent": round(100 * sent / reached) if reached else 0,
    }


def campaign_results(campaign: Campaign) -> dict:
    """G3: notified, redeemed and the discount given so far, with a monthly series."""
    # Notified: the email was sent, as `notifying_campaign_id` reads it (one still pending is
    # counted as queued by `campaign_progress`, and told the workspace nothing yet).
    # Given: on invoices that stand (a voided invoice gave nothing).
    notified = campaign.recipients.filter(email__status=OutboundEmail.Status.SENT).count()
    redeemed = Redemption.objects.filter(campaign=campaign).count()
    applied = DiscountApplication.objects.filter(redemption__campaign=campaign).exclude(
        invoice__status=Invoice.Status.VOID
    )
    discount = round_cents(applied.aggregate(total=Sum("amount"))["total"] or ZERO)
    by_month = {
        row["month"]: round_cents(row["total"])
        for row in applied.annotate(month=TruncMonth("invoice__issue_date"))
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by("month")
    }
    redemptions_by_month = dict(
        Redemption.objects.filter(campaign=campaign)
        .annotate(month=TruncMonth("redeemed_on"))
        .values("month")
        .annotate(n=Count("id"))
        .values_list("month", "n")
        .order_by("month")
    )
    months = sorted(set(by_month) | set(redemptions_by_month))
    peak = max(list(by_month.values()) + [ZERO]) or 1
    series = [
        {
            "month": month,
            "discount": by_month.get(month, ZERO),
            "redemptions": redemptions_by_month.get(month, 0),
            "height": round(100 * by_month.get(month, ZERO) / peak),  # percent
        }
        for month in months
    ]
    return {
        "notified": notified,
        "redeemed": redeemed,
        "rate": round(100 * redeemed / notified) if notified else 0,
        "discount": discount,
        "series": series,
    }


__all__ = [
    "AUDIENCE_FILTERS",
    "audience_preview",
    "audience_workspaces",
    "cached_audience_preview",
    "campaign_audience",
    "campaign_progress",
    "campaign_results",
    "clean_audience",
    "create_campaign",
    "launch_campaign",
    "nothing_to_launch",
    "notify_batch",
    "register_batch_dispatch",
    "update_campaign",
]
