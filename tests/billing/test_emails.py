"""The outbox: one email per (kind, object, recipient), sent after commit, never twice; every
promised email leaves or shows as failed (issue 11), and plain text is not HTML-escaped."""

import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from smtplib import SMTPAuthenticationError, SMTPRecipientsRefused, SMTPServerDisconnected
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_prerun
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing import emails, services, tasks
from billing.emails import (
    queue_email,
    render_email,
    resend_email,
    resend_stuck_emails,
    send_queued_email,
)
from billing.errors import BillingError
from billing.formatting import EMAIL_KINDS, period
from billing.models import Invoice, OutboundEmail
from billing.tasks import send_emails
from config import celery_app
from tests.admin_pages import action
from tests.services import clean_env, requires_postgres
from tests.workers import this_tests_database_url

from .factories import paid_monthly, workspace


def _queue(ws, kind="trial_ended", to=None):
    """A trial email about the workspace's subscription, queued as `kind` to `to` (default: its
    billing email)."""
    return queue_email(
        kind=kind,
        object_key=f"sub:{ws.subscriptions.get().pk}",
        to=to or ws.billing_email,
        template="trial_ended",
        context={"workspace": ws, "subscription": ws.subscriptions.get()},
    )


def test_a_retried_send_task_sends_nothing_twice(db, django_capture_on_commit_callbacks):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue(ws)
    assert len(mail.outbox) == 1
    send_emails.apply(args=[[email.pk]])  # a redelivered task
    assert send_queued_email(email.pk) is False
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)
    assert mail.outbox[0].alternatives[0][1] == "text/html"


def test_the_same_event_queued_twice_is_one_email(db, django_capture_on_commit_callbacks):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert _queue(ws) is not None
        assert _queue(ws) is None
    assert len(mail.outbox) == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundEmail.objects.create(
            kind="trial_ended",
            object_key=f"sub:{ws.subscriptions.get().pk}",
            to=ws.billing_email,
            subject="x",
            body_text="x",
        )


def test_s4_s5_w1_t6_one_email_of_a_kind_about_one_thing_whoever_it_is_addressed_to(
    db, django_capture_on_commit_callbacks
):
    """S4, S5, W1, T6: one acceptance, rejection, closure or reminder email. The database kept
    one per kind, thing and recipient: a second of the same kind about the same thing to
    another address, or to the same one in capitals, was stored (the constraint audit). Now
    it is one per kind and thing; `queue_email` takes the second as already queued."""
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert _queue(ws) is not None
        assert _queue(ws, to="someone-else@example.com") is None
    assert [m.to for m in mail.outbox] == [[ws.billing_email]]
    for to in ("other@example.com", ws.billing_email.upper()):
        with pytest.raises(IntegrityError), transaction.atomic():
            OutboundEmail.objects.create(
                kind="trial_ended",
                object_key=f"sub:{ws.subscriptions.get().pk}",
                to=to,
                subject="x",
                body_text="x",
            )


def test_a_rolled_back_change_sends_nothing(db, django_capture_on_commit_callbacks):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                _queue(ws)
                raise RuntimeError("the service failed after queueing")
        except RuntimeError:
            pass
    assert callbacks == [] and mail.outbox == []
    assert not OutboundEmail.objects.exists()


def test_a_transport_error_keeps_the_email_pending_for_the_retry(db, settings):
    ws = workspace(as_of=date(2026, 1, 1))
    email = _queue(ws)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    with pytest.raises(OSError):
        send_queued_email(email.pk)
    email.refresh_from_db()
    assert email.status == "pending" and email.attempts == 1 and email.last_error
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_queued_email(email.pk) is True
    assert len(mail.outbox) == 1


# --- Every promised email leaves or shows as failed --------------------------------------------


class MailServerDown(BaseEmailBackend):
    """A mail server that drops every connection, as one that is down does."""

    def send_messages(self, messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")


class MailServerDownFor(BaseEmailBackend):
    """Drops the messages to `down@…` recipients, delivers the rest (to `mail.outbox`)."""

    def send_messages(self, messages):
        if any(to.startswith("down@") for message in messages for to in message.to):
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        mail.outbox.extend(messages)
        return len(messages)


class MalformedMessage(BaseEmailBackend):
    def send_messages(self, messages):
        raise ValueError("Header values can't contain newlines")


def broker_down(*args, **kwargs):
    raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def minutes_later(minutes):
    return timezone.now() + timedelta(minutes=minutes)


@pytest.fixture
def retries_run_inline(monkeypatch):
    """Eager tasks run a retry at once instead of raising it (as a worker would, after its
    backoff), so a test sees the whole chain of tries."""
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


def test_a_send_that_fails_its_last_retry_is_marked_failed_with_its_error(
    db, settings, monkeypatch, retries_run_inline, django_capture_on_commit_callbacks
):
    """send_emails backed off up to 600 s between tries (and EMAIL_STUCK_AFTER_MINUTES = 15
    is sized for that longest wait), but max_retries = 8 stopped the backoff at 2**7 = 128 s:
    its 9 tries spanned at most 1 + 2 + … + 128 = 255 s, 128 s on average with full jitter, so
    a mail server down for five minutes (a restart, a maintenance window) failed every email
    queued then for good. Now 11 tries wait 30, 60, 120, 240, 480 s, then 600 s five times:
    3,930 s, over an hour; the last marks the row failed, saying it was given up on."""
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDown"
    waits = []
    real_wait = tasks.email_retry_wait
    monkeypatch.setattr(tasks, "email_retry_wait", lambda n: waits.append(real_wait(n)) or 0)
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue(ws)  # eager tasks: the first try and its ten retries run here
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("failed", 11)
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600, 600, 600]
    assert sum(waits) == 3_930
    assert email.last_error == (
        "Given up after 11 tries: the mail server closed the connection "
        "(SMTPServerDisconnected: Connection unexpectedly closed)"
    )
    assert mail.outbox == []
    assert send_queued_email(email.pk) is False  # a late redelivery leaves it failed


