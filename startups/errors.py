"""Refusals of the startup program's services: `BillingError`s whose message is shown to a
person as it is."""

from billing.errors import BillingError


class ApplicationError(BillingError):
    """Bad input or a transition the program does not allow (S1–S7, CR3)."""
