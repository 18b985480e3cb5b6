"""Lock changes by the thousand (SPEC F2, F3, F6): the month close's lock step, in SQL.

A month close can lock or unlock many thousands of workspaces at once. Each batch of them costs
the same five statements however large it is: the lock events (F6: each change with its cause),
the workspaces' new lock, their history rows (R4), and the outbox rows of the emails, which are
rendered when they are sent (`billing.emails.RENDERED_WHEN_SENT`). No model instance per
workspace.
"""

from datetime import date

from django.db import connection
from django.db.models import Case, Value, When
from django.utils import timezone

from billing.audit import record_history
from billing.emails import enqueue_after_commit
from billing.models import Lock, LockEvent, OutboundEmail, Workspace

BATCH = 2_000


def change_locks_in_bulk(
    workspace_ids: list[int], to_lock: str, *, cause: str, as_of: date, month: date | None = None
) -> int:
    """F6 for a month close: move `workspace_ids` to `to_lock`, record each change with its
    cause, note it in each workspace's history and email each (after commit). A closed
    workspace's data stays stopped (W1). Returns how many changed."""
    cause_text = LockEvent.Cause(cause).label
    for start in range(0, len(workspace_ids), BATCH):
        _change_batch(
            workspace_ids[start : start + BATCH], to_lock, cause, cause_text, as_of, month
        )
    return len(workspace_ids)


def _change_batch(ids, to_lock, cause, cause_text, as_of, month):
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
    if not event_ids:
        return
    template = "unlocked" if to_lock == Lock.UNLOCKED else "locked"
    email = OutboundEmail._meta.db_table
    events_among = ", ".join(["%s"] * len(event_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            insert into {email} (kind, object_key, {quote("to")}, subject, body_text, body_html,
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
