"""Workspaces and their subscriptions: sign-up, details, payment methods, plan and interval
changes (T1–T5, K1, K2, K4, F4, F7), and the trial and term ends the billing clock applies to
one subscription (T4, T6, K2).

Services take the date they act on (`as_of`) and never read the clock. They lock the
workspace row first (`Workspace.objects.for_change`), so two agents acting on one workspace at
once take turns.
"""

from datetime import date, timedelta
from itertools import groupby
from operator import attrgetter

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Lower
from django_countries import countries

from billing import invoicing
from billing.audit import because, by_the_clock, records_why, require_reason, save_with_reason
from billing.clock import refuse_issued_already, refuse_processed, take_in_date_order
from billing.closed_workspaces import refuse_closed
from billing.contact_details import check_email, check_name, hidden_character
from billing.emails import queue_email
from billing.errors import (
    BillingError,
    InvalidPlanChange,
    PaymentMethodRequired,
    refuse_problems,
)
from billing.formatting import billed, day, last_day
from billing.locks import set_lock
from billing.models import (
    Interval,
    Lock,
    LockEvent,
    PaymentMethod,
    Plan,
    PlanTerms,
    SetAsideInvoice,
    Subscription,
    Workspace,
    WorkspaceClosure,
    in_force_on,
)
from billing.months import add_year, month_start
from billing.tax import check_business_region, region_is_a_code
from billing.turns import take_turns

# T6: the reminder goes out this many days before the trial's end date.
TRIAL_REMINDER_DAYS = 3
BRAND_LENGTH = PaymentMethod._meta.get_field("brand").max_length


def _plan(code: str) -> Plan:
    return Plan.objects.get(code=code)


def _free_terms(day: date) -> PlanTerms:
    """What the Free plan gives on `day`, as a trial's emails state it."""
    return PlanTerms.objects.of(day, plan__code=Plan.Code.FREE)


def current_subscription(workspace: Workspace) -> Subscription:
    return workspace.subscriptions.select_related("plan").get(ended_on=None)


def _check_interval(interval: str):
    if interval not in Interval.values:
        raise BillingError(f"“{interval}” is not a billing interval: use monthly or annual.")


