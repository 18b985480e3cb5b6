"""Every write with a billing rule: workspaces, plan changes, usage, locks, the billing clock.

Services take the date they act on (`as_of`) and never read the clock. They lock the
workspace row first, so two agents acting on one workspace at once take turns.
"""

import logging
import threading
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Sum
from django_countries import countries
from simple_history.utils import bulk_update_with_history

from billing import invoicing
from billing.audit import records_why, require_reason, save_with_reason
from billing.bulk_rows import gc_paused
from billing.clock import last_processed_day, mark_processed, refuse_processed
from billing.closures import close_workspace, closed_on_day, refuse_closed, reopen_workspace
from billing.emails import queue_email, queue_emails_rendered_when_sent
from billing.errors import BillingError, InvalidPlanChange, PaymentMethodRequired
from billing.exemptions import (
    approve_exemption,
    reject_exemption,
    start_exemption_review,
    submit_exemption,
)
from billing.hooks import daily_steps
from billing.locks import change_locks_in_bulk
from billing.models import (
    LOCK_SEVERITY,
    CreditNote,
    Interval,
    Invoice,
    Lock,
    LockEvent,
    MonthClose,
    MonthCloseChunk,
    PaymentMethod,
    Plan,
    SetAsideInvoice,
    Strike,
    Subscription,
    Usage,
    Workspace,
)
from billing.months import (
    EARLIEST_MONTH,
    LATEST_MONTH,
    add_months,
    add_year,
    month_start,
    next_month,
)
from billing.plans import PLAN_TERMS, update_plan
from billing.tax import US_STATES, set_tax_rate
from billing.usage_import import MAX_MTUS, import_usage  # noqa: F401 (MAX_MTUS: I6, for callers)
from billing.usage_import import mtus_problem as _mtus_problem

__all__ = [
    "PLAN_TERMS",
    "add_payment_method",
    "remove_payment_method",
    "approve_exemption",
    "change_interval",
    "change_to_free",
    "change_to_team",
    "bill_chunk",
    "close_month",
    "close_workspace",
    "create_workspace",
    "decide_credit_note",
    "finish_close_if_complete",
    "import_usage",
    "preview_invoice",
    "record_usage",
    "refundable_amount",
    "reject_exemption",
    "reopen_workspace",
    "request_credit_note",
    "run_billing",
    "set_tax_rate",
    "start_exemption_review",
    "submit_exemption",
    "unlock_workspace",
    "update_plan",
    "update_workspace",
    "void_invoice",
]

logger = logging.getLogger(__name__)

# F2: the strikes of the closed month and the five before it decide the lock level.
STRIKE_WINDOW_MONTHS = 6
# T6: the reminder goes out this many days before the trial's end date.
TRIAL_REMINDER_DAYS = 3


def _plan(code: str) -> Plan:
    return Plan.objects.get(code=code)


def _locked(workspace: Workspace) -> Workspace:
    """The workspace re-read under a row lock: the start of every write to one workspace.
    FOR NO KEY UPDATE: writers of one workspace take turns, while rows that merely point at it
    (a month close's invoices, history) are inserted without waiting (FC1: a forecast's open
    transaction never holds up a close)."""
    return Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)


def _current(workspace: Workspace) -> Subscription:
    return workspace.subscriptions.select_related("plan").get(ended_on=None)


def _check_interval(interval: str):
    if interval not in Interval.values:
        raise BillingError(f"“{interval}” is not a billing interval: use monthly or annual.")


# --- Workspaces and plan changes (T1–T5, K1, K2, K4, F4) -------------------------------------


def _detail_problems(*, name, business_country, business_region, billing_email) -> list[str]:
    """What is wrong with a workspace's details (X1: a US business needs its state)."""
    problems = []
    if not name.strip():
        problems.append("The workspace needs a name.")
    country = business_country.upper()
    if country not in countries:
        problems.append(f"“{business_country}” is not an ISO 3166-1 country code.")
    region = business_region.upper()
    if country == "US" and region not in US_STATES:
        problems.append(
            f"“{business_region}” is not a US state code (e.g. CA): sales tax depends on it."
            if region
            else "A US business needs its state (e.g. CA): sales tax depends on it."
        )
    try:
        validate_email(billing_email)
    except ValidationError:
        problems.append(f"“{billing_email}” is not a valid billing email address.")
    return problems