class MailServerFailing(BaseEmailBackend):
    """Fails every send with `error` (set by the test)."""

    error: Exception

    def send_messages(self, messages):
        raise self.error


@pytest.mark.parametrize(
    "error, meaning",
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            "refused the connection",
        ),
        (TimeoutError("timed out"), "did not answer in time"),
        (SMTPServerDisconnected("Connection unexpectedly closed"), "closed the connection"),
        (
            SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
            "refused our user name or password",
        ),
        (OSError(101, "Network is unreachable"), "could not be reached"),
    ],
)
def test_a_failed_emails_error_says_what_it_means_before_the_mail_librarys_words(
    db, settings, monkeypatch, error, meaning
):
    """The outbox showed support "Given up after 2 tries: ConnectionRefusedError: [Errno 111]
    Connection refused": the mail library's words. The error now says what it means first;
    the library's words stay, in brackets, for whoever puts the server right."""
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerFailing"
    monkeypatch.setattr(MailServerFailing, "error", error, raising=False)
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    assert send_queued_email(email.pk, last_try=True) is False
    email.refresh_from_db()
    assert email.status == "failed"
    assert email.last_error == (
        f"Given up after 1 try: the mail server {meaning} ({type(error).__name__}: {error})"
    )


def test_an_error_no_retry_can_cure_fails_the_email_at_once(db, settings):
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MalformedMessage"
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    send_emails.apply(args=[[email.pk]])
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("failed", 1)
    assert email.last_error == "ValueError: Header values can't contain newlines"


def test_one_failing_email_neither_holds_back_nor_repeats_the_others_of_its_batch(
    db, settings, retries_run_inline
):
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDownFor"
    down = _queue(workspace(as_of=date(2026, 1, 1), billing_email="down@example.com"))
    up = _queue(workspace(as_of=date(2026, 1, 1), billing_email="up@example.com"))
    send_emails.apply(args=[[down.pk, up.pk]])  # eleven tries of the batch
    down.refresh_from_db()
    up.refresh_from_db()
    assert [m.to for m in mail.outbox] == [["up@example.com"]]
    assert (up.status, up.attempts, down.status, down.attempts) == ("sent", 1, "failed", 11)


def test_f6_lock_emails_left_pending_by_a_broker_outage_leave_once_with_the_sweep(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2_000)
    with monkeypatch.context() as outage, django_capture_on_commit_callbacks(execute=True):
        outage.setattr(send_emails, "delay", broker_down)
        services.run_billing(as_of=date(2026, 2, 1))  # the lock commits; its email cannot go
    email = OutboundEmail.objects.get(kind="locked")
    assert (email.status, email.attempts, mail.outbox) == ("pending", 0, [])

    assert resend_stuck_emails(now=minutes_later(5)) == 0  # not stuck yet
    assert resend_stuck_emails(now=minutes_later(16)) == 1
    assert resend_stuck_emails(now=minutes_later(40)) == 0
    send_emails.apply(args=[[email.pk]])  # the original message, delivered late
    assert [m.subject for m in mail.outbox] == [f"{ws.name} is locked"]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)


def test_f6_a_lock_email_goes_to_the_billing_email_its_footer_names(
    db, support, django_capture_on_commit_callbacks
):
    """F1, F6: January's close locks a Free workspace (2,000 MTUs over its 1,000) and queues
    its email; before it is sent, support changes the workspace's name and billing email. The
    email, written when sent, greeted the new name and said (its HTML footer) "you receive
    this email because new@example.com is the billing contact", and went to old@example.com.
    It goes to the address it names."""
    ws = workspace(as_of=date(2026, 1, 1), name="Old Name", billing_email="old@example.com")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2_000)
    with emails.sending_held():
        services.run_billing(as_of=date(2026, 2, 1))
    email = OutboundEmail.objects.get(kind="locked")
    assert email.to == "old@example.com" and mail.outbox == []
    services.update_workspace(
        ws,
        by=support,
        reason="Ticket 8: new contact",
        name="New Name",
        business_country="US",
        business_region="OR",
        billing_email="new@example.com",
        as_of=date(2026, 2, 2),
    )
    assert send_queued_email(email.pk) is True
    [message] = mail.outbox
    assert (message.to, message.subject) == (["new@example.com"], "New Name is locked")
    assert "new@example.com is the billing contact" in " ".join(message.alternatives[0][0].split())
    email.refresh_from_db()
    assert email.to == "new@example.com"


def test_two_sweeps_hand_a_stuck_email_on_once_and_a_lost_claim_expires(db, monkeypatch):
    handed_on = []
    monkeypatch.setattr(emails, "enqueue_sending", handed_on.append)  # the send is lost
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    now = minutes_later(16)
    assert resend_stuck_emails(now=now) + resend_stuck_emails(now=now) == 1
    assert handed_on == [[email.pk]]
    assert resend_stuck_emails(now=now + timedelta(minutes=10)) == 0  # the claim still holds
    assert resend_stuck_emails(now=now + timedelta(minutes=16)) == 1  # … and then expires
    assert handed_on == [[email.pk], [email.pk]]


@requires_postgres  # SQLite serialises writers: the race cannot happen there
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_once_on_postgresql_hand_each_stuck_email_on_once(monkeypatch, run_together):
    handed_on = []
    monkeypatch.setattr(emails, "enqueue_sending", handed_on.extend)
    ws = workspace(as_of=date(2026, 1, 1))
    OutboundEmail.objects.bulk_create(
        OutboundEmail(kind="trial_ended", object_key=f"sub:{n}", to=ws.billing_email, subject="x")
        for n in range(60)
    )
    now = minutes_later(16)
    sweep = lambda: resend_stuck_emails(now=now)  # noqa: E731
    run_together(sweep, sweep, sweep)
    assert sorted(handed_on) == sorted(OutboundEmail.objects.values_list("pk", flat=True))