def _workspace_details(
    problems: list[str], name, business_country, business_region, billing_email
) -> dict:
    """A workspace's details as they are kept; what is wrong with them goes to `problems` (X1:
    where tax depends on the region, it is one of the country's codes)."""
    name = check_name(name, "workspace name", problems, missing="The workspace needs a name.")
    country = str(business_country or "").strip().upper()
    if country not in countries:
        problems.append(f"“{business_country}” is not an ISO 3166-1 country code.")
    return {
        "name": name,
        "business_country": country,
        "business_region": check_business_region(country, business_region, problems),
        "billing_email": check_email(
            billing_email, problems, label="a valid billing email address"
        ),
    }


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
    problems = []
    details = _workspace_details(problems, name, business_country, business_region, billing_email)
    try:
        validate_slug(slug)
    except ValidationError:
        problems.append(f"“{slug}” is not a valid slug (letters, digits, - and _ only).")
    # A form sent twice at once: the second waits for the first's commit and sees its slug.
    take_turns("workspace slug", str(slug).lower())
    taken = (
        Workspace.objects.alias(slug_lower=Lower("slug"))
        .filter(slug_lower=str(slug).lower())
        .only("name", "slug")
        .first()
    )
    if taken is not None:
        problems.append(
            f"The slug “{slug}” is already used by {taken}: a slug is one workspace's in any "
            "capitals."
        )
    if plan not in Plan.Code.values:
        problems.append(f"“{plan}” is not a plan: use free or team.")
    if interval not in Interval.values:
        problems.append(f"“{interval}” is not a billing interval: use monthly or annual.")
    refuse_problems(problems)
    refuse_processed(as_of, "A sign-up")
    workspace = Workspace(
        **details,
        slug=slug,
        created_on=as_of,
        payment_method_added_on=as_of if has_payment_method else None,
    )
    save_with_reason(workspace, "Created")
    if has_payment_method:
        PaymentMethod.objects.create(workspace=workspace, added_on=as_of)
    with because("Signed up"):
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
    as_of: date,
) -> Workspace:
    """Edit a workspace's name, business location (X1: it decides tax) and billing email, with
    the checks `create_workspace` applies and the why kept (R4). A new location is a dated
    change (D2): the invoices the clock issues from `as_of` on are taxed there, and those it
    still owes for earlier days where the business was then (D4): they are issued first (the
    trial and term ends before `as_of`; a close still owed makes it wait, as does an invoice a
    close set aside), and an invoice issued already for `as_of` or later refuses it (I3).

    X1, I6: a region kept before it had to be a code tax depends on ("ONT", "Narnia") is
    corrected, not moved from: what the clock could not issue there (an invoice a close set
    aside, a skipped trial or term end) was never taxed anywhere, and is taxed where the
    business is, so the correction does not wait for it; the trial and term ends owed are
    issued with it."""
    require_reason(reason, "Say why the workspace's details change: the reason is kept.")
    problems = []
    details = _workspace_details(problems, name, business_country, business_region, billing_email)
    refuse_problems(problems)
    workspace = Workspace.objects.for_change(workspace)
    refuse_closed(workspace, "Editing the details")
    location = (str(workspace.business_country), workspace.business_region)
    moved = (details["business_country"], details["business_region"]) != location
    correction = moved and not region_is_a_code(*location)
    if moved:
        what = "A change of business location"
        refuse_processed(as_of, what)
        refuse_issued_already(workspace.invoices, as_of, what)
        if not correction:
            refuse_set_aside_pending(workspace, as_of, what)
        take_in_date_order(workspace, as_of, what)
        if not correction:
            advance_workspace(workspace, as_of - timedelta(days=1))
    for field, value in details.items():
        setattr(workspace, field, value)
    save_with_reason(workspace, f"Details edited: {reason.strip()}", by=by)
    if correction:
        advance_workspace(workspace, as_of - timedelta(days=1))
    return workspace


@transaction.atomic
def add_payment_method(workspace: Workspace, *, as_of: date, brand: str = "", last4: str = ""):
    """Record that a card is on file from `as_of` (T2, T4), replacing the one on file. Kept as
    dated history (D3); only its brand and last four digits are kept, for display."""
    refuse_processed(as_of, "A payment method change")
    workspace = Workspace.objects.for_change(workspace)
    refuse_closed(workspace, "A payment method change")
    take_in_date_order(workspace, as_of, "A payment method change")
    brand, last4 = brand.strip(), last4.strip()
    if last4 and not (len(last4) == 4 and last4.isascii() and last4.isdigit()):
        raise BillingError("The last four digits of the card must be four digits, 0 to 9.")
    if len(brand) > BRAND_LENGTH:
        raise BillingError(f"A card's brand is at most {BRAND_LENGTH} characters.")
    if problem := hidden_character(brand, "card's brand"):
        raise BillingError(problem)
    # A form sent twice (a double click, a page sent again) records the card once (R4).
    current = workspace.payment_methods.filter(removed_on=None).first()
    if current is not None and (current.brand, current.last4) == (brand, last4):
        raise BillingError(f"{workspace.name} has this card on file already: {current}.")
    _end_card(workspace, as_of)
    PaymentMethod.objects.create(workspace=workspace, brand=brand, last4=last4, added_on=as_of)
    workspace.payment_method_added_on = as_of
    workspace.card_brand, workspace.card_last4 = brand, last4
    save_with_reason(workspace, "Payment method added")
    return workspace