@transaction.atomic
def create_workspace(
    name: str,
    *,
    slug: str,
    business_country: str,
    business_region: str = "",
    billing_email: str,
    has_payment_method: bool = False,
    plan: str = "free",
    interval: str = "monthly",
    as_of: date,
) -> Workspace:
    """A new workspace on Free, or signed up straight into Team (T1: trial; T2: no card
    needed for a sign-up)."""
    problems = _detail_problems(
        name=name,
        business_country=business_country,
        business_region=business_region,
        billing_email=billing_email,
    )
    try:
        validate_slug(slug)
    except ValidationError:
        problems.append(f"“{slug}” is not a valid slug (letters, digits, - and _ only).")
    if Workspace.objects.filter(slug=slug).exists():
        problems.append(f"The slug “{slug}” is already used by another workspace.")
    if plan not in Plan.Code.values:
        problems.append(f"“{plan}” is not a plan: use free or team.")
    if interval not in Interval.values:
        problems.append(f"“{interval}” is not a billing interval: use monthly or annual.")
    if problems:
        raise BillingError(" ".join(problems))
    refuse_processed(as_of, "A sign-up")
    country = business_country.upper()

    workspace = Workspace(
        name=name.strip(),
        slug=slug,
        business_country=country,
        business_region=business_region.upper(),
        billing_email=billing_email,
        created_on=as_of,
        payment_method_added_on=as_of if has_payment_method else None,
    )
    save_with_reason(workspace, "Created")
    if has_payment_method:
        PaymentMethod.objects.create(workspace=workspace, added_on=as_of)
    if plan == Plan.Code.TEAM:
        _start_team(workspace, interval=interval, as_of=as_of)
    else:
        Subscription.objects.create(workspace=workspace, plan=_plan("free"), started_on=as_of)
    return workspace


@transaction.atomic
def update_workspace(
    workspace: Workspace,
    *,
    by,
    reason: str,
    name: str,
    business_country: str,
    business_region: str = "",
    billing_email: str,
) -> Workspace:
    """Edit a workspace's name, business location (X1: it decides tax) and billing email, with
    the checks `create_workspace` applies and the why kept (R4)."""
    require_reason(reason, "Say why the workspace's details change: the reason is kept.")
    problems = _detail_problems(
        name=name,
        business_country=business_country,
        business_region=business_region,
        billing_email=billing_email,
    )
    if problems:
        raise BillingError(" ".join(problems))
    workspace = _locked(workspace)
    refuse_closed(workspace, "Editing the details")
    workspace.name = name.strip()
    workspace.business_country = business_country.upper()
    workspace.business_region = business_region.upper()
    workspace.billing_email = billing_email
    save_with_reason(workspace, f"Details edited: {reason.strip()}", by=by)
    return workspace


@transaction.atomic
def add_payment_method(workspace: Workspace, *, as_of: date, brand: str = "", last4: str = ""):
    """Record that a card is on file from `as_of` (T2, T4), replacing the one on file. Kept as
    dated history (D3); only its brand and last four digits are kept, for display."""
    refuse_processed(as_of, "A payment method change")
    workspace = _locked(workspace)
    refuse_closed(workspace, "A payment method change")
    if last4 and not (len(last4) == 4 and last4.isdigit()):
        raise BillingError("The last four digits of the card must be four digits.")
    _end_card(workspace, as_of)
    PaymentMethod.objects.create(workspace=workspace, brand=brand, last4=last4, added_on=as_of)
    workspace.payment_method_added_on = as_of
    workspace.card_brand, workspace.card_last4 = brand, last4
    save_with_reason(workspace, "Payment method added")
    return workspace


@transaction.atomic
def remove_payment_method(workspace: Workspace, *, as_of: date):
    """The card on file is removed from `as_of` on (D3): T4 then sees none on later days."""
    refuse_processed(as_of, "A payment method change")
    workspace = _locked(workspace)
    refuse_closed(workspace, "A payment method change")
    if not _end_card(workspace, as_of):
        raise BillingError(f"{workspace.name} has no payment method on file.")
    workspace.payment_method_added_on = None
    workspace.card_brand = workspace.card_last4 = ""
    save_with_reason(workspace, "Payment method removed")
    return workspace


def _end_card(workspace: Workspace, day: date) -> bool:
    """End the card on file on `day`; a card added that same day never was on file."""
    current = workspace.payment_methods.filter(removed_on=None).first()
    if current is None:
        return False
    if current.added_on >= day:
        current.delete()  # replaced the day it was added: the day sees only the new one
    else:
        current.removed_on = day
        current.save(update_fields=["removed_on"])
    return True


def _start_team(workspace: Workspace, *, interval: str, as_of: date) -> Subscription:
    """T1, T3: a 14-day trial for a workspace that never had Team, else paid from `as_of`."""
    team = _plan("team")
    had_team = workspace.subscriptions.filter(plan=team).exists()
    if not had_team and team.trial_days:
        trial_end = as_of + timedelta(days=team.trial_days)
        return Subscription.objects.create(
            workspace=workspace,
            plan=team,
            interval=interval,
            started_on=as_of,
            trial_end=trial_end,
            trial_outcome=Subscription.TrialOutcome.RUNNING,
            paid_from=trial_end,
        )
    sub = Subscription.objects.create(
        workspace=workspace, plan=team, interval=interval, started_on=as_of, paid_from=as_of
    )
    if interval == Interval.ANNUAL:
        _start_term(sub, as_of)
    return sub


