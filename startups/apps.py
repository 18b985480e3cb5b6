from django.apps import AppConfig


class StartupsConfig(AppConfig):
    name = "startups"
    verbose_name = "Startup program"

    def ready(self):
        """Take part in billing through its hooks: the program's daily steps (CR3 renewal
        reviews, S4 membership) and the workspace's history page (R4: its application, the
        application's renewal reviews and deal requests)."""
        from billing.hooks import register_daily_step, register_workspace_history
        from startups.models import DealRequest, RenewalReview, StartupApplication
        from startups.services import open_renewal_reviews, update_memberships

        register_daily_step(open_renewal_reviews)
        register_daily_step(update_memberships)
        register_workspace_history(StartupApplication, "workspace")
        for model in (RenewalReview, DealRequest):
            register_workspace_history(model, "application__workspace")