def test_the_sweep_fails_a_stuck_email_that_had_its_tries_instead_of_starting_them_again(
    db, monkeypatch
):
    """A stuck row goes to a new send task, whose retries count from none: a row whose sends
    were lost each time (a worker killed on it) went round the sweep for ever and never showed
    as failed. One that has had its 11 tries is failed now, with its last error; one with 10
    is sent again."""
    handed_on = []
    monkeypatch.setattr(emails, "enqueue_sending", handed_on.extend)
    ws = workspace(as_of=date(2026, 1, 1))
    worn_out, not_yet = (_queue(ws, kind=kind) for kind in ("trial_ended", "trial_reminder"))
    error = "SMTPServerDisconnected: Connection unexpectedly closed"
    OutboundEmail.objects.filter(pk=worn_out.pk).update(attempts=11, last_error=error)
    OutboundEmail.objects.filter(pk=not_yet.pk).update(attempts=10, last_error=error)

    assert resend_stuck_emails(now=minutes_later(16)) == 1

    assert handed_on == [not_yet.pk]
    worn_out.refresh_from_db()
    assert (worn_out.status, worn_out.last_error) == (
        "failed",
        f"No send finished after 11 or more tries: {error}",
    )


# --- A sender that dies mid-send (a poison email) -----------------------------------------------


def _send_in_a_process_of_its_own(email_id: int, *, email_url: str) -> subprocess.Popen:
    """`send_queued_email(email_id)` in a Django process of its own, on this test's database,
    sending through the SMTP server at `email_url`."""
    env = clean_env(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",
        DATABASE_URL=this_tests_database_url(),
        EMAIL_URL=email_url,
        EMAIL_TIMEOUT="60",
    )
    code = f"from billing.emails import send_queued_email; send_queued_email({email_id})"
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _accepted(server: socket.socket, sender: subprocess.Popen) -> socket.socket:
    """The sender's connection to `server`, once it connects; fails if it ends without."""
    server.settimeout(0.2)
    deadline = time.monotonic() + 60
    while sender.poll() is None and time.monotonic() < deadline:
        try:
            return server.accept()[0]
        except TimeoutError:
            continue
    sender.kill()
    raise AssertionError(f"the sender never connected: {sender.communicate()[1].decode()}")


@requires_postgres  # the sender is a process of its own: the test database must be shared
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_sender_killed_mid_send_leaves_its_try_counted_and_its_claim_kept(monkeypatch):
    """A sender process killed while its SMTP server hangs (SIGKILL: what the OOM killer sends,
    and what ends a task past its hard time limit) rolled back the transaction it sent in, and
    with it the try it had counted: the row read attempts 0 and claimed_at None, as if never
    tried, so the sweep handed it to a new sender every 15 minutes for ever. Here a real
    process sends through the real SMTP backend to a server that accepts the connection and
    never answers; it is killed once connected. Its try stays counted, its claim kept."""
    with monkeypatch.context() as no_task:  # the row is left for the sender below
        no_task.setattr(emails, "enqueue_sending", lambda email_ids: None)
        email = _queue(workspace(as_of=date(2026, 1, 1)))
    with socket.create_server(("127.0.0.1", 0)) as hung_mail_server:
        port = hung_mail_server.getsockname()[1]
        before = timezone.now()
        sender = _send_in_a_process_of_its_own(email.pk, email_url=f"smtp://127.0.0.1:{port}")
        with _accepted(hung_mail_server, sender):  # the send is under way
            sender.kill()
            assert sender.wait(timeout=30) == -signal.SIGKILL

    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("pending", 1, "")
    assert before <= email.claimed_at <= timezone.now()


class SenderKilled(BaseException):
    """The sender's process ending mid-send. Not an Exception: no handler of the sender catches
    it, as none runs when a process is killed."""


class KilledMidSend(BaseEmailBackend):
    """A mail server whose email kills its sender (a worker killed at its hard time limit while
    the server hangs, out of memory on a huge message). The transaction the send ran in is rolled
    back, as PostgreSQL rolls back the transaction of a connection that drops (the real kill is
    the test above); the sender goes no further."""

    def send_messages(self, messages):
        raise SenderKilled()


@requires_postgres  # real commits and rollbacks, as on a worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_email_that_kills_its_sender_is_failed_by_the_sweep_after_its_11_tries(
    settings, monkeypatch
):
    """An email whose send kills the sender each time was never counted a try (the kill rolled
    the count back), so the sweep, which fails a stuck row at SEND_TRIES = 11 tries, handed it
    to a new sender every 15 minutes for ever, and a mail server that had taken it before the
    kill delivered it again each time. Now each death counts: the first send and 10 from the
    sweep die, and the sweep fails the row instead of a twelfth."""
    settings.EMAIL_BACKEND = "tests.billing.test_emails.KilledMidSend"
    handed_on = []
    monkeypatch.setattr(emails, "enqueue_sending", handed_on.extend)
    email = _queue(workspace(as_of=date(2026, 1, 1)))  # committed: handed to the sender

    for tries in range(1, emails.SEND_TRIES + 1):
        with pytest.raises(SenderKilled):
            send_queued_email(email.pk)
        email.refresh_from_db()
        assert (email.status, email.attempts) == ("pending", tries)
        resend_stuck_emails(now=minutes_later(16))

    assert handed_on == [email.pk] * emails.SEND_TRIES  # the first send and 10 from the sweep
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == (
        "failed",
        11,
        "No send finished after 11 or more tries",
    )
    assert resend_stuck_emails(now=minutes_later(40)) == 0
    assert send_queued_email(email.pk) is False  # a late redelivery leaves it failed