def _start_term(sub: Subscription, day: date):
    """K2: an annual term of a year from `day`, prepaid by an invoice dated `day`."""
    sub.term_start, sub.term_end = day, add_year(day)
    sub.save(update_fields=["term_start", "term_end"])
    invoicing.issue([invoicing.annual_draft(sub, day)])


def _end(sub: Subscription, day: date, reason: str):
    sub.ended_on, sub.end_reason = day, reason
    sub.save(update_fields=["ended_on", "end_reason", "trial_outcome"])


def _start_free(workspace: Workspace, day: date):
    Subscription.objects.create(workspace=workspace, plan=_plan("free"), started_on=day)


@records_why("Moved to Team")
@transaction.atomic
def change_to_team(workspace: Workspace, *, interval: str = "monthly", as_of: date):
    """Upgrade from Free (T1 trial or paid, T2 card needed, F4 unlock at once)."""
    _check_interval(interval)
    refuse_processed(as_of, "A plan change")
    workspace = _locked(workspace)
    refuse_closed(workspace, "A plan change")
    _advance_workspace(workspace, as_of - timedelta(days=1))
    current = _current(workspace)
    if current.is_team:
        if current.interval == Interval.ANNUAL and current.cancel_at_term_end:
            current.cancel_at_term_end = False
            save_with_reason(current, "Cancellation withdrawn: the annual term will renew")
            return current
        raise InvalidPlanChange(
            f"{workspace.name} is already on Team ({current.interval}). To change how often it "
            "is billed, change the billing interval instead."
        )
    if not workspace.payment_method_on(as_of):
        raise PaymentMethodRequired(
            "A payment method is needed to move from Free to Team. Add one first."
        )
    _end(current, as_of, Subscription.EndReason.UPGRADED)
    sub = _start_team(workspace, interval=interval, as_of=as_of)
    if workspace.lock != Lock.UNLOCKED:
        _set_lock(workspace, Lock.UNLOCKED, cause=LockEvent.Cause.MOVED_TO_TEAM, as_of=as_of)
    return sub


@records_why("Cancelled or moved to Free")
@transaction.atomic
def change_to_free(workspace: Workspace, *, as_of: date):
    """Cancel or downgrade. T5: during the trial, never charged. K1: monthly ends at once with
    a final invoice. K2: annual runs to the end of its term, no refund."""
    refuse_processed(as_of, "A plan change")
    workspace = _locked(workspace)
    refuse_closed(workspace, "A plan change")
    _advance_workspace(workspace, as_of - timedelta(days=1))
    current = _current(workspace)
    if not current.is_team:
        raise InvalidPlanChange(f"{workspace.name} is already on Free.")
    if current.trialing_on(as_of):
        current.trial_outcome = Subscription.TrialOutcome.CANCELLED
        _end(current, as_of, Subscription.EndReason.CANCELLED)
        _start_free(workspace, as_of)
        _restore_lifted_lock(workspace, current, as_of)
    elif current.interval == Interval.ANNUAL:
        if current.cancel_at_term_end:
            raise InvalidPlanChange(
                f"{workspace.name}'s annual term is already set to end on {current.term_end}."
            )
        current.cancel_at_term_end = True
        save_with_reason(current, f"Cancelled: moves to Free on {current.term_end}")
    else:
        _end(current, as_of, Subscription.EndReason.CANCELLED)
        _issue_final_invoice(current, as_of)
        _start_free(workspace, as_of)
    return _current(workspace)


def _issue_final_invoice(sub: Subscription, day: date):
    draft = invoicing.final_draft(sub, day)
    if draft:
        invoicing.issue([draft])


@records_why("Billing interval changed")
@transaction.atomic
def change_interval(workspace: Workspace, *, interval: str, as_of: date):
    """K4: monthly → annual at once (final invoice, new term); annual → monthly at the term's
    end; during a trial only the interval the trial continues with."""
    _check_interval(interval)
    refuse_processed(as_of, "An interval change")
    workspace = _locked(workspace)
    refuse_closed(workspace, "An interval change")
    _advance_workspace(workspace, as_of - timedelta(days=1))
    current = _current(workspace)
    if not current.is_team:
        raise InvalidPlanChange("Only a Team subscription has a billing interval to change.")
    if current.trialing_on(as_of):
        current.interval = interval
        save_with_reason(current, f"Trial will continue as {interval}")
        return current
    if current.interval == interval:
        if current.switch_to_monthly_at_term_end:
            current.switch_to_monthly_at_term_end = False
            save_with_reason(current, "Stays annual at the end of the term")
            return current
        raise InvalidPlanChange(f"{workspace.name} is already billed {interval}.")
    if interval == Interval.MONTHLY:
        current.switch_to_monthly_at_term_end = True
        save_with_reason(current, f"Moves to monthly billing on {current.term_end}")
        return current
    _end(current, as_of, Subscription.EndReason.INTERVAL_CHANGED)
    _issue_final_invoice(current, as_of)
    sub = Subscription.objects.create(
        workspace=workspace,
        plan=current.plan,
        interval=interval,
        started_on=as_of,
        paid_from=as_of,
    )
    _start_term(sub, as_of)
    return sub


