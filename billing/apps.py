from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Connects the history signal that records who and why for services (R4).
        from billing import (
            audit,  # noqa: F401
            emails,
            tasks,
        )

        # The outbox hands its rows to the send task: the edge registers itself (no import of
        # the task layer from the rules below it).
        emails.hand_sending_to(tasks.hand_to_sender)