@transaction.atomic
@records_why("Payment method removed")
def remove_payment_method(workspace: Workspace, *, as_of: date):
    """The card on file is removed from `as_of` on (D3): T4 then sees none on later days."""
    refuse_processed(as_of, "A payment method change")
    workspace = Workspace.objects.for_change(workspace)
    refuse_closed(workspace, "A payment method change")
    take_in_date_order(workspace, as_of, "A payment method change")
    # T2, D4: a move from Free to Team that day needed the card on file that day; removed, the
    # day would read Team without one, where the other order refuses the move.
    if workspace.subscriptions.filter(
        ended_on=as_of, end_reason=Subscription.EndReason.UPGRADED
    ).exists():
        raise BillingError(
            f"Removing {workspace.name}'s payment method dated {day(as_of)} is refused: it moved "
            "from Free to Team that day, which needs one on file that day (T2). Remove it on "
            f"{day(as_of + timedelta(days=1))} or later."
        )
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
    trial_days = PlanTerms.objects.of(as_of, plan=team).trial_days
    if not had_team and trial_days:
        trial_end = as_of + timedelta(days=trial_days)
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


def stop_subscription(sub: Subscription, day: date, reason: str):
    sub.ended_on, sub.end_reason = day, reason
    sub.save(update_fields=["ended_on", "end_reason", "trial_outcome"])


def start_free(workspace: Workspace, day: date):
    Subscription.objects.create(workspace=workspace, plan=_plan("free"), started_on=day)


def _ready_for_change(workspace: Workspace, as_of: date, what: str, *, bills: bool = True):
    """Where every plan or interval change starts (D2, W1): the workspace locked, brought up to
    the day before `as_of` (trial and term ends applied), and its current subscription.
    `bills`: the change may issue an invoice (`refuse_set_aside_pending`)."""
    refuse_processed(as_of, what)
    workspace = Workspace.objects.for_change(workspace)
    refuse_closed(workspace, what)
    take_in_date_order(workspace, as_of, what)
    if bills:
        refuse_set_aside_pending(workspace, as_of, what)
    advance_workspace(workspace, as_of - timedelta(days=1))
    current = current_subscription(workspace)
    if current.started_on > as_of:  # entered after a change dated later (D2 allows both)
        raise BillingError(
            f"{what} for {workspace.name} cannot be dated {day(as_of)}: its current "
            f"subscription starts on {day(current.started_on)}, after it."
        )
    return workspace, current


def refuse_set_aside_pending(workspace: Workspace, as_of: date, what: str):
    """I6, I1, C5: a change that may issue an invoice (or end what an invoice draws on) waits
    while a close has set aside the workspace's invoice of an earlier month: issued later, it
    would come after this one's in number, and a `once` coupon or credit owed to it would go
    to this one or be gone."""
    waiting = (
        SetAsideInvoice.objects.filter(
            workspace=workspace, resolved_on=None, close__month__lt=month_start(as_of)
        )
        .select_related("close")
        .first()
    )
    if waiting:
        raise BillingError(
            f"{what} for {workspace.name} must wait: its invoice for "
            f"{waiting.close.month:%B %Y} was set aside by the month close ({waiting.error}). "
            "Each daily run of the billing clock (shortly after midnight UTC) tries it again and "
            "issues it once that cause is fixed, as does finance's “Try the set-aside invoices "
            "again now” on the month close's page; then try again."
        )


@transaction.atomic
def unlock_workspace(workspace: Workspace, *, by, reason: str, as_of: date):
    """F5: support unlocks by hand; the reason is kept. Strikes stay counted (F2). D4: as any
    dated change, after the trial and term ends dated before it (a trial that ended unpaid has
    put its lock back, F7, whether or not the clock has got there yet)."""
    require_reason(reason, "Say why the workspace is being unlocked: the reason is kept.")
    workspace, _ = _ready_for_change(workspace, as_of, "An unlock", bills=False)
    if workspace.lock == Lock.UNLOCKED:
        raise BillingError(f"{workspace.name} is not locked.")
    return set_lock(
        workspace,
        Lock.UNLOCKED,
        cause=LockEvent.Cause.MANUAL,
        as_of=as_of,
        by=by,
        reason=reason.strip(),
    )


