"""Who changed what, when and why (SPEC R4): one way to save with a reason, and one way for a
service to say who acts and why for every history row its work writes.

django-simple-history records the user of a request by itself; a service called from a task or a
command, or a reason that a person typed, is handed over here."""

import functools
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record

from billing.errors import BillingError

_because: ContextVar[tuple | None] = ContextVar("audit_because", default=None)


def require_reason(reason: str, message: str, *, error=None) -> str:
    """R4: the reason, stripped; a missing or blank one is refused with `message`."""
    if not reason or not reason.strip():
        raise (error or BillingError)(message)
    return reason.strip()


def save_with_reason(instance, reason: str, by=None, fields=None):
    """Save `instance`; its history row says why (reasons of any length: the column is text)
    and who, when `by` is given (outside a request)."""
    instance._change_reason = reason
    if by is not None:
        instance._history_user = by
    instance.save(update_fields=fields)


@contextmanager
def because(reason: str = "", by=None):
    """Every history row written inside the block without a reason of its own gets `reason`
    (and `by` as its user when the request has none)."""
    token = _because.set((reason.strip(), by) if (reason and reason.strip()) or by else None)
    try:
        yield
    finally:
        _because.reset(token)


def with_reason(text: str, reason: str) -> str:
    """`text`, followed by the person's reason when there is one."""
    return f"{text}: {reason.strip()}" if reason and reason.strip() else text


def records_why(action: str):
    """A service decorated with this takes `reason` and `by` keywords: every history row it
    writes without a reason of its own says `action: reason`, and `by` when no request does."""

    def decorate(service):
        @functools.wraps(service)
        def audited(*args, reason: str = "", by=None, **kwargs):
            with because(with_reason(action, reason), by):
                return service(*args, **kwargs)

        return audited

    return decorate


@receiver(pre_create_historical_record)
def _fill_in_why(sender, history_instance, **kwargs):
    current = _because.get()
    if current is None:
        return
    reason, by = current
    if reason and not history_instance.history_change_reason:
        history_instance.history_change_reason = reason
    if by is not None and history_instance.history_user_id is None:
        history_instance.history_user = by
