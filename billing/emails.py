"""The email outbox: one row per (kind, object, recipient), sent after commit, sent once.

Services call `queue_email`; the row is written in the service's transaction and the send task
is enqueued only when that transaction commits, so a rolled-back change sends nothing and a
retried task finds the row already sent (STYLE: PostHog's pattern).

Every promised email leaves or shows as failed:
- the send task retries a transport error with backoff, SEND_TRIES tries over more than an hour
  (a mail server restarting or in maintenance delays an email, it does not fail it); its last
  try marks the row failed, saying it was given up on after a transport error, and an error no
  retry can cure fails it at once;
- a batch stops starting emails when its time is spent (a hung mail server costs each email
  EMAIL_TIMEOUT) and hands the rest, untried, to a new send task;
- a row left pending (the broker was down when the change committed, a worker was lost) is
  found by the beat's sweep once no sender has touched it for EMAIL_STUCK_AFTER_MINUTES,
  claimed so two sweeps never hand it on twice, and sent again (`resend_stuck_emails`), unless
  it has had its SEND_TRIES tries already: then it is failed, so no row goes round for ever;
- staff see failed and stuck rows in the admin and resend them (`resend_email`).
Whoever sends, a row is sent under its row lock and only while pending: two senders never
send it twice. Each try is counted, and committed, before its send starts: a sender that dies
mid-send still counts, and the row is tried again. That makes a send at least once, not exactly
once: in the moment between the mail server accepting an email and its row's SENT committing,
a sender killed or a database gone leaves the row pending, and its next try sends it again.
Marking the row before the send instead would lose every email whose sender died mid-send.

Emails queued by the thousand (a month close's lock emails) are rows without a body, rendered
when they are sent from the context their kind reads back from the row's object key
(`RENDERED_WHEN_SENT`): queuing them costs an insert, not a template rendering each.
"""

import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from smtplib import (
    SMTPAuthenticationError,
    SMTPException,
    SMTPRecipientsRefused,
    SMTPServerDisconnected,
)
from time import monotonic

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, TextField, Value, When
from django.db.models.functions import Concat
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing.errors import BillingError
from billing.formatting import day, moment
from billing.models import LockEvent, OutboundEmail, Plan, PlanTerms, Strike, Subscription

logger = logging.getLogger(__name__)

# Errors a later attempt may cure: the mail server down, refused or slow (SMTPException is an
# OSError too; named for the reader). Anything else (a malformed message) fails the row at once.
TRANSIENT_ERRORS = (SMTPException, OSError)

SUBJECT_MAX = OutboundEmail._meta.get_field("subject").max_length


def _render_text(name: str, context: dict) -> str:
    """Plain text is not HTML: autoescape off, so "Ben & Jerry's" stays itself instead of
    becoming "Ben &amp; Jerry&#x27;s"."""
    return get_template(name).template.render(Context(context, autoescape=False))


def render_email(template: str, context: dict) -> tuple[str, str, str]:
    """`emails/<template>_subject.txt`, `_body.txt` and `_body.html` → subject, text, html.
    Only the HTML body is escaped."""
    subject = _render_text(f"emails/{template}_subject.txt", context)
    text = _render_text(f"emails/{template}_body.txt", context)
    html = get_template(f"emails/{template}_body.html").render(context)
    return " ".join(subject.split())[:SUBJECT_MAX], text, html


@dataclass(frozen=True)
class EmailSpec:
    kind: str
    object_key: str
    to: str
    template: str
    context: dict


# Emails per send task: one task per email would cost a broker round trip each (RECIPES).
SEND_BATCH = 100
# Tries of an email against transport errors, by its send task and its retries (the task's
# backoff spaces them over more than an hour). A row that has had them is not sent again, by the
# sweep or by a task delivered again after its worker died.
SEND_TRIES = 11
NO_SEND_FINISHED = f"No send finished after {SEND_TRIES} or more tries"
# Stuck rows the sweep hands on per run; the next run takes the rest.
SWEEP_LIMIT = 1_000


def queue_email(*, kind: str, object_key: str, to: str, template: str, context: dict):
    """Record the email and send it after commit; a second call for the same key is a no-op."""
    subject, text, html = render_email(template, context)
    try:
        with transaction.atomic():
            email = OutboundEmail.objects.create(
                kind=kind,
                object_key=object_key,
                to=to,
                subject=subject,
                body_text=text,
                body_html=html,
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: enqueue_sending([email.pk]))
    return email


