from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = "Coupons and credits"

    def ready(self):
        """Take part in billing through its hooks (billing never imports coupons): discounts
        and credits on invoices (C4, C5, CR2), and the coupons' daily step of the billing clock
        (C5 expiries and follow-ups, CR3 lapses), and closing a workspace (W1: the discount
        ends, unused credit lapses)."""
        from billing.hooks import (
            register_closure_step,
            register_daily_step,
            register_invoice_adjustments,
        )
        from coupons.adjustments import CouponAdjustments
        from coupons.closures import CLOSURE_STEP
        from coupons.services import run_coupon_clock

        register_invoice_adjustments(CouponAdjustments())
        register_daily_step(run_coupon_clock)
        register_closure_step(CLOSURE_STEP)
