"""The Free limit's strikes and every lock change (F1–F6), read-only: the services write them."""

from django.contrib import admin

from billing.admin_toolkit import MonthListFilter, ServiceAdmin, shown_column
from billing.formatting import count, month
from billing.models import LockEvent, Strike


@admin.register(Strike)
class StrikeAdmin(ServiceAdmin):
    list_display = ["workspace", "month_display", "mtus_display"]
    list_select_related = ["workspace"]
    list_filter = [MonthListFilter]
    search_fields = ["workspace__slug"]

    month_display = shown_column("month", month, description="Month over the Free limit")
    mtus_display = shown_column("mtus", count, description="MTUs")


@admin.register(LockEvent)
class LockEventAdmin(ServiceAdmin):
    list_display = ["workspace", "on", "from_lock", "to_lock", "cause", "reason", "by"]
    list_select_related = ["workspace", "by"]
    list_filter = ["cause", "to_lock", "on"]
    search_fields = ["workspace__slug", "reason"]
