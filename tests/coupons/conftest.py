import pytest
from django.core.cache import cache

from billing.hooks import invoice_adjustments, register_invoice_adjustments
from coupons.adjustments import CouponAdjustments


@pytest.fixture(autouse=True)
def _coupon_adjustments():
    """Coupons take part in every invoice here, whatever an earlier test registered in its
    place (a billing test swaps the hook for its own and back to none)."""
    before = invoice_adjustments()
    register_invoice_adjustments(CouponAdjustments())
    yield
    register_invoice_adjustments(before)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the public form's rate limit counts in the cache
    yield
    cache.clear()
