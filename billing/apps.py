from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Connects the history signal that records who and why for services (R4), and
        # registers the deploy checks.
        from billing import (
            audit,  # noqa: F401
            checks,  # noqa: F401
            emails,
            tasks,
        )

        # The outbox hands its rows to the send task: the edge registers itself (no import of
        # the task layer from the rules below it).
        emails.hand_sending_to(tasks.hand_to_sender)
        _register_waiting_lists()
        _name_the_yes_no_icons()


def _name_the_yes_no_icons():
    """Django has no setting for its yes/no icons' alt text; every list column and read-only
    field draws them through this one function of its list tags, looked up when drawn."""
    from django.contrib.admin.templatetags import admin_list

    from billing.admin_toolkit import yes_no_icon

    admin_list._boolean_icon = yes_no_icon


def _register_waiting_lists():
    """The admin index's "Waiting for you" of billing's rows (`billing.hooks.WaitingList`)."""
    from billing.hooks import WaitingList, register_waiting_list
    from billing.models import CreditNote, OutboundEmail, TaxExemption

    register_waiting_list(
        WaitingList(
            "billing.review_taxexemption",
            TaxExemption.objects.filter(status__in=TaxExemption.OPEN_STATUSES),
            "tax-exemption certificate(s)",
            "admin:billing_taxexemption_changelist",
            {"status__in": ",".join(TaxExemption.OPEN_STATUSES)},
        )
    )
    register_waiting_list(
        WaitingList(
            "billing.approve_creditnote",
            CreditNote.objects.filter(status=CreditNote.Status.REQUESTED),
            "credit-note request(s)",
            "admin:billing_creditnote_changelist",
            {"status__exact": CreditNote.Status.REQUESTED},
        )
    )
    register_waiting_list(
        WaitingList(
            "billing.resend_outboundemail",
            OutboundEmail.objects.filter(status=OutboundEmail.Status.FAILED),
            "failed email(s) to send again",
            "admin:billing_outboundemail_changelist",
            {"status__exact": OutboundEmail.Status.FAILED},
        )
    )
