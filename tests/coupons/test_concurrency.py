"""C2 on PostgreSQL: two agents apply the coupon's last redemption at the same moment, each
in its own thread and connection; one gets it, the other is told the maximum was reached."""

from datetime import date

import pytest

from coupons import services
from coupons.errors import CouponRefused
from coupons.models import Coupon, Redemption
from tests.services import require_postgres

from .factories import coupon, free_workspace

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _needs_postgres():
    require_postgres()  # SQLite serialises writers: the race staged here cannot happen


def test_c2_concurrent_last_redemption_goes_to_one_workspace(run_together):
    promo = coupon(max_redemptions=2)
    services.redeem_coupon(free_workspace(), promo.code, by=None, as_of=date(2026, 1, 5))
    first, second = free_workspace(), free_workspace()

    outcomes = run_together(
        lambda: services.redeem_coupon(first, promo.code, by=None, as_of=date(2026, 1, 5)),
        lambda: services.redeem_coupon(second, promo.code, by=None, as_of=date(2026, 1, 5)),
        refusals=CouponRefused,
    )

    redeemed = [o for o in outcomes if isinstance(o, Redemption)]
    refused = [o for o in outcomes if isinstance(o, CouponRefused)]
    assert (len(redeemed), len(refused)) == (1, 1), outcomes
    assert refused[0].reason == CouponRefused.MAXIMUM_REACHED
    assert Coupon.objects.get(pk=promo.pk).times_redeemed == 2
    assert Redemption.objects.filter(coupon=promo).count() == 2


def test_c2_the_same_coupon_twice_at_once_for_one_workspace_is_redeemed_once(run_together):
    promo = coupon()
    ws = free_workspace()
    outcomes = run_together(
        *[lambda: services.redeem_coupon(ws, promo.code, by=None, as_of=date(2026, 1, 5))] * 2,
        refusals=CouponRefused,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["CouponRefused", "Redemption"]
    assert Redemption.objects.filter(workspace=ws).count() == 1
    assert Coupon.objects.get(pk=promo.pk).times_redeemed == 1
