"""Reads shared by pages, exports and other tools."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Min

from billing import models
from billing.hooks import invoice_adjustments
from billing.models import (
    BillingClock,
    Interval,
    Invoice,
    Lock,
    LockEvent,
    MonthClose,
    OutboundEmail,
    PaymentMethod,
    SetAsideInvoice,
    Subscription,
    Usage,
    WorkerHeartbeat,
    Workspace,
    WorkspaceClosure,
)
from billing.months import add_months, month_start
from billing.pricing import round_cents
from billing.regions import region_not_a_code
from billing.usage_import import stuck_jobs


def workspace_status(workspace: Workspace, as_of: date) -> dict:
    """D3: what the workspace was on, on `as_of`, read from the dated history in the database
    (whatever copy of the workspace the caller holds): plan, interval, trial, lock, data flow,
    payment method, program membership, startup credit left and whether it was closed (W1:
    a workspace closed on day X has no data flow from X). `as_of` may come by position, as
    DESIGN's "Contracts" writes the call."""
    sub = (
        Subscription.objects.select_related("plan")
        .filter(workspace_id=workspace.pk, started_on__lte=as_of)
        .exclude(ended_on__lte=as_of)
        .order_by("-started_on", "-id")
        .first()
    )
    trialing = bool(sub and sub.trialing_on(as_of))
    lock = lock_on(workspace.pk, as_of)
    closure = WorkspaceClosure.objects.on(as_of).filter(workspace_id=workspace.pk).first()
    adjustments = invoice_adjustments()
    return {
        "plan": sub.plan.code if sub else "free",
        "interval": _interval_on(sub, as_of),
        "trialing": trialing,
        "trial_end": sub.trial_end if trialing else None,
        "term_end": _term_end_on(sub, as_of),
        "cancel_at_term_end": _cancelled_on(sub, as_of),
        "lock": lock,
        "data_flow": lock != Lock.LOCKED_DATA_STOPPED and closure is None,
        "locked": lock != Lock.UNLOCKED,
        "closed": closure is not None,
        "closed_on": closure.closed_on if closure else None,
        "startup_member": adjustments.program_member(workspace.pk, as_of),
        "has_payment_method": PaymentMethod.objects.on(as_of)
        .filter(workspace_id=workspace.pk)
        .exists(),
        "credit_balance": round_cents(adjustments.credit_balance(workspace.pk, as_of)),
    }


def _interval_on(sub: Subscription | None, day: date) -> str:
    """D3, K4: the interval the subscription was on, or its trial was to continue on, on `day`.
    The row holds the trial's last change with its day and the interval before it; a day
    before an earlier change is read from the row's history, which kept each change's day."""
    if sub is None:
        return Interval.MONTHLY
    if sub.interval_chosen_on is None or day >= sub.interval_chosen_on:
        return sub.interval
    chosen = {}  # day of a change → (the interval before that day, the last chosen that day)
    for chosen_on, before, interval in (
        sub.history.exclude(interval_chosen_on=None)
        .order_by("history_date", "history_id")
        .values_list("interval_chosen_on", "interval_before", "interval")
    ):
        chosen[chosen_on] = (chosen.get(chosen_on, (before,))[0], interval)
    changes = sorted(chosen.items())
    interval = changes[0][1][0]
    for chosen_on, (_, chosen_interval) in changes:
        if chosen_on > day:
            break
        interval = chosen_interval
    return interval


def _cancelled_on(sub: Subscription | None, day: date) -> bool:
    """D3, K2: whether the annual term was set to end on `day`: from the day a cancellation was
    dated up to the day its withdrawal was. The row holds the last cancellation; a day before
    it is read from the row's history, which kept each one's days."""
    if sub is None:
        return False
    if sub.cancelled_on is None:  # none, or one from before its days were kept
        return sub.cancel_at_term_end
    if day >= sub.cancelled_on:
        withdrawn = sub.cancel_withdrawn_on
        return withdrawn is None or day < withdrawn
    withdrawn_on = {}  # each cancellation's day → the day it was withdrawn, as last recorded
    for cancelled_on, withdrawn in (
        sub.history.filter(cancelled_on__lte=day)
        .order_by("history_date", "history_id")
        .values_list("cancelled_on", "cancel_withdrawn_on")
    ):
        withdrawn_on[cancelled_on] = withdrawn
    return any(withdrawn is None or day < withdrawn for withdrawn in withdrawn_on.values())


def _term_end_on(sub: Subscription | None, day: date) -> date | None:
    """D3: the end of the annual term running on `day`. The subscription's row holds its latest
    term (a renewal moves it on); an earlier one is read from the invoice that prepaid it."""
    if sub is None or sub.term_start is None or sub.term_start <= day:
        return sub.term_end if sub else None
    return (
        Invoice.objects.filter(subscription=sub, kind=Invoice.Kind.ANNUAL, period_start__lte=day)
        .order_by("-period_start")
        .values_list("period_end", flat=True)
        .first()
    )