def _lock_email_context(object_key: str) -> dict:
    event = LockEvent.objects.select_related("workspace").get(
        pk=int(object_key.removeprefix("lock:"))
    )
    # F1, F6: a lock from the Free limit states the month's figure (the strike) and the
    # allowance of that month (P1: dated terms), however late the email goes out.
    reported = None
    if event.month is not None:
        strikes = Strike.objects.filter(workspace_id=event.workspace_id, month=event.month)
        reported = strikes.values_list("mtus", flat=True).first()
    return {
        "workspace": event.workspace,
        "event": event,
        "reported": reported,
        "free_plan": PlanTerms.objects.of(event.month or event.on, plan__code=Plan.Code.FREE),
    }


# Kinds queued without a body, rendered at sending: kind → the template's context, built from
# the row's object key. The template is named as the kind.
RENDERED_WHEN_SENT = {"locked": _lock_email_context, "unlocked": _lock_email_context}


def queue_emails_rendered_when_sent(kind: str, keys_and_recipients) -> int:
    """Queue one email of `kind` (a key of RENDERED_WHEN_SENT) per `(object_key, to)`, to be
    rendered when it is sent; rows that exist already are left alone. Returns how many new."""
    assert kind in RENDERED_WHEN_SENT, kind
    return _insert_new(
        [OutboundEmail(kind=kind, object_key=key, to=to) for key, to in keys_and_recipients]
    )


def enqueue_after_commit(email_ids: list[int]):
    """Hand rows queued by a set-based insert to the send task once the transaction commits."""
    transaction.on_commit(lambda: _enqueue_in_batches(list(email_ids)))


def _render_when_sent(email: OutboundEmail):
    """Fill in the body of a row queued without one (RENDERED_WHEN_SENT), kept on the row so
    staff see what was sent, and address it to the billing email its footer names: the one on
    file now, as the name it greets (a contact changed since the close queued it)."""
    context = RENDERED_WHEN_SENT[email.kind](email.object_key)
    email.subject, email.body_text, email.body_html = render_email(email.kind, context)
    email.to = context["workspace"].billing_email
    email.save(update_fields=["subject", "body_text", "body_html", "to"])


def queue_emails(specs) -> int:
    """`queue_email` for many at once (a month close's lock emails): rows that exist already
    are left alone; the new ones are sent after commit, in batches."""
    rows = []
    for spec in specs:
        subject, text, html = render_email(spec.template, spec.context)
        rows.append(
            OutboundEmail(
                kind=spec.kind,
                object_key=spec.object_key,
                to=spec.to,
                subject=subject,
                body_text=text,
                body_html=html,
            )
        )
    return _insert_new(rows)


def _insert_new(rows: list[OutboundEmail]) -> int:
    """Insert the rows that do not exist yet (one per kind, object and recipient) and send
    those after commit; returns how many are new."""
    if not rows:
        return 0
    before = OutboundEmail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    OutboundEmail.objects.bulk_create(rows, batch_size=2_000, ignore_conflicts=True)
    new_ids = list(
        OutboundEmail.objects.filter(
            pk__gt=before,
            kind__in={row.kind for row in rows},
            object_key__in=[row.object_key for row in rows],
            status=OutboundEmail.Status.PENDING,
        ).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: _enqueue_in_batches(new_ids))
    return len(new_ids)


# Rows committed for sending inside `sending_held` wait there until it ends.
_held: ContextVar[list[int] | None] = ContextVar("held_emails", default=None)


@contextmanager
def sending_held():
    """Inside the block, rows committed for sending are handed to the sender only when it ends
    (also when it raises: their rows are committed). A month close plans its chunks in here,
    so that on the one queue its chunks come before its lock emails: the other way round, the
    4,494 lock emails of a 100,000-workspace close held its chunks back (on one worker the
    close finished after 39 s instead of 9)."""
    held = []
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        _enqueue_in_batches(held)


def _enqueue_in_batches(email_ids: list[int]):
    held = _held.get()
    if held is not None:
        held.extend(email_ids)
        return
    for start in range(0, len(email_ids), SEND_BATCH):
        enqueue_sending(email_ids[start : start + SEND_BATCH])


