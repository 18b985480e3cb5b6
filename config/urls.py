from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from billing.health import healthz
from billing.search import search_view
from config.password_change import password_change

admin.site.site_header = "Billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Workspaces, invoices, coupons and the startup program"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # The header's search box (billing/search.py): signed-in staff, results within their role.
    path("admin/search/", admin.site.admin_view(search_view), name="site-search"),
    # Before the admin's own page at this address, which checks the old password unthrottled.
    path("admin/password_change/", admin.site.admin_view(password_change)),
    path("admin/", admin.site.urls),
    # For the load balancer: no login, no data (billing/health.py).
    path("healthz", healthz, name="healthz"),
    path("finance/credits/", include("coupons.finance_urls")),
    path("finance/", include("billing.urls")),
    path("startups/", include("startups.urls")),
    path("partners/", include("coupons.urls")),
]