def lock_on(workspace_id: int, day: date) -> str:
    """D3: the lock level on `day`: the last lock change recorded on or before it (F6). A
    workspace whose lock was never changed through the rules reads its row."""
    events = LockEvent.objects.filter(workspace_id=workspace_id)
    last = events.filter(on__lte=day).order_by("-on", "-id").values_list("to_lock", flat=True)
    if last:
        return last[0]
    if events.exists():
        return Lock.UNLOCKED  # every change came later: unlocked until the first one
    row = Workspace.objects.filter(pk=workspace_id).values("lock", "lock_changed_on").first()
    if row and (row["lock_changed_on"] is None or row["lock_changed_on"] <= day):
        return row["lock"]
    return Lock.UNLOCKED


def recent_usage(workspace: Workspace, *, as_of: date, months: int = 6) -> list[tuple[date, int]]:
    """The last `months` months up to `as_of`'s month, oldest first, 0 where none reported."""
    first = add_months(month_start(as_of), 1 - months)
    reported = dict(
        Usage.objects.filter(workspace=workspace, month__gte=first, month__lte=as_of).values_list(
            "month", "mtus"
        )
    )
    return [(m, reported.get(m, 0)) for m in (add_months(first, i) for i in range(months))]


# --- Is the billing machinery keeping up? (`check_billing`, the admin index) ---------------

# The beat starts the daily cycle shortly after midnight UTC (CELERY_BEAT_SCHEDULE); until
# this long after midnight, the day before yesterday is the last one it must have processed.
CLOCK_RUN_GRACE = timedelta(hours=3)
EMAIL_STUCK_AFTER = timedelta(hours=1)
# The beat sends the workers' heartbeat every 5 minutes (CELERY_BEAT_SCHEDULE): three missed in
# a row say the beat or every worker is down, well before an import (15 minutes), an email (an
# hour) or the clock (a day) would.
HEARTBEAT_STALE_AFTER = timedelta(minutes=15)


def clock_due_day(now: datetime) -> date:
    """The last day the daily billing run should have processed by `now` (UTC)."""
    return (now - CLOCK_RUN_GRACE).date() - timedelta(days=1)


@dataclass(frozen=True)
class BillingHealth:
    due_day: date  # the last day the clock should have processed
    last_processed_day: date | None
    clock_ran: bool
    last_day_ended: date  # yesterday (UTC): the last the clock processes without --allow-future
    unfinished_closes: tuple[date, ...] = ()
    set_aside: int = 0  # workspaces a close could not bill (I6), not yet billed
    failed_emails: int = 0
    stuck_emails: int = 0  # pending for longer than EMAIL_STUCK_AFTER
    stuck_import_jobs: int = 0  # usage files no worker is on (`usage_import.stuck_jobs`)
    # X1: workspaces whose region tax depends on is no code (kept before codes were required):
    # their invoices are set aside or refused until it is corrected.
    regions_not_codes: int = 0
    workers_needed: bool = False  # tasks go through the broker (not eager, as on a laptop)
    heartbeat: WorkerHeartbeat | None = None  # the last a worker ran (`tasks.record_heartbeat`)
    heartbeat_stale: bool = False  # none yet, or none since HEARTBEAT_STALE_AFTER
    # Why the broker did not answer a PING, when the caller asked it (`check_billing`): the
    # heartbeat row looks fresh for up to 15 minutes after the broker went down, and a
    # restored database brings the heartbeat of the day of its dump.
    broker_error: str = ""

    @property
    def done_through(self) -> date:
        """The day the clock is done through, as the panel says it: the day it processed, or
        the day due when it had nothing to process by then (no sign-up yet)."""
        if self.last_processed_day is not None and self.last_processed_day > self.due_day:
            return self.last_processed_day
        return self.due_day

    @property
    def ran_ahead(self) -> bool:
        """A run with --allow-future processed a day that has not ended. Not the beat's run of
        yesterday in the hours of CLOCK_RUN_GRACE, which is ahead only of `due_day`."""
        return self.last_processed_day is not None and self.last_processed_day > self.last_day_ended

    @property
    def problems(self) -> list[str]:
        """What needs someone's attention, one sentence each; empty when all is well."""
        problems = []
        if not self.clock_ran:
            problems.append(
                f"The billing clock has not processed {self.due_day}: the last day it "
                f"processed is {self.last_processed_day or 'none yet'}."
            )
        if self.unfinished_closes:
            months = ", ".join(f"{m:%Y-%m}" for m in self.unfinished_closes)
            problems.append(f"Month close started and not finished: {months}.")
        if self.set_aside:
            problems.append(f"{self.set_aside} workspace(s) set aside by a month close (I6).")
        if self.failed_emails:
            problems.append(f"{self.failed_emails} email(s) failed.")
        if self.stuck_emails:
            problems.append(
                f"{self.stuck_emails} email(s) pending for more than "
                f"{EMAIL_STUCK_AFTER.total_seconds() / 3600:g} hour(s)."
            )
        if self.stuck_import_jobs:
            problems.append(
                f"{self.stuck_import_jobs} usage import job(s) with no worker on them (queued "
                "or running too long): the beat's sweep hands them over again; if they stay, "
                "check the workers."
            )
        if self.regions_not_codes:
            problems.append(
                f"{self.regions_not_codes} workspace(s) with a business region that is not a "
                "code tax depends on (X1): their invoices are not issued until it is corrected."
            )
        if self.workers_needed and self.broker_error:
            problems.append(
                f"The broker does not answer ({self.broker_error}): no task can be queued; "
                "month closes, usage imports and emails wait."
            )
        if self.workers_needed and self.heartbeat_stale:
            since = (
                f"since {self.heartbeat.ran_at:%Y-%m-%d %H:%M} UTC"
                if self.heartbeat
                else "yet (is the beat running?)"
            )
            problems.append(
                f"No Celery worker has run the beat's heartbeat {since}: the beat or every "
                "worker is down; month closes, usage imports and emails wait."
            )
        return problems

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems)