@requires_postgres  # real commits and rollbacks, as on a worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_email_that_kills_its_worker_is_failed_unsent_on_its_12th_redelivery(
    settings, monkeypatch, support
):
    """The broker hands a task whose worker died to the next worker at once
    (CELERY_TASK_REJECT_ON_WORKER_LOST), and the task's own retries never counted those: an
    email whose send killed its worker went from worker to worker without end, each death now
    counted a try (11, 12, 13 …) and none failing it. After its SEND_TRIES (11) tries the next
    delivery fails it unsent; staff can resend it, with 11 tries of its own."""
    settings.EMAIL_BACKEND = "tests.billing.test_emails.KilledMidSend"
    monkeypatch.setattr(emails, "enqueue_sending", lambda email_ids: None)
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    for _ in range(emails.SEND_TRIES):  # the first delivery and 10 after worker deaths
        with pytest.raises(SenderKilled):
            send_queued_email(email.pk)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    assert send_queued_email(email.pk) is False  # the 12th delivery

    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == (
        "failed",
        12,
        "No send finished after 11 or more tries",
    )
    assert mail.outbox == []
    monkeypatch.undo()  # the resend hands the row to the (eager) send task
    with transaction.atomic():
        resend_email(email, by=support)
    email.refresh_from_db()
    assert (email.status, email.attempts, len(mail.outbox)) == ("sent", 1, 1)


@requires_postgres  # real commits, as on a worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_sent_email_counts_one_try_and_a_redelivered_task_counts_none():
    email = _queue(workspace(as_of=date(2026, 1, 1)))  # committed: sent at once (eager task)
    email.refresh_from_db()
    assert (email.status, email.attempts, len(mail.outbox)) == ("sent", 1, 1)
    claimed_at = email.claimed_at
    assert claimed_at is not None

    send_emails.apply(args=[[email.pk]])  # a redelivered task

    email.refresh_from_db()
    assert (email.status, email.attempts, email.claimed_at, len(mail.outbox)) == (
        "sent",
        1,
        claimed_at,
        1,
    )


class SlowMailServer(BaseEmailBackend):
    """Delivers (to `mail.outbox`) after a quarter of a second: long enough for other senders
    of the same row to arrive while the first is sending."""

    def send_messages(self, messages):
        time.sleep(0.25)
        mail.outbox.extend(messages)
        return len(messages)


@requires_postgres  # SQLite serialises writers: the race cannot happen there
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_three_senders_of_one_email_at_once_on_postgresql_send_it_once(
    settings, monkeypatch, run_together
):
    """A redelivered task, the sweep's and a staff resend may send one row at the same moment:
    one sends it, under the row's lock; the others find it sent and send nothing."""
    settings.EMAIL_BACKEND = "tests.billing.test_emails.SlowMailServer"
    with monkeypatch.context() as no_task:  # the row is left for the senders below
        no_task.setattr(emails, "enqueue_sending", lambda email_ids: None)
        email = _queue(workspace(as_of=date(2026, 1, 1)))
    send = lambda: send_queued_email(email.pk)  # noqa: E731

    assert sorted(run_together(send, send, send)) == [False, False, True]

    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == "sent"


def test_staff_resend_a_failed_email_once_and_never_one_already_sent(
    db, settings, retries_run_inline, support, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDown"
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue(workspace(as_of=date(2026, 1, 1)))
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # fixed
    with django_capture_on_commit_callbacks(execute=True):
        resend_email(email, by=support)
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 1, "")  # tries afresh
    with pytest.raises(BillingError, match="it is not sent twice"):
        resend_email(email, by=support)
    assert len(mail.outbox) == 1


class RecipientRefused(BaseEmailBackend):
    def send_messages(self, messages):
        raise SMTPRecipientsRefused({messages[0].to[0]: (550, b"5.1.1 No such user")})


def test_the_log_names_an_email_by_its_id_never_its_recipient(db, caplog, settings, support):
    """config/logs.py: filters and searches "carry emails and names", so none go to the log.
    Yet staff resending an email logged "email 1 (trial_ended to jane.doe@example.com) resent
    by support", and a refused recipient the SMTP error that names the address, on each of its
    tries. The log says "email 1 (trial_ended) resent by user 3" and "{'<recipient>': (550,
    b'5.1.1 No such user')}"; the row keeps the whole error for staff."""
    ws = workspace(as_of=date(2026, 1, 1), billing_email="Jane.Doe@example.com")
    email = _queue(ws)
    caplog.set_level("INFO")

    resend_email(email, by=support)
    settings.EMAIL_BACKEND = "tests.billing.test_emails.RecipientRefused"
    with pytest.raises(SMTPRecipientsRefused):
        send_queued_email(email.pk)
    send_queued_email(email.pk, last_try=True)

    logged = [r.getMessage() for r in caplog.records if r.name == "billing.emails"]
    assert logged == [
        f"email {email.pk} (trial_ended) resent by user {support.pk}",
        f"email {email.pk} not sent: SMTPRecipientsRefused: "
        "{'<recipient>': (550, b'5.1.1 No such user')}",
        f"email {email.pk} failed after 2 attempts: SMTPRecipientsRefused: "
        "{'<recipient>': (550, b'5.1.1 No such user')}",
    ]
    assert not [r for r in caplog.records if "jane.doe@" in r.getMessage().lower()]
    email.refresh_from_db()
    assert "Jane.Doe@example.com" in email.last_error


def test_plain_text_subjects_and_bodies_carry_no_html_escapes(
    db, django_capture_on_commit_callbacks
):
    ws = workspace(as_of=date(2026, 1, 1), name="Ben & Jerry's <Ice>", card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    services.remove_payment_method(ws, as_of=date(2026, 1, 2))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 15))  # the trial ends without a card (T4)
    reminder, ended = mail.outbox  # T6, then T4
    assert reminder.subject == "Your Team trial for Ben & Jerry's <Ice> ends on 15 Jan 2026"
    assert ended.subject == "Your Team trial for Ben & Jerry's <Ice> has ended"
    assert "The Team trial of Ben & Jerry's <Ice> ended on" in ended.body
    for sent in (reminder, ended):
        assert "&amp;" not in sent.subject + sent.body and "&#x27;" not in sent.body
        html = sent.alternatives[0][0]  # HTML stays escaped
        assert "Ben &amp; Jerry&#x27;s &lt;Ice&gt;" in html and "<Ice>" not in html