# --- Events of the billing clock for one subscription (T4, K2) -------------------------------


def _end_trial(workspace: Workspace, sub: Subscription):
    """T4: on the end date, paid Team with a card on file that day, else Free that day."""
    day = sub.trial_end
    if workspace.payment_method_on(day):
        sub.trial_outcome = Subscription.TrialOutcome.CONVERTED
        sub.save(update_fields=["trial_outcome"])
        if sub.interval == Interval.ANNUAL:
            _start_term(sub, day)
        _email(workspace, "trial_converted", f"sub:{sub.pk}", {"subscription": sub})
    else:
        sub.trial_outcome = Subscription.TrialOutcome.REVERTED
        _end(sub, day, Subscription.EndReason.TRIAL_ENDED)
        _start_free(workspace, day)
        _email(workspace, "trial_ended", f"sub:{sub.pk}", {"subscription": sub})
        _restore_lifted_lock(workspace, sub, day)


def _restore_lifted_lock(workspace: Workspace, sub: Subscription, day: date):
    """F7: a trial that ends without paying (T5 cancel or downgrade, T4 without a card) puts
    back the lock its upgrade lifted (F4), with its email; unless the lock changed since."""
    lifted = (
        workspace.lock_events.filter(cause=LockEvent.Cause.MOVED_TO_TEAM, on=sub.started_on)
        .order_by("-id")
        .first()
    )
    if lifted is None or workspace.lock_events.filter(pk__gt=lifted.pk).exists():
        return
    _set_lock(workspace, lifted.from_lock, cause=LockEvent.Cause.TRIAL_NOT_PAID, as_of=day)


def _end_term(workspace: Workspace, sub: Subscription):
    """K2, K4: at the term's end, Free if cancelled, monthly if asked, else renew."""
    day = sub.term_end
    if sub.cancel_at_term_end:
        _end(sub, day, Subscription.EndReason.CANCELLED)
        _start_free(workspace, day)
    elif sub.switch_to_monthly_at_term_end:
        _end(sub, day, Subscription.EndReason.INTERVAL_CHANGED)
        Subscription.objects.create(
            workspace=workspace,
            plan=sub.plan,
            interval=Interval.MONTHLY,
            started_on=day,
            paid_from=day,
        )
    else:
        _start_term(sub, day)


def _due_event(workspace: Workspace, as_of: date):
    """The earliest trial end or term end of the workspace on or before `as_of`."""
    sub = workspace.subscriptions.select_related("plan").filter(ended_on=None).first()
    if sub is None:
        return None
    if sub.trial_outcome == Subscription.TrialOutcome.RUNNING and sub.trial_end <= as_of:
        return sub.trial_end, _end_trial, sub
    if sub.interval == Interval.ANNUAL and sub.term_end and sub.term_end <= as_of:
        return sub.term_end, _end_term, sub
    return None


def _advance_workspace(workspace: Workspace, as_of: date):
    """Apply the workspace's trial and term ends dated up to `as_of`. A change dated D applies
    those before D first (the clock may not have caught up yet); those dated D itself come
    after every change of that day, when the clock processes D (D1)."""
    while event := _due_event(workspace, as_of):
        _, handler, sub = event
        handler(workspace, sub)


# --- Usage (U1, U2) --------------------------------------------------------------------------


def _closed_months(months) -> set[date]:
    """D2: the months whose close has run: their usage is billed and cannot change."""
    return set(MonthClose.objects.filter(month__in=months).values_list("month", flat=True))


def _check_usage(month: date, mtus) -> list[str]:
    problems = []
    if not isinstance(month, date) or month.day != 1:
        problems.append(f"the month must be the 1st of a month, not {month}")
    elif not EARLIEST_MONTH <= month <= LATEST_MONTH:
        problems.append(f"{month:%Y-%m} is not a month this system bills")
    elif _closed_months([month]):
        problems.append(f"{month:%Y-%m} is closed: its invoices are issued")
    if problem := _mtus_problem(mtus):
        problems.append(problem)
    return problems


@transaction.atomic
def record_usage(workspace: Workspace, *, month: date, mtus: int) -> Usage:
    """U1: the month's figure; a later report for the same month replaces it. I6: at most
    MAX_MTUS; D2: not for a month whose close has run."""
    problems = _check_usage(month, mtus)
    if problems:
        raise BillingError(f"Usage for {workspace.slug} was not recorded: " + "; ".join(problems))
    refuse_closed(workspace, "Recording usage")  # W1: its data stopped
    usage, _ = Usage.objects.update_or_create(
        workspace=workspace, month=month, defaults={"mtus": mtus}
    )
    return usage


# --- Locks (F1–F6) ---------------------------------------------------------------------------


def _set_lock(workspace, to_lock, *, cause, as_of, by=None, reason=""):
    """F6 for one workspace: see `_change_locks`."""
    return _change_locks([workspace], to_lock, cause=cause, as_of=as_of, by=by, reason=reason)[0]


