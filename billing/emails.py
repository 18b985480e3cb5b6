"""The email outbox: one row per (kind, object, recipient), sent after commit, sent once.

Services call `queue_email`; the row is written in the service's transaction and the send task
is enqueued only when that transaction commits, so a rolled-back change sends nothing and a
retried task finds the row already sent (STYLE: PostHog's pattern).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import OutboundEmail

logger = logging.getLogger(__name__)


def render_email(template: str, context: dict) -> tuple[str, str, str]:
    """`emails/<template>_subject.txt`, `_body.txt` and `_body.html` → subject, text, html."""
    subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
    text = render_to_string(f"emails/{template}_body.txt", context)
    html = render_to_string(f"emails/{template}_body.html", context)
    return " ".join(subject.split()), text, html


@dataclass(frozen=True)
class EmailSpec:
    kind: str
    object_key: str
    to: str
    template: str
    context: dict


# Emails per send task: one task per email would cost a broker round trip each (RECIPES).
SEND_BATCH = 100


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

    def enqueue():
        for start in range(0, len(new_ids), SEND_BATCH):
            enqueue_sending(new_ids[start : start + SEND_BATCH])

    transaction.on_commit(enqueue)
    return len(new_ids)


def enqueue_sending(email_ids: list[int]):
    from billing.tasks import send_emails

    send_emails.delay(email_ids)


def send_queued_email(email_id: int) -> bool:
    """Send one outbox row unless it was sent already; True when this call sent it.

    A transport error is recorded on the row (committed) and raised again for the task's
    retry; the row stays pending.
    """
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.status == OutboundEmail.Status.SENT:
            return False
        email.attempts += 1
        message = EmailMultiAlternatives(
            email.subject, email.body_text, settings.DEFAULT_FROM_EMAIL, [email.to]
        )
        if email.body_html:
            message.attach_alternative(email.body_html, "text/html")
        try:
            message.send()
        except Exception as exc:  # any transport error: keep the row pending for a retry
            email.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            email.save(update_fields=["attempts", "last_error"])
            failure = exc
        else:
            email.status = OutboundEmail.Status.SENT
            email.sent_at = timezone.now()
            email.last_error = ""
            email.save(update_fields=["attempts", "status", "sent_at", "last_error"])
            return True
    logger.warning("email %s not sent: %s", email_id, failure)
    raise failure