# Who sends the rows: the send task, registered by the app when it is ready
# (`BillingConfig.ready`), so that the outbox, called from deep inside services, never reaches
# up into the task layer.
_sender = None


def hand_sending_to(sender) -> None:
    """Register the callable that sends a list of outbox ids (the task's `delay`)."""
    global _sender
    _sender = sender


def enqueue_sending(email_ids: list[int]):
    """Hand rows to the sender. The change that queued them has committed and must not fail
    because the broker is down: the rows stay pending and the sweep sends them later."""
    try:
        _sender(email_ids)
    except BrokerUnavailable as exc:
        logger.warning(
            "emails %s left pending for the sweep: broker unavailable: %s", email_ids, exc
        )


def send_queued_email(email_id: int, *, last_try: bool = False) -> bool:
    """Send one outbox row if it is pending; True when this call sent it.

    The try is counted and the row claimed first, committed on its own (`_count_try`); the
    send then runs in a transaction of its own, under the row's lock, if the row is still
    pending. A sender killed mid-send (at its hard time limit while the mail server hangs, out
    of memory) rolls back only that second transaction: its try stays counted, so the sweep
    fails a row whose SEND_TRIES tries all died instead of handing it on for ever.

    A transport error is recorded on the row (committed) and raised again for the task's retry;
    the row stays pending, or is marked failed when this was the `last_try` or the row's
    SEND_TRIES-th. A row past its SEND_TRIES tries is failed unsent: its sends killed their
    worker, and the broker hands a task whose worker died to the next one at once
    (CELERY_TASK_REJECT_ON_WORKER_LOST), whatever the task's own retries. An error no retry can
    cure marks it failed at once. A sent or failed row is left alone (a resend puts a failed one
    back to pending, its tries counted afresh).
    """
    if not _count_try(email_id):
        return False
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.status != OutboundEmail.Status.PENDING:
            return False  # another sender sent or failed it between the count and the lock
        if email.attempts > SEND_TRIES:
            email.status = OutboundEmail.Status.FAILED
            email.last_error = _given_up(email.last_error)
            email.save(update_fields=["status", "last_error"])
            logger.error("email %s failed: none of its %s tries finished", email_id, SEND_TRIES)
            return False
        if too_late := _too_late(email, timezone.now()):
            email.status, email.last_error = OutboundEmail.Status.EXPIRED, too_late
            email.save(update_fields=["status", "last_error"])
            logger.info("email %s (%s) not sent: too late", email_id, email.kind)
            return False
        last_try = last_try or email.attempts == SEND_TRIES
        if not email.body_text and email.kind in RENDERED_WHEN_SENT:
            try:
                _render_when_sent(email)
            except Exception as exc:  # its object is gone, a template is broken: no retry helps
                _fail(email, exc)
                logger.error("email %s could not be rendered: %s", email_id, _logged(exc, email))
                return False
        message = EmailMultiAlternatives(
            email.subject, email.body_text, settings.DEFAULT_FROM_EMAIL, [email.to]
        )
        if email.body_html:
            message.attach_alternative(email.body_html, "text/html")
        failure = None
        try:
            message.send()
        except (*TRANSIENT_ERRORS, SoftTimeLimitExceeded) as exc:
            # SoftTimeLimitExceeded: the task's time ran out while the mail server kept this
            # email waiting, as a timeout would. A try like any other: the row stays pending for
            # the retry (or fails on the last try), and the task stops here.
            failure = exc
        except Exception as exc:  # permanent: retrying would only fail again
            _fail(email, exc)
            logger.error(
                "email %s failed and will not be retried: %s", email_id, _logged(exc, email)
            )
            return False
        else:
            email.status = OutboundEmail.Status.SENT
            email.sent_at = timezone.now()
            email.last_error = ""
            email.save(update_fields=["status", "sent_at", "last_error"])
            return True
        if last_try:
            _fail(email, failure, given_up=True)
            logger.error(
                "email %s failed after %s attempts: %s",
                email_id,
                email.attempts,
                _logged(failure, email),
            )
            return False
        email.last_error = _describe(failure)
        email.save(update_fields=["last_error"])
    logger.warning("email %s not sent: %s", email_id, _logged(failure, email))
    raise failure


