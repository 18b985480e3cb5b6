"""Usage locks (SPEC F1–F7): strikes at a month close, the lock rules, support's unlock, and
every lock change recorded with its cause and emailed (F6).

A month close can lock or unlock many thousands of workspaces at once: `change_locks_in_bulk`
costs the same five statements per batch however large it is: the lock events, the
workspaces' new lock, their history rows (R4), and the outbox rows of the emails, which are
rendered when they are sent (`billing.emails.RENDERED_WHEN_SENT`). No model instance per
workspace. One workspace's change (an unlock, an upgrade lifting a lock) goes through
`set_lock`.
"""

from collections import Counter, defaultdict
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import Case, Count, Exists, OuterRef, Subquery, Value, When
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from billing.audit import acting, record_history, with_reason
from billing.closed_workspaces import closed_on_day
from billing.emails import enqueue_after_commit, queue_emails_rendered_when_sent
from billing.formatting import month as month_name
from billing.models import (
    LOCK_SEVERITY,
    Lock,
    LockEvent,
    OutboundEmail,
    Plan,
    PlanTerms,
    Strike,
    Subscription,
    Usage,
    Workspace,
)
from billing.months import add_months, next_month

BATCH = 2_000


def change_locks_in_bulk(
    workspace_ids: list[int],
    to_lock: str,
    *,
    cause: str,
    as_of: date,
    month: date | None = None,
    email: bool = True,
) -> int:
    """F6 for a month close: move `workspace_ids` to `to_lock`, record each change with its
    cause, note it in each workspace's history and email each (after commit; not when `email`
    is False: a lock lifted as it was set). A closed workspace's data stays stopped (W1).
    Returns how many changed."""
    cause_text = LockEvent.Cause(cause).label
    if month is not None:  # the history audit: "at month close" named no month
        cause_text = f"{cause_text} of {month_name(month)}"
    for start in range(0, len(workspace_ids), BATCH):
        _change_batch(
            workspace_ids[start : start + BATCH], to_lock, cause, cause_text, as_of, month, email
        )
    return len(workspace_ids)


# Each batch and each `change_locks` is one transaction (a savepoint inside the close's): a
# lock is never left changed without its event, its history row or its email, which a run of
# the day again would not put right (it looks for workspaces whose lock has not changed yet).
@transaction.atomic
def _change_batch(ids, to_lock, cause, cause_text, as_of, month, email):
    quote = connection.ops.quote_name
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    workspace, event = Workspace._meta.db_table, LockEvent._meta.db_table
    among = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            insert into {event} (workspace_id, {quote("on")}, month, from_lock, to_lock, cause,
                reason, by_id, created_at)
            select id, %s, %s, lock, %s, %s, '', null, %s from {workspace} where id in ({among})
            order by id
            returning id
            """,
            [as_of, month, to_lock, cause, stamp, *ids],
        )
        event_ids = [row[0] for row in cursor.fetchall()]
    flows = to_lock != Lock.LOCKED_DATA_STOPPED
    Workspace.objects.filter(pk__in=ids).update(
        lock=to_lock,
        data_flow=Case(When(closed_on__isnull=True, then=Value(flows)), default=Value(False)),
        lock_changed_on=as_of,
        lock_cause=cause_text,
    )
    reason = f"{Lock(to_lock).label}: {cause_text}"
    record_history(Workspace, [(ws_id, reason) for ws_id in ids], when=now)
    if not event_ids or not email:
        return
    template = "unlocked" if to_lock == Lock.UNLOCKED else "locked"
    outbox = OutboundEmail._meta.db_table
    events_among = ", ".join(["%s"] * len(event_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            insert into {outbox} (kind, object_key, {quote("to")}, subject, body_text, body_html,
                status, attempts, last_error, created_at)
            select %s, 'lock:' || e.id, w.billing_email, '', '', '', %s, 0, '', %s
            from {event} e join {workspace} w on w.id = e.workspace_id
            where e.id in ({events_among})
            order by e.id
            on conflict do nothing
            returning id
            """,
            [template, OutboundEmail.Status.PENDING, stamp, *event_ids],
        )
        enqueue_after_commit(sorted(row[0] for row in cursor.fetchall()))


# F2: the strikes of the closed month and the five before it decide the lock level.
STRIKE_WINDOW_MONTHS = 6
MOVED = LockEvent.Cause.MOVED_TO_TEAM


def set_lock(workspace, to_lock, *, cause, as_of, by=None, reason="", subscription=None):
    """F6 for one workspace: see `change_locks`."""
    return change_locks(
        [workspace],
        to_lock,
        cause=cause,
        as_of=as_of,
        by=by,
        reason=reason,
        subscription=subscription,
    )[0]