@records_why("Moved to Team")
@transaction.atomic
def change_to_team(workspace: Workspace, *, interval: str = "monthly", as_of: date):
    """Upgrade from Free (T1 trial or paid, T2 card needed, F4 unlock at once)."""
    _check_interval(interval)
    workspace, current = _ready_for_change(workspace, as_of, "A plan change")
    if current.is_team:
        if current.interval == Interval.ANNUAL and current.cancel_at_term_end:
            # K4: the interval asked for is kept too; monthly starts when the term ends.
            current.cancel_at_term_end, current.cancel_withdrawn_on = False, as_of
            current.switch_to_monthly_at_term_end = interval == Interval.MONTHLY
            if current.switch_to_monthly_at_term_end:
                why = f"Cancellation withdrawn: moves to monthly billing on {day(current.term_end)}"
            else:
                why = "Cancellation withdrawn: the annual term will renew"
            save_with_reason(current, why)
            return current
        raise InvalidPlanChange(
            f"{workspace.name} is already on Team ({current.interval}). To change how often it "
            "is billed, change the billing interval instead."
        )
    if not workspace.payment_method_on(as_of):
        raise PaymentMethodRequired(
            "A payment method is needed to move from Free to Team. Add one first."
        )
    stop_subscription(current, as_of, Subscription.EndReason.UPGRADED)
    sub = _start_team(workspace, interval=interval, as_of=as_of)
    if workspace.lock != Lock.UNLOCKED:
        _lift_for_move(workspace, sub, as_of)
    return sub


def _lift_for_move(workspace: Workspace, sub: Subscription, day: date):
    """F4: a move to Team lifts the lock at once, naming the subscription (F7: its end unpaid
    puts the lock back)."""
    set_lock(
        workspace, Lock.UNLOCKED, cause=LockEvent.Cause.MOVED_TO_TEAM, as_of=day, subscription=sub
    )


@records_why("Cancelled or moved to Free")
@transaction.atomic
def change_to_free(workspace: Workspace, *, as_of: date):
    """Cancel or downgrade. T5: during the trial, never charged. K1: monthly ends at once with
    a final invoice. K2: annual runs to the end of its term, no refund."""
    workspace, current = _ready_for_change(workspace, as_of, "A plan change")
    if not current.is_team:
        raise InvalidPlanChange(f"{workspace.name} is already on Free.")
    # T5: during the trial, its end date included: a day's changes come before T4 (D1).
    if current.trial_outcome == Subscription.TrialOutcome.RUNNING:
        current.trial_outcome = Subscription.TrialOutcome.CANCELLED
        stop_subscription(current, as_of, Subscription.EndReason.CANCELLED)
        start_free(workspace, as_of)
        _restore_lifted_lock(workspace, current, as_of)
    elif current.interval == Interval.ANNUAL:
        if current.cancel_at_term_end:
            raise InvalidPlanChange(
                f"{workspace.name}'s annual term is already cancelled: it runs to "
                f"{last_day(current.term_end)}, then Free."
            )
        current.cancel_at_term_end, current.cancelled_on = True, as_of
        current.cancel_withdrawn_on = None  # D3: only the last cancellation's days are kept
        save_with_reason(current, f"Cancelled: moves to Free on {day(current.term_end)}")
    else:
        stop_subscription(current, as_of, Subscription.EndReason.CANCELLED)
        _issue_final_invoice(current, as_of)
        start_free(workspace, as_of)
        if current.paid_from >= as_of:  # F7: ended before its first paid day, paying nothing
            _restore_lifted_lock(workspace, current, as_of)
    return current_subscription(workspace)


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
    workspace, current = _ready_for_change(workspace, as_of, "An interval change")
    if not current.is_team:
        raise InvalidPlanChange("Only a Team subscription has a billing interval to change.")
    # As in `change_to_free`: on the end date too, T4 then goes on with the new interval.
    if current.trial_outcome == Subscription.TrialOutcome.RUNNING:
        if current.interval == interval:
            raise InvalidPlanChange(
                f"{workspace.name}'s trial already continues as {interval} Team."
            )
        # D3: the interval it continued on before this day, unless already changed this day.
        if current.interval_chosen_on != as_of:
            current.interval_before, current.interval_chosen_on = current.interval, as_of
        current.interval = interval
        save_with_reason(current, f"Trial will continue as {interval}")
        return current
    if current.cancel_at_term_end:
        # K2: a cancelled term ends on Free (`_end_term` reads the cancellation first), so a
        # move to monthly recorded now would never happen. Withdrawing it is a plan change.
        raise InvalidPlanChange(
            f"{workspace.name}'s annual term is cancelled: it ends on {day(current.term_end)} "
            f"and the workspace moves to Free. To stay on Team after it, {billed(interval)}, "
            "change the plan to Team with that interval: that withdraws the cancellation (K4)."
        )
    if current.interval == interval:
        if current.switch_to_monthly_at_term_end:
            current.switch_to_monthly_at_term_end = False
            save_with_reason(current, "Stays annual at the end of the term")
            return current
        raise InvalidPlanChange(f"{workspace.name} is already {billed(interval)}.")
    if interval == Interval.MONTHLY:
        current.switch_to_monthly_at_term_end = True
        save_with_reason(current, f"Moves to monthly billing on {day(current.term_end)}")
        return current
    stop_subscription(current, as_of, Subscription.EndReason.INTERVAL_CHANGED)
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


