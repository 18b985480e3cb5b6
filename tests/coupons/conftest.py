import pytest
from django.core.cache import cache

from coupons.adjustments import CouponAdjustments


@pytest.fixture(autouse=True)
def _coupon_adjustments(swap_invoice_adjustments):
    """Coupons take part in every invoice here, whatever an earlier test registered in its
    place (a billing test swaps the hook for its own and back)."""
    swap_invoice_adjustments(CouponAdjustments())


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the public form's rate limit counts in the cache
    yield
    cache.clear()
