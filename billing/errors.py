class BillingError(Exception):
    """A refusal by a service; its message is written to be shown to a person as it is."""


class PaymentMethodRequired(BillingError):
    pass


class InvalidPlanChange(BillingError):
    pass


class InvalidDocument(BillingError):
    """X5, C6: an upload that is not a PDF, PNG or JPEG by its content, is empty or is over
    10 MB (`billing.documents.document_type`)."""


class UsageImportError(BillingError):
    """A usage file was refused whole; `errors` lists every bad line with its reason."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__(
            f"The usage file was not imported: {len(self.errors)} bad line(s). "
            + " ".join(self.errors)
        )


class DayAlreadyProcessed(BillingError):
    """D2: a change dated on or before the last day the billing clock processed."""
