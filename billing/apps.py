from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Connects the history signal that records who and why for services (R4).
        from billing import audit  # noqa: F401
