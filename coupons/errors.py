"""Refusals of the coupon services: `BillingError`s whose message is shown to a person as it is."""

from billing.errors import BillingError


class CouponError(BillingError):
    """Bad input or a transition that is not allowed (e.g. a proof reviewed twice)."""


class CouponRefused(CouponError):
    """C2: a redemption refused; `reason` says which rule, for code that needs to tell."""

    UNKNOWN = "unknown"
    INACTIVE = "inactive"
    PAST_REDEEM_BY = "past_redeem_by"
    MAXIMUM_REACHED = "maximum_reached"
    ALREADY_RECEIVED = "already_received"
    STARTUP_AFTER_COUPON = "startup_after_coupon"
    INTERVAL_NOT_COVERED = "interval_not_covered"
    DISCOUNT_ACTIVE = "discount_active"
    NO_NONPROFIT_PROOF = "no_nonprofit_proof"
    # D4: an invoice it would have applied to was issued already for its day or later.
    INVOICED_ALREADY = "invoiced_already"
    # D4: a change dated later was entered for the workspace already (or it signed up later).
    OUT_OF_DATE_ORDER = "out_of_date_order"

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)