# --- The outbox in the admin ------------------------------------------------------------------


def changelist(**query):
    url = reverse("admin:billing_outboundemail_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def test_staff_find_failed_and_stuck_emails_in_the_admin(db, client, settings, finance):
    ws = workspace(as_of=date(2026, 1, 1))
    stuck = _queue(ws)
    OutboundEmail.objects.filter(pk=stuck.pk).update(
        created_at=minutes_later(-20), claimed_at=minutes_later(-16)
    )
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MalformedMessage"
    failed = _queue(ws, "trial_reminder", to="f@example.com")
    send_emails.apply(args=[[failed.pk]])
    fresh = _queue(ws, "trial_converted", to="n@example.com")
    client.force_login(finance)

    def listed(**query):
        page = client.get(changelist(**query))
        assert page.status_code == 200
        return {e.pk for e in page.context["cl"].result_list}

    assert listed() == {stuck.pk, failed.pk, fresh.pk}
    assert listed(delivery="stuck") == {stuck.pk}
    assert listed(delivery="failed") == {failed.pk}
    assert listed(delivery="attention") == {stuck.pk, failed.pk}
    assert "ValueError: Header values" in client.get(changelist(delivery="failed")).content.decode()


def test_support_resends_from_the_admin_after_a_confirmation(
    db, client, support, django_capture_on_commit_callbacks
):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        sent = _queue(ws)
    sent.refresh_from_db()
    stuck = _queue(ws, "trial_converted", to="n@example.com")
    client.force_login(support)
    selected = {"action": "resend", "_selected_action": [sent.pk, stuck.pk]}
    page = client.post(changelist(), selected)
    assert "Yes, resend emails" in page.content.decode() and len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(changelist(), {**selected, "confirm": "yes"}, follow=True)
    notes = [str(m) for m in page.context["messages"]]
    assert notes == [
        f"“{sent.subject}” to {sent.to} (sent): This email was sent on "
        f"{sent.sent_at.day} {sent.sent_at:%b %Y, %H:%M} UTC: it is not sent twice.",
        "1 email(s) queued to be sent again.",
    ]
    assert [m.to for m in mail.outbox] == [[sent.to], ["n@example.com"]]


def test_f6_r1_a_failed_email_is_sent_again_from_its_own_page(
    db, client, support, finance, django_capture_on_commit_callbacks
):
    """F6, R1: the email's page offers "Send again" while it is not sent, behind a confirmation
    that calls the same service as the list's action; a sent email's page offers nothing and
    its confirmation page says why. Before, the page of a failed email had no way on: the
    application and partner pages send reviewers to support or finance, who had to go back to
    the list, tick it and pick the action."""
    ws = workspace(as_of=date(2026, 1, 1))
    failed = _queue(ws, "trial_converted", to="n@example.com")
    OutboundEmail.objects.filter(pk=failed.pk).update(
        status=OutboundEmail.Status.FAILED, last_error="Given up after 5 tries: timed out"
    )
    page_url = reverse("admin:billing_outboundemail_change", args=[failed.pk])
    resend_url = reverse("admin:billing_outboundemail_resend", args=[failed.pk])
    for user in (support, finance):
        client.force_login(user)
        assert f'href="{resend_url}"' in client.get(page_url).content.decode()

    asked = client.get(resend_url).content.decode()
    assert "to n@example.com" in asked and 'value="Yes, send it again"' in asked
    assert OutboundEmail.objects.get(pk=failed.pk).status == "failed"  # a GET sends nothing
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(resend_url, follow=True)
    assert done.redirect_chain[-1][0] == page_url
    assert [str(m) for m in done.context["messages"]] == [
        f"“{failed.subject}” to n@example.com is queued to be sent again."
    ]
    assert [m.to for m in mail.outbox] == [["n@example.com"]]
    assert OutboundEmail.objects.get(pk=failed.pk).status == "sent"

    # Sent now: no button, and the confirmation page (an old tab) says why and sends nothing.
    assert f'href="{resend_url}"' not in client.get(page_url).content.decode()
    again = client.post(resend_url).content.decode()
    assert "it is not sent twice" in again and len(mail.outbox) == 1


@requires_postgres  # SQLite has no row locks: select_for_update is no lock there
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_f6_a_resend_holds_the_email_in_a_transaction_of_its_own(
    django_capture_on_commit_callbacks,
):
    """A resend locks the row it reads (two people resending at once send it once), in a
    transaction of its own: called outside one, as a script or a task would, it refused with
    "select_for_update cannot be used outside of a transaction" when its `atomic` slipped onto
    the helper written above it."""
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    OutboundEmail.objects.filter(pk=email.pk).update(status=OutboundEmail.Status.FAILED)
    mail.outbox.clear()  # autocommit: queued, it was sent at once (then marked failed here)
    with django_capture_on_commit_callbacks(execute=True):
        resend_email(email, by=User.objects.create_user("ops", is_staff=True))
    email.refresh_from_db()
    assert (email.status, len(mail.outbox)) == ("sent", 1)


def test_r1_r2_who_may_not_resend_gets_no_button_and_no_page(db, client, reviewer):
    """A reviewer (no outbox) and a user who may only read the outbox see no "Send again" and
    are refused its page, on GET and POST; nothing is claimed."""
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    OutboundEmail.objects.filter(pk=email.pk).update(status=OutboundEmail.Status.FAILED)
    reader = User.objects.create_user("reader", password="pass-for-tests", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_outboundemail"))
    resend_url = reverse("admin:billing_outboundemail_resend", args=[email.pk])
    page_url = reverse("admin:billing_outboundemail_change", args=[email.pk])
    client.force_login(reader)
    assert resend_url not in client.get(page_url).content.decode()
    for user in (reader, reviewer):
        client.force_login(user)
        assert client.get(resend_url).status_code == 403
        assert client.post(resend_url).status_code == 403
    email.refresh_from_db()
    assert (email.status, email.claimed_at) == ("failed", None)


@pytest.mark.parametrize(
    "words, found",
    [
        ("JANE.doe@Example", {"sub:12"}),  # part of the address, in another case
        ("acme ANALYTICS", {"sub:12", "sub:123"}),  # words of the subject, each anywhere
        ("has ended", {"sub:12", "sub:7"}),
        ("SUB:12", {"sub:12", "sub:123"}),  # a part of the key: sub:123 contains it too
        ("sub:7", {"sub:7"}),
        ("@zeta.example", {"sub:7"}),
        ("nobody", set()),
    ],
)
def test_support_finds_an_email_by_part_of_its_address_subject_or_object_key(
    db, client, support, words, found
):
    """R1: "did customer X get the email about Y": the outbox is searched by any part of the
    recipient's address, words of the subject or the object key, whatever their case; on
    PostgreSQL through trigram indexes (tests/test_staff_page_queries.py), the same rows."""
    acme = workspace(as_of=date(2026, 1, 1), name="Acme Analytics")
    zeta = workspace(as_of=date(2026, 1, 1), name="Zeta")
    for ws, template, key, to in [
        (acme, "trial_ended", "sub:12", "Jane.Doe@example.com"),
        (acme, "trial_reminder", "sub:123", "ops@acme.example"),
        (zeta, "trial_ended", "sub:7", "billing@zeta.example"),
    ]:
        context = {"workspace": ws, "subscription": ws.subscriptions.get()}
        queue_email(kind=template, object_key=key, to=to, template=template, context=context)
    client.force_login(support)
    page = client.get(changelist(q=words))
    assert {email.object_key for email in page.context["cl"].result_list} == found


def test_a_reviewer_sees_no_outbox_and_cannot_resend(db, client, reviewer):
    email = _queue(workspace(as_of=date(2026, 1, 1)))
    client.force_login(reviewer)
    response = client.post(changelist(), action("resend", email))
    assert response.status_code == 403
    email.refresh_from_db()
    assert email.claimed_at is None


def test_the_sweep_runs_on_the_beat_and_waits_out_the_send_retries(settings):
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "billing.tasks.sweep_stuck_emails"
    ]
    assert entry["schedule"].minute == set(range(0, 60, 5))
    # A row between two retries of its send task is not stuck: the longest wait is shorter.
    assert send_emails.retry_backoff_max < settings.EMAIL_STUCK_AFTER_MINUTES * 60


def test_p1_f6_t6_emails_state_the_plans_as_configured(
    db, finance, django_capture_on_commit_callbacks
):
    """P1, P2 are configurable: after finance sets Free to 2,000 MTUs and the trial to 30 days,
    the lock email names 2,000, and the reminder a 30-day trial and Free's 2,000."""
    from billing.models import Plan

    services.update_plan(
        Plan.objects.get(code="free"),
        by=finance,
        reason="More generous",
        included_mtus=2000,
        effective_on=date(2026, 1, 1),
    )
    services.update_plan(
        Plan.objects.get(code="team"),
        by=finance,
        reason="Longer trial",
        trial_days=30,
        effective_on=date(2026, 1, 1),
    )
    locked = workspace(as_of=date(2026, 1, 1), slug="over")
    services.record_usage(locked, month=date(2026, 1, 1), mtus=2_500)
    trialing = workspace(as_of=date(2026, 1, 1), slug="trial", plan="team")  # ends 31 January
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 1))
    by_subject = {m.subject: m for m in mail.outbox}
    lock = next(m for s, m in by_subject.items() if "locked" in s.lower())
    reminder = next(m for s, m in by_subject.items() if "ends on" in s)
    assert "reported 2,500 monthly tracked users in January 2026, over the Free plan's 2,000." in (
        lock.body
    )
    assert "2,000" in lock.alternatives[0][0] and "1,000" not in lock.alternatives[0][0]
    assert f"The 30-day Team trial of {trialing.name}" in reminder.body
    assert "(2,000 MTUs a month)" in reminder.body and "14-day" not in reminder.alternatives[0][0]


