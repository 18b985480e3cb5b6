from django.apps import AppConfig


class StartupsConfig(AppConfig):
    name = "startups"
    verbose_name = "Startup program"

    def ready(self):
        """Take part in billing through its hooks: the program's daily steps (CR3 renewal
        reviews, S4 membership), the workspace's history page (R4: its application, the
        application's renewal reviews and deal requests) and the admin index's "Waiting for
        you" (year-two reviews and deal requests, for reviewers); and hear from the coupons
        when a workspace receives a coupon or credit (E4: its open applications' stored
        checks)."""
        from billing.hooks import (
            WaitingList,
            register_daily_step,
            register_waiting_list,
            register_workspace_history,
        )
        from coupons.workspaces import register_receipt_listener
        from startups.models import DealRequest, RenewalReview, StartupApplication
        from startups.services import (
            open_renewal_reviews,
            recheck_after_receipt,
            update_memberships,
        )

        register_daily_step(open_renewal_reviews)
        register_daily_step(update_memberships)
        register_receipt_listener(recheck_after_receipt)
        register_workspace_history(StartupApplication, "workspace")
        for model in (RenewalReview, DealRequest):
            register_workspace_history(model, "application__workspace")
        register_waiting_list(
            WaitingList(
                "startups.review_application",
                RenewalReview.objects.filter(status=RenewalReview.Status.PENDING),
                "year-two review(s)",
                "admin:startups_renewalreview_changelist",
                {"status__exact": RenewalReview.Status.PENDING},
            )
        )
        register_waiting_list(
            WaitingList(
                "startups.change_dealrequest",
                DealRequest.objects.filter(status=DealRequest.Status.REQUESTED),
                "deal request(s)",
                "admin:startups_dealrequest_changelist",
                {"status__exact": DealRequest.Status.REQUESTED},
            )
        )
