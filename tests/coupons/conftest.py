import pytest

from coupons.adjustments import CouponAdjustments


@pytest.fixture(autouse=True)
def _coupon_adjustments(swap_invoice_adjustments):
    """Coupons take part in every invoice here, whatever an earlier test registered in its
    place (a billing test swaps the hook for its own and back)."""
    swap_invoice_adjustments(CouponAdjustments())
