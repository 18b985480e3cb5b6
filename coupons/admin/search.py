"""What the header's search box finds in coupons (`billing.search`): coupons by code or name."""

from django.utils.html import format_html

from billing import admin_toolkit as toolkit
from billing import search
from billing.admin_toolkit import badge
from coupons import selectors
from coupons.models import Coupon

COUPON_TONES = {"Active": "good", "Inactive": "quiet", "Expired": "quiet", "Used up": "quiet"}


def _describe_coupon(coupon):
    status = selectors.coupon_status(coupon, as_of=toolkit.today())
    detail = format_html(
        "{} · {} · {}", coupon.name, coupon.value_display, badge(status, COUPON_TONES.get(status))
    )
    return coupon.code, detail


search.register(
    Coupon,
    label="Coupons",
    fields=("code", "name"),
    exact=("code",),
    order_by=("code",),
    describe=_describe_coupon,
)