def _change_locks(workspaces, to_lock, *, cause, as_of, month=None, by=None, reason=""):
    """F6: move `workspaces` (instances the caller goes on using) to `to_lock`, record each
    change with its cause, email each. Bulk statements; the month close's many changes go
    through `billing.locks.change_locks_in_bulk`, which reads no instances."""
    if not workspaces:
        return []
    cause_text = reason or LockEvent.Cause(cause).label
    events = [
        LockEvent(
            workspace=ws,
            on=as_of,
            month=month,
            from_lock=ws.lock,
            to_lock=to_lock,
            cause=cause,
            reason=reason,
            by=by,
        )
        for ws in workspaces
    ]
    for ws in workspaces:
        # W1: a closed workspace's data stays stopped whatever its lock.
        ws.lock = to_lock
        ws.data_flow = to_lock != Lock.LOCKED_DATA_STOPPED and ws.closed_on is None
        ws.lock_changed_on, ws.lock_cause = as_of, cause_text
    bulk_update_with_history(
        workspaces,
        Workspace,
        ["lock", "data_flow", "lock_changed_on", "lock_cause"],
        batch_size=2_000,
        default_user=by,
        default_change_reason=f"{Lock(to_lock).label}: {cause_text}",
    )
    LockEvent.objects.bulk_create(events, batch_size=2_000)
    template = "unlocked" if to_lock == Lock.UNLOCKED else "locked"
    queue_emails_rendered_when_sent(
        template, [(f"lock:{event.pk}", event.workspace.billing_email) for event in events]
    )
    return events


@transaction.atomic
def unlock_workspace(workspace: Workspace, *, by, reason: str, as_of: date):
    """F5: support unlocks by hand; the reason is kept. Strikes stay counted (F2)."""
    require_reason(reason, "Say why the workspace is being unlocked: the reason is kept.")
    refuse_processed(as_of, "An unlock")
    workspace = _locked(workspace)
    refuse_closed(workspace, "An unlock")
    if workspace.lock == Lock.UNLOCKED:
        raise BillingError(f"{workspace.name} is not locked.")
    return _set_lock(
        workspace,
        Lock.UNLOCKED,
        cause=LockEvent.Cause.MANUAL,
        as_of=as_of,
        by=by,
        reason=reason.strip(),
    )


def _record_strikes(month: date) -> int:
    """F1: a strike for each workspace on Free every day of `month` it existed, over its
    allowance; none for a workspace closed at the month's end (W1: its data stopped). Set-based:
    one query finds them, one insert writes them."""
    end = next_month(month)
    free = _plan("free")
    on_team = Subscription.objects.overlapping(month, end).filter(plan__code=Plan.Code.TEAM)
    over = (
        Usage.objects.filter(
            month=month, mtus__gt=free.included_mtus, workspace__created_on__lt=end
        )
        .exclude(workspace_id__in=on_team.values("workspace_id"))
        .exclude(workspace_id__in=closed_on_day(end - timedelta(days=1)))
        .values_list("workspace_id", "mtus")
    )
    sql, params = over.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"insert into {Strike._meta.db_table} (workspace_id, month, mtus) "
            f"select over.workspace_id, %s, over.mtus from ({sql}) as over where true "
            "on conflict do nothing",
            [month, *params],
        )
        return cursor.rowcount