class CutByTheTimeLimit(BaseEmailBackend):
    """A mail server that keeps the email waiting until the task's soft time limit ends the
    wait (celery raises it in the task)."""

    def send_messages(self, messages):
        raise SoftTimeLimitExceeded()


def test_an_email_cut_short_by_the_tasks_time_limit_stays_pending_for_the_next_send(db, settings):
    """A mail server that hangs was cut off by the task's soft time limit, and the email was
    marked failed for good, as a malformed one is, while the task went on into its hard limit.
    Now the limit stops the batch and the email stays pending, its try counted as a timeout's
    would be, and is sent by the retry; the rest of the batch comes back untried."""
    first, second = (_queue(workspace(as_of=date(2026, 1, 1)), kind=k) for k in ("a", "b"))
    settings.EMAIL_BACKEND = "tests.billing.test_emails.CutByTheTimeLimit"

    batch = emails.send_queued_emails([first.pk, second.pk])

    assert (batch.sent, batch.to_retry, batch.untried) == (0, [first.pk], [second.pk])
    first.refresh_from_db()
    assert (first.status, first.attempts, first.last_error) == (
        "pending",
        1,
        "the mail server did not answer in time (SoftTimeLimitExceeded: SoftTimeLimitExceeded())",
    )
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_emails.apply(args=[[first.pk]])
    first.refresh_from_db()
    assert (first.status, len(mail.outbox)) == ("sent", 1)