@transaction.atomic
def change_locks(
    workspaces, to_lock, *, cause, as_of, month=None, by=None, reason="", subscription=None
):
    """F6: move `workspaces` (instances the caller goes on using) to `to_lock`, record each
    change with its cause, email each. Bulk statements; the month close's many changes go
    through `billing.locks.change_locks_in_bulk`, which reads no instances."""
    if not workspaces:
        return []
    cause_text = reason or LockEvent.Cause(cause).label
    why, changed_by = f"{Lock(to_lock).label}: {cause_text}", by
    if not reason:
        # R4: a lock a person's change moves (a move to Team lifting it, F4; a cancellation
        # putting it back, F7) says in its history who and the reason they typed for that
        # change. The lock event itself stays as the clock's replay of a change entered ahead
        # writes it (D4: the same locks whatever the order of entry).
        acted_by, typed = acting()
        why, changed_by = with_reason(why, typed), by or acted_by
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
            subscription=subscription,
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
        default_user=changed_by,
        default_change_reason=why,
    )
    LockEvent.objects.bulk_create(events, batch_size=2_000)
    template = "unlocked" if to_lock == Lock.UNLOCKED else "locked"
    queue_emails_rendered_when_sent(
        template, [(f"lock:{event.pk}", event.workspace.billing_email) for event in events]
    )
    return events


def record_strikes(month: date) -> int:
    """F1: a strike for each workspace on Free every day of `month` it existed, over its
    allowance; none for a workspace closed at the month's end (W1: its data stopped). Set-based:
    one query finds them, one insert writes them."""
    end = next_month(month)
    free = PlanTerms.objects.of(month, plan__code=Plan.Code.FREE)
    on_team = Subscription.objects.overlapping(month, end).filter(plan__code=Plan.Code.TEAM)
    over = (
        Usage.objects.filter(
            month=month, mtus__gt=free.included_mtus, workspace__created_on__lt=end
        )
        # NOT EXISTS, not NOT IN: one anti-join however many are on Team (closed_on_day).
        .filter(~Exists(on_team.filter(workspace_id=OuterRef("workspace_id"))))
        .filter(~closed_on_day(end - timedelta(days=1), "workspace_id"))
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


def _name_the_lifting_subscriptions(workspace_ids: list[int], as_of: date):
    """F7: the lifts just recorded by the close name the Team subscription each workspace is on
    that day (whose end unpaid puts the lock back). One statement."""
    if not workspace_ids:
        return
    team = (
        Subscription.objects.overlapping(as_of, as_of + timedelta(days=1))
        .filter(plan__code=Plan.Code.TEAM, workspace_id=OuterRef("workspace_id"))
        .order_by("-pk")
        .values("pk")[:1]
    )
    LockEvent.objects.filter(
        workspace_id__in=workspace_ids, on=as_of, cause=MOVED, subscription=None
    ).update(subscription=Subquery(team))


def apply_lock_rules(month: date, as_of: date) -> Counter:
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
    # W1: a workspace closed when the close runs (at the month's end, or on the close's day
    # itself: D1, the clock sees that day's changes) keeps its lock until it is reopened, and
    # is told nothing about its data flowing.
    open_then = ~closed_on_day(as_of)
    to_raise = defaultdict(list)
    for ws_id, lock in (
        Workspace.objects.filter(pk__in=struck)
        .filter(open_then)
        .order_by("pk")
        .values_list("pk", "lock")
    ):
        if LOCK_SEVERITY[targets[ws_id]] > LOCK_SEVERITY[lock]:
            to_raise[targets[ws_id]].append(ws_id)
    # F4, D1: a workspace that moved to Team on the close's day (a strike means it was on Free
    # all month) was unlocked by that move, and the day's close comes before the day's changes:
    # the close's lock is recorded, for F7 to put back if the trial ends unpaid, and lifted by
    # the move at once. It never stood, so neither change is emailed.
    on_team = set(
        Subscription.objects.overlapping(as_of, as_of + timedelta(days=1))
        .filter(plan__code=Plan.Code.TEAM, workspace_id__in=struck)
        .values_list("workspace_id", flat=True)
    )
    for level, ids in sorted(to_raise.items()):
        stood = [ws_id for ws_id in ids if ws_id not in on_team]
        lifted = [ws_id for ws_id in ids if ws_id in on_team]
        change_locks_in_bulk(
            stood, level, cause=LockEvent.Cause.FREE_LIMIT, as_of=as_of, month=month
        )
        change_locks_in_bulk(
            lifted, level, cause=LockEvent.Cause.FREE_LIMIT, as_of=as_of, month=month, email=False
        )
        change_locks_in_bulk(lifted, Lock.UNLOCKED, cause=MOVED, as_of=as_of, email=False)
        _name_the_lifting_subscriptions(lifted, as_of)
        counts[level] = len(stood)  # "locked", "locked_data_stopped"
    to_unlock = list(
        Workspace.objects.filter(lock=Lock.LOCKED)
        .filter(~Exists(struck.filter(workspace_id=OuterRef("pk"))))
        .filter(open_then)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    change_locks_in_bulk(
        to_unlock, Lock.UNLOCKED, cause=LockEvent.Cause.UNDER_LIMIT, as_of=as_of, month=month
    )
    if to_unlock:
        counts["unlocked"] = len(to_unlock)
    return counts