def billing_health(*, due_day: date, now: datetime, broker_error: str = "") -> BillingHealth:
    """Whether the daily run processed `due_day` (or no workspace had signed up by then),
    closes left unfinished, set-aside workspaces, failed or stuck emails (pending since before
    `now - EMAIL_STUCK_AFTER`), usage import jobs no worker is on and workspaces whose region tax
    depends on is no code, and when a worker last ran the beat's heartbeat (when tasks go
    through the broker); with `broker_error`, why the caller's PING of the broker failed."""
    unfinished = tuple(
        MonthClose.objects.filter(finished=False).order_by("-month").values_list("month", flat=True)
    )
    last_processed_day = BillingClock.objects.aggregate(day=Max("last_processed_day"))["day"]
    # The first sign-up only matters for a clock behind: reading it scans every workspace.
    clock_ran = (last_processed_day is not None and last_processed_day >= due_day) or (
        (first_day := Workspace.objects.aggregate(first=Min("created_on"))["first"]) is None
        or first_day > due_day
    )

    # Workspaces, not entries: one whose month waits for an earlier one has an entry for each.
    set_aside = (
        SetAsideInvoice.objects.filter(resolved_on=None).values("workspace_id").distinct().count()
    )

    emails = OutboundEmail.objects
    heartbeat = WorkerHeartbeat.objects.filter(pk=1).first()
    return BillingHealth(
        due_day=due_day,
        last_processed_day=last_processed_day,
        clock_ran=clock_ran,
        last_day_ended=now.date() - timedelta(days=1),
        unfinished_closes=unfinished,
        set_aside=set_aside,
        failed_emails=emails.filter(status=OutboundEmail.Status.FAILED).count(),
        stuck_emails=emails.filter(
            status=OutboundEmail.Status.PENDING, created_at__lt=now - EMAIL_STUCK_AFTER
        ).count(),
        stuck_import_jobs=stuck_jobs(now).count(),
        regions_not_codes=Workspace.objects.filter(region_not_a_code()).count(),
        workers_needed=not settings.CELERY_TASK_ALWAYS_EAGER,
        heartbeat=heartbeat,
        heartbeat_stale=heartbeat is None or heartbeat.ran_at < now - HEARTBEAT_STALE_AFTER,
        broker_error=broker_error,
    )


@dataclass(frozen=True)
class RefundSummary:
    """K3 on an invoice page: what was refunded (approved credit notes), what support asked
    for and finance has not decided yet, and what is left unrefunded."""

    total: Decimal
    refunded: Decimal
    pending: Decimal
    notes: list
    void: bool

    @property
    def left(self):
        """Nothing on a void invoice (I3: it bills nothing)."""
        return Decimal("0.00") if self.void else self.total - self.refunded

    @property
    def requestable(self):
        """What a new request may still ask for: the requests waiting count against it (the
        third walk read "left to refund" as that, and the form then capped it lower)."""
        return max(self.left - self.pending, Decimal("0.00"))

    @property
    def pending_notes(self):
        return [note for note in self.notes if note.status == models.CreditNote.Status.REQUESTED]


def refund_summary(invoice: models.Invoice) -> RefundSummary:
    """The invoice's credit notes and their sums, to two places (SQLite sums decimals as
    floats)."""
    notes = list(invoice.credit_notes.select_related("requested_by", "decided_by"))
    cents = Decimal("0.01")

    def total_of(status):
        amounts = (note.amount for note in notes if note.status == status)
        return sum(amounts, Decimal("0.00")).quantize(cents)

    return RefundSummary(
        total=invoice.total,
        refunded=total_of(models.CreditNote.Status.APPROVED),
        pending=total_of(models.CreditNote.Status.REQUESTED),
        notes=notes,
        void=invoice.status == models.Invoice.Status.VOID,
    )