class HungMailServer(BaseEmailBackend):
    """A server that accepts the connection and never answers: each message waits EMAIL_TIMEOUT
    on the sender's clock (`clock`, billing.emails reads it), then times out (a transport
    error). Past the task's soft time limit, counted from the task's start, Celery raises
    SoftTimeLimitExceeded in it, as a worker does."""

    clock = [0.0]
    task_started = [0.0]
    tries_per_task = []

    def send_messages(self, messages):
        from django.conf import settings

        self.tries_per_task[-1] += 1
        if self.clock[0] - self.task_started[0] + settings.EMAIL_TIMEOUT > (
            settings.CELERY_TASK_SOFT_TIME_LIMIT
        ):
            raise SoftTimeLimitExceeded()
        self.clock[0] += settings.EMAIL_TIMEOUT
        raise TimeoutError("timed out")


def _task_starts(**kwargs):
    HungMailServer.task_started[0] = HungMailServer.clock[0]
    HungMailServer.tries_per_task.append(0)


@pytest.fixture
def hung_mail_server(settings):
    settings.EMAIL_BACKEND = "tests.billing.test_emails.HungMailServer"
    HungMailServer.clock[0] = HungMailServer.task_started[0] = 0.0
    HungMailServer.tries_per_task.clear()
    task_prerun.connect(_task_starts, weak=False, dispatch_uid="test-hung-mail-server")
    yield HungMailServer
    task_prerun.disconnect(dispatch_uid="test-hung-mail-server")


@pytest.mark.parametrize("time_passes", [True, False], ids=["batch-budget", "soft-limit-only"])
def test_a_batch_sent_to_a_hung_mail_server_is_tried_whole_and_retried(
    db, settings, monkeypatch, retries_run_inline, hung_mail_server, time_passes
):
    """A send task takes SEND_BATCH = 100 emails; against a server that never answers each
    cost EMAIL_TIMEOUT = 30 s, 3,000 s for the batch, against a soft time limit of 300 s: the
    task was cut off after 10 emails and, SoftTimeLimitExceeded being no transport error, not
    retried: 90 were never tried, and the 10 stayed pending until the sweep handed them to a
    new task, whose retries counted from none. Now EMAIL_TIMEOUT is 10 s and a batch starts
    emails for 150 s (half the soft limit): 15 are tried, the 85 others go to a new task at
    once, and so on, each tried email retried; should the soft limit cut one short all the
    same (`soft-limit-only`: the batch's own clock standing still), the rest go on the same
    way. Every email is tried, and given up on after its 11 tries."""
    if time_passes:
        monkeypatch.setattr(emails, "monotonic", lambda: hung_mail_server.clock[0])
    ws = workspace(as_of=date(2026, 1, 1))
    ids = [_queue(ws, kind=f"k{n}").pk for n in range(emails.SEND_BATCH)]

    send_emails.apply(args=[ids])

    # 150 s of 10 s each; or 300 s of them and the one the soft limit cuts short.
    assert max(hung_mail_server.tries_per_task) == (15 if time_passes else 31)
    assert sum(hung_mail_server.tries_per_task) == 100 * 11  # each email 11 times, no more
    outcome = OutboundEmail.objects.filter(pk__in=ids).values_list("status", "attempts")
    assert set(outcome) == {("failed", 11)}
    assert settings.EMAIL_TIMEOUT == 10


def test_w1_closure_email_states_the_final_invoices_period_as_billed(
    db, support, django_capture_on_commit_callbacks
):
    """W1, K1: paid monthly Team from 1 February 2026, 14,000 MTUs, closed on 15 February.
    The final invoice bills the 14 paid days before the closure: 120 x 14/28 = 60.00 + 4,000 x
    0.01 = 40.00 -> 100.00, period 1 - 14 February (period_end 15 February, exclusive; the 15th
    is a Free day). The invoice document says "1 – 14 February 2026"; the closure email told
    the customer the invoice was "for February 1 to February 15, 2026"."""
    ws = paid_monthly(date(2026, 2, 1), name="Closing Co")
    services.record_usage(ws, month=date(2026, 2, 1), mtus=14_000)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.close_workspace(ws, by=support, reason="Customer asked", as_of=date(2026, 2, 15))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.period_start, final.period_end, final.total) == (
        date(2026, 2, 1),
        date(2026, 2, 15),
        100,
    )
    assert period(final) == "1 – 14 February 2026"  # the invoice document's period
    (email,) = mail.outbox
    assert "$100.00" in email.body
    assert "for 1 – 14 February 2026 (the paid days before 15 Feb 2026" in email.body, email.body


def test_t4_trial_converted_email_reads_billed_annually(db, django_capture_on_commit_callbacks):
    """T4: an annual Team trial from 22 January 2026 with a card ends on 5 February and goes on
    as annual Team ($1,440.00 invoice dated 5 February). The email tells the customer how the
    workspace is billed: it read "billed annual"."""
    ws = workspace(as_of=date(2026, 1, 22), name="Acme", plan="team", card=True, interval="annual")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 6))
    annual = Invoice.objects.get(workspace=ws, kind="annual")
    assert (annual.issue_date, annual.total) == (date(2026, 2, 5), 1440)
    (email,) = [m for m in mail.outbox if m.subject == "Acme is now on Team"]
    assert "billed annual," not in email.body + email.alternatives[0][0], email.body
    assert "billed annually" in email.body


@pytest.mark.parametrize("cause", ["trial_not_paid", "free_limit"])
def test_f6_f7_the_lock_emails_text_is_laid_out_alike_whatever_the_cause(cause):
    """F6, F7: the plain-text lock email after a trial ended unpaid had a blank line between
    its first sentence and "The account is locked"; the others had none. Both have none."""
    ns = SimpleNamespace
    context = {
        "workspace": ns(name="Acme", billing_email="billing@acme.example"),
        "event": ns(cause=cause, on=date(2026, 12, 4), month=None, to_lock="locked"),
        "reported": None,
        "free_plan": ns(included_mtus=1_000),
    }
    _, text, _ = render_email("locked", context)
    lines = text.splitlines()
    assert lines[3].startswith("The account is locked; your data still flows in."), lines


