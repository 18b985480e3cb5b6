import pytest


@pytest.fixture(autouse=True)
def _coupons_take_part(coupon_adjustments):
    """Coupons take part in every invoice here (tests/conftest.py's `coupon_adjustments`)."""
