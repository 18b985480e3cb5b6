from django.apps import AppConfig


class StartupsConfig(AppConfig):
    name = "startups"
    verbose_name = "Startup program"

    def ready(self):
        from billing.hooks import register_daily_step
        from startups.services import open_renewal_reviews, update_memberships

        register_daily_step(open_renewal_reviews)
        register_daily_step(update_memberships)