def _count_try(email_id: int) -> bool:
    """Count a try of the row and stamp its claim, if it is pending; True when it was. One
    conditional UPDATE, committed at once on a worker (autocommit): a send under way holds the
    row's lock, so this waits for it to end and counts nothing if it left the row sent or
    failed. Two senders that both count before either locks each count a try; one sends."""
    pending = OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.PENDING)
    return bool(pending.update(attempts=F("attempts") + 1, claimed_at=timezone.now()))


@dataclass
class SentBatch:
    """What became of a batch: how many were sent, the ids to try again after a transport error
    (with the first such error), and the ids not tried because the batch's time ran out."""

    sent: int = 0
    to_retry: list[int] = field(default_factory=list)
    error: Exception | None = None
    untried: list[int] = field(default_factory=list)


def send_queued_emails(email_ids, *, last_try: bool = False, seconds: float | None = None):
    """`send_queued_email` for each id; one row's transport error does not hold back the
    others. No email is started once `seconds` have passed, or after the task's soft time
    limit cut one short: the rest come back untried. Returns a `SentBatch`."""
    batch, started = SentBatch(), monotonic()
    for position, email_id in enumerate(email_ids):
        if seconds is not None and monotonic() - started >= seconds:
            batch.untried = list(email_ids[position:])
            break
        try:
            batch.sent += send_queued_email(email_id, last_try=last_try)
        except (*TRANSIENT_ERRORS, SoftTimeLimitExceeded) as exc:
            batch.to_retry.append(email_id)
            batch.error = batch.error or exc
            if isinstance(exc, SoftTimeLimitExceeded):
                batch.untried = list(email_ids[position + 1 :])
                break
    return batch


def _describe(exc: Exception) -> str:
    """An error as the row keeps it for staff: what it means, then the mail library's own words
    for whoever puts the server right ("the mail server refused the connection
    (ConnectionRefusedError: [Errno 111] Connection refused)")."""
    meaning = _meaning(exc)
    return (f"{meaning} ({_technical(exc)})" if meaning else _technical(exc))[:2000]