def _end_trial(workspace: Workspace, sub: Subscription):
    """T4: on the end date, paid Team with a card on file that day, else Free that day."""
    ended = sub.trial_end
    if workspace.payment_method_on(ended):
        with by_the_clock(f"Trial ended {day(ended)} with a card on file: paid Team (T4)"):
            sub.trial_outcome = Subscription.TrialOutcome.CONVERTED
            sub.save(update_fields=["trial_outcome"])
            if sub.interval == Interval.ANNUAL:
                _start_term(sub, ended)
        _email(workspace, "trial_converted", f"sub:{sub.pk}", {"subscription": sub})
    else:
        with by_the_clock(f"Trial ended {day(ended)} without a card: back to Free (T4)"):
            sub.trial_outcome = Subscription.TrialOutcome.REVERTED
            stop_subscription(sub, ended, Subscription.EndReason.TRIAL_ENDED)
            start_free(workspace, ended)
            context = {"subscription": sub, "free_plan": _free_terms(ended)}
            _email(workspace, "trial_ended", f"sub:{sub.pk}", context)
            _restore_lifted_lock(workspace, sub, ended)


def locks_for_changes_entered_ahead(day: date) -> dict:
    """F4, F7, W1, D4, a daily step of the billing clock, after the day's close and subscription
    events: what a change dated `day` does to the lock, for a change entered before the clock
    reached that day's close or strike (a clock that never ran refuses nothing: history being
    entered), when it found no lock to act on then. Entered on its day, the change acted itself
    and there is nothing left to do here, so a run day by day and one run at the end agree.

    A move from Free to Team lifts the lock at once (F4); a Team subscription ended before its
    first paid day puts back the lock its upgrade lifted (F7); a reopening unlocks (W1). The
    day's moves and ends are replayed in the order they were entered, so Team, Free and Team
    again on one day ends on paid Team, unlocked, with the same lock changes as by day."""
    team = Subscription.objects.filter(workspace=OuterRef("workspace"), plan__code=Plan.Code.TEAM)
    days_subscriptions = (
        Subscription.objects.filter(Q(started_on=day) | Q(ended_on=day))
        .filter(Exists(team.filter(Q(started_on=day) | Q(ended_on=day))))
        # A lock changed by something dated later was entered ahead too, and acted itself then:
        # the row's lock is the day's only when nothing dated after it changed it.
        .exclude(Exists(LockEvent.objects.filter(workspace=OuterRef("workspace"), on__gt=day)))
        .select_related("workspace", "plan")
        .order_by("workspace_id", "pk")
    )
    unlocked = 0
    for _, subscriptions in groupby(days_subscriptions, key=attrgetter("workspace_id")):
        before = workspace = None
        for sub in subscriptions:
            if workspace is None:
                workspace = sub.workspace  # one copy: each lock change moves its row
                # Entered on its day, a move lifted the lock itself (or found none to lift);
                # the day's close, after it, may have locked it again.
                closed = workspace.lock_events.filter(on=day, month__isnull=False)
                after_close = closed.aggregate(last=Max("pk"))["last"] or 0
            moved = sub.is_team and sub.started_on == day and not _an_interval_change(before, day)
            lifted = sub.lifted_locks.filter(pk__gt=after_close)
            locked = workspace.lock != Lock.UNLOCKED and workspace.closed_on is None
            if moved and locked and not lifted.exists():
                _lift_for_move(workspace, sub, day)
                unlocked += 1
            if sub.is_team and sub.ended_on == day and _ended_unpaid(sub):
                _restore_lifted_lock(workspace, sub, day)
            before = sub
    reopened = (
        WorkspaceClosure.objects.filter(reopened_on=day, workspace__closed_on=None)
        .exclude(workspace__lock=Lock.UNLOCKED)
        .exclude(Exists(LockEvent.objects.filter(workspace=OuterRef("workspace"), on__gt=day)))
        .select_related("workspace", "reopened_by")
        .order_by("workspace_id")
    )
    for closure in reopened:
        set_lock(
            closure.workspace,
            Lock.UNLOCKED,
            cause=LockEvent.Cause.REOPENED,
            as_of=day,
            by=closure.reopened_by,
            reason=closure.reopen_reason,
        )
    return {"moves_entered_ahead_unlocked": unlocked} if unlocked else {}


