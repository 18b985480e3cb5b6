from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = "Coupons and credits"

    def ready(self):
        """Take part in billing through its hooks (billing never imports coupons): discounts
        and credits on invoices (C4, C5, CR2), the coupons' daily step of the billing clock
        (C5 expiries and follow-ups, CR3 lapses), closing a workspace (W1: the discount
        ends, unused credit lapses), the workspace's history page (R4: coupons received,
        credit grants, non-profit proofs) and the admin index's "Waiting for you" (non-profit
        proofs for support, partner applications for reviewers). A campaign's launch hands its
        batches to the workers through the task module (G2), which is the only one of the two
        to import the other."""
        from billing.hooks import (
            WaitingList,
            register_closure_step,
            register_daily_step,
            register_invoice_adjustments,
            register_waiting_list,
            register_workspace_history,
        )
        from coupons.adjustments import CouponAdjustments
        from coupons.campaigns import register_batch_dispatch
        from coupons.closures import CLOSURE_STEP
        from coupons.models import AcceleratorPartner, CreditGrant, NonprofitProof, Redemption
        from coupons.services import run_coupon_clock
        from coupons.tasks import dispatch_campaign_batches

        register_invoice_adjustments(CouponAdjustments())
        register_daily_step(run_coupon_clock)
        register_closure_step(CLOSURE_STEP)
        register_batch_dispatch(dispatch_campaign_batches)
        for model in (Redemption, CreditGrant, NonprofitProof):
            register_workspace_history(model, "workspace")
        register_waiting_list(
            WaitingList(
                "coupons.review_nonprofitproof",
                NonprofitProof.objects.filter(status=NonprofitProof.Status.SUBMITTED),
                "non-profit proof(s)",
                "admin:coupons_nonprofitproof_changelist",
                {"status__exact": NonprofitProof.Status.SUBMITTED},
            )
        )
        register_waiting_list(
            WaitingList(
                "coupons.review_acceleratorpartner",
                AcceleratorPartner.objects.filter(status=AcceleratorPartner.Status.APPLIED),
                "partner application(s)",
                "admin:coupons_acceleratorpartner_changelist",
                {"status__exact": AcceleratorPartner.Status.APPLIED},
            )
        )
