"""The territories the program is open in (E3), set through the service."""

from django.contrib import admin

from billing.admin_toolkit import ServiceAdmin
from startups import services
from startups.models import EligibleTerritory


@admin.register(EligibleTerritory)
class EligibleTerritoryAdmin(ServiceAdmin):
    """E3: the countries the program is open in."""

    list_display = ["country", "active"]
    list_filter = ["active"]
    list_editable = ["active"]
    search_fields = ["country"]

    def create(self, request, data):
        return services.set_territory(data["country"], active=data["active"], by=request.user)

    def update(self, request, territory, data, changed):
        services.set_territory(territory.country, active=data["active"], by=request.user)