def _an_interval_change(before: Subscription | None, day: date) -> bool:
    """K4: a Team subscription started on `day` right after a Team one ended that day (a move
    to annual, a term's end moving to monthly) is no move from Free: nothing was locked."""
    return before is not None and before.is_team and before.ended_on == day


def _ended_unpaid(sub: Subscription) -> bool:
    """F7: a trial cancelled, or a paid upgrade ended before its first paid day; a closure is
    no such end (W1)."""
    return sub.end_reason != Subscription.EndReason.CLOSED and (
        sub.trial_outcome == Subscription.TrialOutcome.CANCELLED
        or (sub.paid_from is not None and sub.paid_from >= sub.ended_on)
    )


def _lifted_lock(workspace: Workspace, sub: Subscription, *, dated_to: date = None):
    """F7: the lock `sub`'s upgrade lifted (F4), as its lock event, if the lock has not changed
    since (of the changes dated up to `dated_to`, if given); else None."""
    lifted = sub.lifted_locks.order_by("-id").first()
    if lifted is None:
        return None
    since = workspace.lock_events.filter(pk__gt=lifted.pk)
    if dated_to is not None:
        since = since.filter(on__lte=dated_to)
    return None if since.exists() else lifted


def _restore_lifted_lock(workspace: Workspace, sub: Subscription, day: date):
    """F7: a trial that ends without paying (T5 cancel or downgrade, T4 without a card), or a
    paid upgrade cancelled before its first paid day, puts back the lock its upgrade lifted
    (F4), with its email; unless the lock changed since."""
    if lifted := _lifted_lock(workspace, sub):
        set_lock(workspace, lifted.from_lock, cause=LockEvent.Cause.TRIAL_NOT_PAID, as_of=day)