def _technical(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _meaning(exc: Exception) -> str:
    # Most particular first: every SMTP error is an OSError, and a refused connection too.
    if isinstance(exc, SMTPRecipientsRefused):
        return "the mail server refused the recipient's address"
    if isinstance(exc, SMTPAuthenticationError):
        return "the mail server refused our user name or password"
    if isinstance(exc, SMTPServerDisconnected):
        return "the mail server closed the connection"
    if isinstance(exc, SMTPException):
        return "the mail server refused the email"
    if isinstance(exc, ConnectionRefusedError):
        return "the mail server refused the connection"
    if isinstance(exc, TimeoutError | SoftTimeLimitExceeded):
        return "the mail server did not answer in time"
    if isinstance(exc, OSError):
        return "the mail server could not be reached"
    return ""


def _logged(exc: Exception, email: OutboundEmail) -> str:
    """An error as the log shows it: the recipient's address, which an SMTP server's answer
    quotes (a refused recipient: "{'jane.doe@example.com': (550, ...)}"), left out. The log
    names an email by its id, never its recipient (config/logs.py); the row keeps the whole
    error for staff."""
    if not email.to:  # an empty pattern would match between every two letters
        return _technical(exc)
    return re.sub(re.escape(email.to), "<recipient>", _technical(exc), flags=re.IGNORECASE)


def _given_up(last_error: str) -> str:
    """A worn-out row's error: no send finished, and the last error a try recorded, if any (a
    sender killed mid-send records none)."""
    return f"{NO_SEND_FINISHED}: {last_error}"[:2000] if last_error else NO_SEND_FINISHED


def _fail(email: OutboundEmail, exc: Exception, *, given_up: bool = False):
    """Mark the row failed with its error; `given_up`: after a transport error on its last try,
    said so, for staff to resend it once the mail server is back."""
    email.status = OutboundEmail.Status.FAILED
    email.last_error = _describe(exc)
    if given_up:
        tries = "1 try" if email.attempts == 1 else f"{email.attempts} tries"
        email.last_error = f"Given up after {tries}: {email.last_error}"[:2000]
    email.save(update_fields=["status", "last_error"])


# --- Failed and stuck emails --------------------------------------------------------------------


def stuck_emails(now: datetime, emails=None):
    """Pending rows no sender has touched for EMAIL_STUCK_AFTER_MINUTES (`emails`: a queryset
    to narrow, default all). A send task between its retries touches its rows more often than
    that, so a row found here has no task coming for it."""
    cutoff = now - timedelta(minutes=settings.EMAIL_STUCK_AFTER_MINUTES)
    emails = OutboundEmail.objects.all() if emails is None else emails
    return emails.filter(status=OutboundEmail.Status.PENDING, created_at__lt=cutoff).filter(
        Q(claimed_at=None) | Q(claimed_at__lt=cutoff)
    )


def resend_stuck_emails(*, now: datetime) -> int:
    """The sweep: claim each stuck row and hand it to the send task; returns how many.

    A row is claimed by stamping `claimed_at` only while it is still stuck, and handed on only
    when this call's stamp took (healthchecks' claim), so two sweeps never enqueue one row
    twice; a claim whose enqueue is lost expires, and a later sweep takes the row again.

    A new send task counts its retries from none: a stuck row that has had its SEND_TRIES tries
    (its sends were lost each time, or killed their sender mid-send) is failed instead, with its
    last error if a try recorded one, for staff to see."""
    worn_out = stuck_emails(now).filter(attempts__gte=SEND_TRIES)
    failed = worn_out.update(
        status=OutboundEmail.Status.FAILED,
        # `_given_up` in SQL: a sender killed mid-send records no error.
        last_error=Case(
            When(last_error="", then=Value(NO_SEND_FINISHED)),
            default=Concat(Value(f"{NO_SEND_FINISHED}: "), "last_error"),
            output_field=TextField(),
        ),
    )
    if failed:
        logger.error("sweep: %s stuck email(s) failed after their %s tries", failed, SEND_TRIES)
    claimed = []
    candidates = stuck_emails(now).order_by("created_at", "pk").values_list("pk", flat=True)
    for email_id in candidates[:SWEEP_LIMIT]:
        if stuck_emails(now).filter(pk=email_id).update(claimed_at=now):
            claimed.append(email_id)
    if claimed:
        logger.info("sweep: %s stuck email(s) sent again", len(claimed))
    _enqueue_in_batches(claimed)
    return len(claimed)


def resend_refusal(email: OutboundEmail) -> str:
    """Why `email` may not be sent again (it was sent: an email goes once per kind and object;
    it is too late for it), or ""."""
    if email.status == OutboundEmail.Status.SENT:
        return f"This email was sent on {moment(email.sent_at)}: it is not sent twice."
    if email.status == OutboundEmail.Status.EXPIRED:
        return email.last_error
    return _too_late(email, timezone.now())


def _too_late(email: OutboundEmail, now: datetime) -> str:
    """Why the row may no longer be sent, or "". T6: a trial's reminder not sent by the end
    date is not sent at all (a mail server down for days, a resend after the trial ended). Its
    end date is counted from when the row was queued, as many days as the clock's day of the
    reminder was before it: a lagging clock's reminder still goes as it would have on its day
    (D4)."""
    if email.kind != "trial_reminder":
        return ""
    trial = (
        Subscription.objects.filter(pk=email.object_key.removeprefix("sub:"))
        .values_list("trial_end", "trial_reminder_sent_on")
        .first()
    )
    if trial is None or None in trial:
        return ""
    end, reminded_on = trial
    if now < email.created_at + timedelta(days=(end - reminded_on).days):
        return ""
    return (
        f"Not sent: the trial's end date, {day(end)}, came before it could go, and a reminder "
        "not sent by the end date is not sent at all (T6)."
    )


@transaction.atomic
def resend_email(email: OutboundEmail, *, by) -> OutboundEmail:
    """Staff send again an email that failed or is stuck, after commit, with SEND_TRIES tries
    of its own (its count starts again). One already sent is refused (`resend_refusal`)."""
    email = OutboundEmail.objects.select_for_update().get(pk=email.pk)
    if refusal := resend_refusal(email):
        raise BillingError(refusal)
    email.status = OutboundEmail.Status.PENDING
    email.claimed_at = timezone.now()  # the sweep leaves it to this resend
    email.attempts = 0  # its own SEND_TRIES: one that wore out its tries is sent again
    email.save(update_fields=["status", "claimed_at", "attempts"])
    logger.info("email %s (%s) resent by user %s", email.pk, email.kind, by.pk)
    transaction.on_commit(lambda: enqueue_sending([email.pk]))
    return email