@pytest.mark.parametrize("effects", [[], ["Its discount ended.", "Its credit lapsed."]])
def test_w1_the_closure_emails_text_has_one_blank_line_between_paragraphs(effects):
    """W1: without effects (a discount ended, credit lapsed) the plain-text closure email had
    two blank lines before "Your invoices and history are kept"."""
    ns = SimpleNamespace
    context = {
        "workspace": ns(name="Acme"),
        "closure": ns(closed_on=date(2026, 12, 4)),
        "final_invoice": None,
        "subscription": ns(plan=ns(code="team"), trial_outcome="none", interval="annual"),
        "effects": effects,
    }
    _, text, _ = render_email("workspace_closed", context)
    assert "\n\n\n" not in text, text
    assert "not refunded.\n\n" + "".join(f"{effect}\n" for effect in effects) in text, text


def test_every_email_writes_its_dates_as_the_pages_do():
    """Every email writes a date as the pages and the invoice documents do ("4 Dec 2026") and a
    month by its name ("December 2026"): the closure email wrote "December 4, 2026" beside the
    acceptance email's "4 Dec 2027". Each kind is rendered with every date on 4 December."""
    on, month_of = date(2026, 12, 4), date(2026, 12, 1)
    ns = SimpleNamespace
    workspace_ = ns(name="Acme", billing_email="billing@acme.example", slug="acme")
    context = {
        "workspace": workspace_,
        "subscription": ns(
            trial_end=on,
            trial_days=14,
            interval="monthly",
            trial_outcome="ended",
            plan=ns(code="team"),
        ),
        "free_plan": ns(included_mtus=10_000),
        "event": ns(cause="trial_not_paid", on=on, month=month_of, to_lock="locked"),
        "reported": None,
        "closure": ns(closed_on=on),
        "final_invoice": ns(
            number="INV-2026-000001",
            total=D("100.00"),
            period_start=date(2026, 12, 1),
            period_end=on,
        ),
        "effects": [],
        "application": ns(
            pk=7,
            company_name="Rocket",
            contact_name="Ada",
            submitted_on=on,
            rejection_reason="Too late",
            workspace=workspace_,
        ),
        "grant": ns(amount=D("25000.00"), valid_until=on),
        "deals": [],
        "partner": ns(
            pk=3,
            name="Seedbed",
            contact_name="Mira",
            applied_on=on,
            credit_amount=None,
            review_note="",
        ),
        "coupon": ns(code="HALF", value_display="50% off", duration_display="Once", redeem_by=on),
        "campaign": ns(subject="An offer", message="Hello"),
    }
    unlocked = {**context, "event": ns(cause="under_limit", on=on, month=month_of)}
    written = {}
    for kind in EMAIL_KINDS:
        subject, text, html = render_email(kind, unlocked if kind == "unlocked" else context)
        for part in (subject, text, " ".join(html.split())):
            for wrong in ("December 4", "Dec. 4", "2026-12-04", "4 December 2026"):
                assert wrong not in part, (kind, part)
        written[kind] = [f for f in ("4 Dec 2026", "December 2026") if f in text and f in html]
    assert written == {
        **{kind: ["4 Dec 2026"] for kind in EMAIL_KINDS},
        "unlocked": ["December 2026"],  # under the Free limit in December
        "partner_approved": [],
        "workspace_closed": ["4 Dec 2026", "December 2026"],  # and "1 – 3 December 2026"
    }


def test_f6_a_change_whose_email_fails_in_process_still_succeeds(
    db, settings, caplog, django_capture_on_commit_callbacks
):
    """Walk 9: `make run` sends in process (eager tasks, their errors propagated); with the
    mail server down, the send's first try asked for a retry by raising Celery's Retry out of
    the commit hook, so support's unlock, committed, answered 500. The change stands, its email
    stays pending after one try (the sweep or a resend sends it) and the log says so."""
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDown"
    caplog.set_level("WARNING")
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue(workspace(as_of=date(2026, 1, 1)))
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("pending", 1)
    assert f"emails [{email.pk}] left pending after a try in process" in caplog.text


def test_r1_a_workspaces_emails_link_lists_every_address_it_has_had(db, client, support):
    """R1, F6 (walk 9): the workspace page's "Emails" searched the outbox for the billing
    address it has now, so after support changed it the lock emails sent to the old address
    were not found ("did the customer get the lock email?"). The link lists the emails to
    each address the workspace has had (its history), in any case, and no one else's."""
    ws = workspace(as_of=date(2026, 1, 1), billing_email="Billing+12@example.com")
    old = _queue(ws)
    services.update_workspace(
        ws,
        by=support,
        reason="Ticket 9030",
        name=ws.name,
        business_country="US",
        business_region=ws.business_region,
        billing_email="finance@initech.example",
        as_of=date(2026, 1, 5),
    )
    new = _queue(ws, "trial_converted")
    other = _queue(workspace(as_of=date(2026, 1, 1), billing_email="billing+120@example.com"))
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk]))
    [link] = [url for label, url in page.context["actions"] if label == "Emails"]
    listed = client.get(link)
    assert {e.pk for e in listed.context["cl"].result_list} == {old.pk, new.pk}
    assert other.pk not in {e.pk for e in listed.context["cl"].result_list}
    assert f"{ws.name} ({ws.slug})" in listed.content.decode()  # the filter says whose
    gone = client.get(reverse("admin:billing_outboundemail_changelist"), {"workspace": "999999"})
    assert list(gone.context["cl"].result_list) == []