def _apply_lock_rules(month: date, as_of: date) -> Counter:
    """F2, F3 at the close of `month`: lock from the six-month strike count, unlock a `locked`
    workspace without a strike; a lock never goes down otherwise."""
    counts = Counter()
    window = (
        Strike.objects.filter(
            month__gte=add_months(month, 1 - STRIKE_WINDOW_MONTHS), month__lte=month
        )
        .values("workspace_id")
        .annotate(n=Count("id"))
    )
    struck = Strike.objects.filter(month=month).values("workspace_id")
    targets = {
        row["workspace_id"]: Lock.LOCKED if row["n"] == 1 else Lock.LOCKED_DATA_STOPPED
        for row in window.filter(workspace_id__in=struck)
    }
    # Set-based (billing.locks): ids and levels only, however many workspaces change.
    to_raise = defaultdict(list)
    for ws_id, lock in (
        Workspace.objects.filter(pk__in=struck).order_by("pk").values_list("pk", "lock")
    ):
        if LOCK_SEVERITY[targets[ws_id]] > LOCK_SEVERITY[lock]:
            to_raise[targets[ws_id]].append(ws_id)
    for level, ids in sorted(to_raise.items()):
        change_locks_in_bulk(ids, level, cause=LockEvent.Cause.FREE_LIMIT, as_of=as_of, month=month)
        counts[f"locked:{level}"] = len(ids)
    # W1: a workspace closed at the month's end keeps its lock until it is reopened.
    closed = closed_on_day(next_month(month) - timedelta(days=1))
    to_unlock = list(
        Workspace.objects.filter(lock=Lock.LOCKED)
        .exclude(pk__in=struck)
        .exclude(pk__in=closed)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    change_locks_in_bulk(
        to_unlock, Lock.UNLOCKED, cause=LockEvent.Cause.UNDER_LIMIT, as_of=as_of, month=month
    )
    if to_unlock:
        counts["unlocked"] = len(to_unlock)
    return counts


# --- The month close and the billing clock (M1, F1–F3, I4, T4, T6, K2) ----------------------


# Workspaces per invoice chunk: large enough to amortise a chunk's fixed queries, small enough
# that its transaction is short and several workers share a month.
CLOSE_CHUNK_SIZE = 2_000


def close_month(
    month: date, *, as_of: date, dispatch=None, chunk_size=CLOSE_CHUNK_SIZE, threads: int = 1
) -> Counter:
    """Close `month` once: strikes and locks (F1–F3), then its invoices (M1–M3, K2) in chunks.

    Each step is recorded when done, so a close interrupted anywhere resumes where it stopped
    and a second or concurrent close repeats nothing (I4). With `dispatch`, the pending chunk
    ids are handed to it (Celery workers) and the close finishes with its last chunk; without,
    they run here, on `threads` threads (each with its own database connection: one prices a
    chunk while another writes, as two workers would).
    """
    counts = Counter()
    close, _ = MonthClose.objects.get_or_create(month=month, defaults={"closed_on": as_of})
    if close.finished:
        return counts
    with transaction.atomic():
        close = MonthClose.objects.select_for_update().get(pk=close.pk)
        if not close.locks_done:
            close.strikes = counts["strikes"] = _record_strikes(month)
            counts.update(_apply_lock_rules(month, as_of))
            close.locks_done, close.closed_on = True, as_of
        if not close.chunks_planned:
            _plan_chunks(close, chunk_size)
            close.chunks_planned = True
        close.save()
    pending = list(close.chunks.filter(done=False).values_list("pk", flat=True))
    if dispatch is not None and pending:
        dispatch(pending)
        counts["chunks_dispatched"] = len(pending)
        return counts
    if threads > 1 and len(pending) > 1:
        counts["invoices"] += _bill_chunks_on_threads(pending, threads)
    else:
        for chunk_id in pending:
            counts["invoices"] += bill_chunk(chunk_id)
    finish_close_if_complete(close.pk)
    return counts


def _bill_chunks_on_threads(chunk_ids: list[int], threads: int) -> int:
    """`bill_chunk` for each id on `threads` threads; the first error is raised once all have
    stopped (chunks already billed stay billed: I4, the close resumes)."""
    remaining, lock = iter(chunk_ids), threading.Lock()
    issued, errors = [], []

    def work():
        try:
            while True:
                with lock:
                    chunk_id = next(remaining, None)
                if chunk_id is None or errors:
                    return
                issued.append(bill_chunk(chunk_id))
        except BaseException as exc:  # raised in the caller's thread below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    workers = [threading.Thread(target=work, name=f"close-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return sum(issued)


def _plan_chunks(close: MonthClose, chunk_size: int):
    """Split the workspaces with paid Team days in the month into ranges of `chunk_size`."""
    ids = list(
        Subscription.objects.paid_overlapping(close.month, next_month(close.month))
        .order_by("workspace_id")
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    MonthCloseChunk.objects.bulk_create(
        MonthCloseChunk(
            close=close,
            first_workspace_id=ids[start],
            last_workspace_id=ids[min(start + chunk_size, len(ids)) - 1],
        )
        for start in range(0, len(ids), chunk_size)
    )


def bill_chunk(chunk_id: int) -> int:
    """Issue one chunk's invoices and mark it done, in one transaction; a chunk already done
    (a redelivered task) or gone issues nothing. A workspace whose invoice cannot be made is
    set aside with its error (I6) and every other invoice is issued. Returns how many invoices
    it issued."""
    with transaction.atomic(), gc_paused():
        chunk = (
            MonthCloseChunk.objects.select_for_update()
            .select_related("close")
            .filter(pk=chunk_id)
            .first()
        )
        if chunk is None or chunk.done:
            return 0
        issued, problems = _issue_setting_aside(
            invoicing.month_close_drafts(
                chunk.close.month,
                workspace_range=(chunk.first_workspace_id, chunk.last_workspace_id),
            )
        )
        _set_aside(chunk.close, problems, on=chunk.close.closed_on)
        chunk.invoices = len(issued)
        chunk.done = True
        chunk.save(update_fields=["invoices", "done"])
        return chunk.invoices


def _issue_setting_aside(drafts) -> tuple[list[Invoice], dict[int, str]]:
    """I6: issue what can be issued; the rest comes back as {workspace id: error}."""
    problems = {}

    def set_aside(draft, exc):
        error = str(exc) if isinstance(exc, BillingError) else f"{type(exc).__name__}: {exc}"
        problems.setdefault(draft.subscription.workspace_id, error)

    return invoicing.issue(drafts, set_aside=set_aside), problems


def _set_aside(close: MonthClose, problems: dict[int, str], *, on: date):
    for workspace_id, error in problems.items():
        logger.warning("month close %s: workspace %s set aside: %s", close, workspace_id, error)
        SetAsideInvoice.objects.update_or_create(
            close=close,
            workspace_id=workspace_id,
            defaults={"error": error, "resolved_on": None},
            create_defaults={"error": error, "first_seen_on": on},
        )


def retry_set_aside(*, as_of: date) -> Counter:
    """I6: try again each workspace a close set aside; once its cause is fixed its invoice is
    issued (I4: never a second one) and the entry is resolved."""
    counts = Counter()
    for entry in SetAsideInvoice.objects.filter(resolved_on=None).select_related("close"):
        with transaction.atomic():
            _locked(Workspace(pk=entry.workspace_id))
            issued, problems = _issue_setting_aside(
                invoicing.month_close_drafts(entry.close.month, workspace_ids=[entry.workspace_id])
            )
            if problems:
                _set_aside(entry.close, problems, on=as_of)
                continue
            entry.resolved_on = as_of
            entry.save(update_fields=["resolved_on"])
            MonthClose.objects.filter(pk=entry.close_id).update(
                invoices=F("invoices") + len(issued)
            )
            counts["set_aside_billed"] += len(issued)
    return counts


def finish_close_if_complete(close_id: int) -> MonthClose | None:
    """Mark the close finished once its last chunk is done; the close when this call did."""
    with transaction.atomic():
        close = MonthClose.objects.select_for_update().get(pk=close_id)
        if close.finished or not close.chunks_planned or close.chunks.filter(done=False).exists():
            return None
        close.invoices = close.chunks.aggregate(n=Sum("invoices"))["n"] or 0
        close.finished = True
        close.save(update_fields=["invoices", "finished", "updated_at"])
        return close


def _next_month_to_close(as_of: date) -> date | None:
    finished = MonthClose.objects.filter(finished=True)
    last = finished.order_by("-month").values_list("month", flat=True).first()
    if last is not None:
        month = next_month(last)
    else:
        first_day = Workspace.objects.aggregate(first=Min("created_on"))["first"]
        if first_day is None:
            return None
        month = month_start(first_day)
    return month if next_month(month) <= as_of else None


def _next_subscription_event(as_of: date):
    trial = (
        Subscription.objects.filter(
            trial_outcome=Subscription.TrialOutcome.RUNNING, trial_end__lte=as_of
        )
        .order_by("trial_end", "id")
        .values_list("trial_end", "workspace_id")
        .first()
    )
    term = (
        Subscription.objects.filter(ended_on=None, interval=Interval.ANNUAL, term_end__lte=as_of)
        .order_by("term_end", "id")
        .values_list("term_end", "workspace_id")
        .first()
    )
    events = [e for e in (trial, term) if e]
    return min(events) if events else None


def _first_day_to_process() -> date | None:
    last = last_processed_day()
    if last is not None:
        return last + timedelta(days=1)
    return Workspace.objects.aggregate(first=Min("created_on"))["first"]


def run_billing(*, as_of: date, dispatch=None) -> dict:
    """D1, D4: process every day from the day after the last processed one through `as_of`,
    each in turn and whole: the month closes due that day (M1, F1–F3), the trial ends (T4) and
    term ends (K2) dated that day, the daily steps of the apps above (coupon expiries, credit
    lapses, renewal reviews) and the trial reminders (T6). Each day is recorded when done, so
    one call over a range does what one call a day does, and a day already processed is a no-op.

    With `dispatch` (the Celery path) a month close's chunks go to workers and the run stops
    there, before recording that day; the close's last chunk starts the run again.
    """
    counts = Counter()
    day = _first_day_to_process()
    first = day
    while day is not None and day <= as_of:
        # A month close falls due on a 1st; the first day looks for any left unfinished.
        counts.update(_process_day(day, dispatch, closes=day.day == 1 or day == first))
        if counts["waiting_for_close"]:
            return dict(counts)
        mark_processed(day)
        day += timedelta(days=1)
    counts.update(retry_set_aside(as_of=as_of))
    return {key: value for key, value in counts.items() if value}


def _process_day(day: date, dispatch, *, closes: bool) -> Counter:
    counts = Counter()
    while closes and (month := _next_month_to_close(day)):
        result = close_month(month, as_of=day, dispatch=dispatch)
        counts.update(result)
        if result["chunks_dispatched"]:
            counts["waiting_for_close"] = 1
            return counts
        counts["months_closed"] += 1
    while event := _next_subscription_event(day):
        with transaction.atomic():
            workspace = _locked(Workspace(pk=event[1]))
            _advance_workspace(workspace, event[0])
        counts["subscription_events"] += 1
    for step in daily_steps():
        counts.update(step(day))
    counts["trial_reminders"] += send_trial_reminders(as_of=day)
    return counts


def send_trial_reminders(*, as_of: date) -> int:
    """T6: three days before the end date, once, to a workspace without a payment method; a
    reminder not sent by the end date is never sent."""
    due = (
        Subscription.objects.filter(
            trial_outcome=Subscription.TrialOutcome.RUNNING,
            ended_on=None,
            trial_reminder_sent_on=None,
            trial_end__gt=as_of,
            trial_end__lte=as_of + timedelta(days=TRIAL_REMINDER_DAYS),
        )
        .exclude(Exists(PaymentMethod.objects.on(as_of).filter(workspace=OuterRef("workspace"))))
        .select_related("workspace")
    )
    sent = 0
    for sub in due:
        with transaction.atomic():
            claimed = Subscription.objects.filter(pk=sub.pk, trial_reminder_sent_on=None).update(
                trial_reminder_sent_on=as_of
            )
            if claimed:
                _email(sub.workspace, "trial_reminder", f"sub:{sub.pk}", {"subscription": sub})
                sent += 1
    return sent


def preview_invoice(workspace: Workspace, *, month: date, as_of: date):
    """The invoice the close of `month` would issue for the workspace if nothing changed
    before it, from what is recorded when asked (`as_of`, e.g. usage so far); nothing is
    written. None when the close would issue none."""
    drafts = invoicing.month_close_drafts(month_start(month), workspace_ids=[workspace.pk])
    previews = invoicing.preview(drafts)
    return previews[-1] if previews else None


# --- Invoices after issue (I3, K3) ------------------------------------------------------------


def _locked_invoice(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


@transaction.atomic
def void_invoice(invoice: Invoice, *, by, reason: str, as_of: date) -> Invoice:
    """I3: an issued invoice is never edited or deleted; finance may void it, with a reason."""
    require_reason(reason, "Say why the invoice is voided: the reason is kept.")
    invoice = _locked_invoice(invoice)
    if invoice.status == Invoice.Status.VOID:
        raise BillingError(f"{invoice.number} is already void.")
    invoice.status, invoice.voided_on, invoice.void_reason = (
        Invoice.Status.VOID,
        as_of,
        reason.strip(),
    )
    save_with_reason(invoice, f"Voided: {reason.strip()}", by=by)
    return invoice


def refundable_amount(invoice: Invoice) -> Decimal:
    """K3: what is left unrefunded on the invoice (approved credit notes taken off)."""
    approved = invoice.credit_notes.filter(status=CreditNote.Status.APPROVED).aggregate(
        total=Sum("amount")
    )["total"]
    # To the cent: SQLite sums decimals as floats ("100.0000000000000").
    return (invoice.total - (approved or Decimal("0.00"))).quantize(Decimal("0.01"))


def _check_refund(invoice: Invoice, amount: Decimal):
    if invoice.status == Invoice.Status.VOID:
        raise BillingError(f"{invoice.number} is void: there is nothing to refund.")
    left = refundable_amount(invoice)
    if amount > left:
        raise BillingError(
            f"A credit note on {invoice.number} can be at most ${left:,.2f} (what is left "
            f"unrefunded), not ${amount:,.2f}."
        )


@transaction.atomic
def request_credit_note(invoice: Invoice, *, by, amount, reason: str, as_of: date) -> CreditNote:
    """K3: support asks for a refund with a reason; finance decides."""
    try:
        amount = Decimal(str(amount))
    except ArithmeticError:
        raise BillingError(f"“{amount}” is not an amount of money.") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise BillingError("A credit note is a positive amount in dollars and cents.")
    require_reason(reason, "Say why the refund is requested: finance sees the reason.")
    invoice = _locked_invoice(invoice)
    _check_refund(invoice, amount)
    note = CreditNote(
        invoice=invoice, amount=amount, reason=reason.strip(), requested_by=by, requested_on=as_of
    )
    save_with_reason(note, "Requested", by=by)
    return note


@transaction.atomic
def decide_credit_note(note: CreditNote, *, by, approve: bool, as_of: date, note_text: str = ""):
    """K3: finance approves (never above what is left unrefunded) or rejects a request."""
    invoice = _locked_invoice(note.invoice)  # serialises approvals on one invoice
    note = CreditNote.objects.select_for_update().get(pk=note.pk)
    if note.status != CreditNote.Status.REQUESTED:
        raise BillingError(f"This credit note was already {note.status}.")
    if approve:
        _check_refund(invoice, note.amount)
    note.status = CreditNote.Status.APPROVED if approve else CreditNote.Status.REJECTED
    note.decided_by, note.decided_on, note.decision_note = by, as_of, note_text
    save_with_reason(note, f"{note.status.capitalize()} {note_text}".strip(), by=by)
    return note


def _email(workspace: Workspace, template: str, object_key: str, context: dict):
    queue_email(
        kind=template,
        object_key=object_key,
        to=workspace.billing_email,
        template=template,
        context={"workspace": workspace, **context},
    )