def _end_term(workspace: Workspace, sub: Subscription):
    """K2, K4: at the term's end, Free if cancelled, monthly if asked, else renew."""
    ended = sub.term_end
    if sub.cancel_at_term_end:
        with by_the_clock(f"Annual term ended {day(ended)}, cancelled: Free from then (K2)"):
            stop_subscription(sub, ended, Subscription.EndReason.CANCELLED)
            start_free(workspace, ended)
    elif sub.switch_to_monthly_at_term_end:
        with by_the_clock(f"Annual term ended {day(ended)}: monthly billing from then (K4)"):
            stop_subscription(sub, ended, Subscription.EndReason.INTERVAL_CHANGED)
            Subscription.objects.create(
                workspace=workspace,
                plan=sub.plan,
                interval=Interval.MONTHLY,
                started_on=ended,
                paid_from=ended,
            )
    else:
        with by_the_clock(f"Annual term renewed {day(ended)} (K2)"):
            _start_term(sub, ended)


def _events(sub: Subscription) -> list:
    """The subscription's trial end and term end still to apply, (day, apply), trial first."""
    events = []
    if sub.trial_outcome == Subscription.TrialOutcome.RUNNING and sub.trial_end:
        events.append((sub.trial_end, _end_trial))
    if sub.interval == Interval.ANNUAL and sub.term_end:
        events.append((sub.term_end, _end_term))
    return events


def _due_event(workspace: Workspace, as_of: date):
    """The earliest trial end or term end of the workspace on or before `as_of`."""
    sub = workspace.subscriptions.select_related("plan").filter(ended_on=None).first()
    if sub is None:
        return None
    for on, apply in _events(sub):
        if on <= as_of:
            return on, apply, sub
    return None


def next_event_day(workspace: Workspace) -> date | None:
    """The first day from which `advance_workspace` has a trial or term end to apply, or None:
    one read for a caller that steps through many days (the forecast), true until an event is
    applied."""
    sub = workspace.subscriptions.filter(ended_on=None).first()
    return min((on for on, _ in _events(sub)), default=None) if sub else None


def advance_workspace(workspace: Workspace, as_of: date):
    """Apply the workspace's trial and term ends dated up to `as_of`. A change dated D applies
    those before D first (the clock may not have caught up yet); those dated D itself come
    after every change of that day, when the clock processes D (D1)."""
    while event := _due_event(workspace, as_of):
        _, handler, sub = event
        with invoicing.clock_event():
            handler(workspace, sub)


def send_trial_reminders(*, as_of: date) -> int:
    """T6: three days before the end date, once, to a workspace without a payment method; a
    reminder not sent by the end date is never sent.

    D4: the trials running on `as_of`, as things stood then: a trial ended by a change dated
    after `as_of` (a cancellation, a closure) was entered before a lagging clock reached
    `as_of`, and its reminder goes as it would have gone on the day."""
    due = (
        Subscription.objects.filter(
            in_force_on(as_of, "started_on", "ended_on"),
            ~Q(trial_outcome=Subscription.TrialOutcome.NONE),
            trial_reminder_sent_on=None,
            trial_end__gt=as_of,
            trial_end__lte=as_of + timedelta(days=TRIAL_REMINDER_DAYS),
        )
        .exclude(Exists(PaymentMethod.objects.on(as_of).filter(workspace=OuterRef("workspace"))))
        .select_related("workspace")
    )
    sent, free = 0, None
    for sub in due:
        # The Free plan as it stands on `as_of` (D4: terms dated later may be entered after).
        free = free or _free_terms(as_of)
        with transaction.atomic():
            claimed = Subscription.objects.filter(pk=sub.pk, trial_reminder_sent_on=None).update(
                trial_reminder_sent_on=as_of
            )
            if claimed:
                # F7: back on Free unpaid, the lock the upgrade lifted comes back. Read as of
                # `as_of`, so a lock change entered ahead does not change the email (D4).
                lifted = _lifted_lock(sub.workspace, sub, dated_to=as_of)
                context = {"subscription": sub, "free_plan": free, "lifted_lock": lifted}
                _email(sub.workspace, "trial_reminder", f"sub:{sub.pk}", context)
                sent += 1
    return sent


def _email(workspace: Workspace, template: str, object_key: str, context: dict):
    queue_email(
        kind=template,
        object_key=object_key,
        to=workspace.billing_email,
        template=template,
        context={"workspace": workspace, **context},
    )
