"""The territories the program is open in (E3), set through the service."""

from django import forms
from django.contrib import admin

from billing.admin_toolkit import ReasonField, ServiceAdmin, country_column
from startups import services
from startups.models import EligibleTerritory


class TerritoryForm(forms.ModelForm):
    # R4: opening or closing a country flips E3 for every open application from there.
    change_reason = ReasonField(label="Reason")

    class Meta:
        model = EligibleTerritory
        fields = ["country", "active"]


@admin.register(EligibleTerritory)
class EligibleTerritoryAdmin(ServiceAdmin):
    """E3: the countries the program is open in; each change asks why (no editing in the
    list, which cannot)."""

    form = TerritoryForm
    reason_on_change = True
    fields = ["country", "active"]
    list_display = ["country_display", "active"]
    country_display = country_column
    list_filter = ["active"]
    search_fields = ["country"]

    def get_fields(self, request, obj=None):
        return [*self.fields, "change_reason"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["country"]

    def create(self, request, data):
        return services.set_territory(
            data["country"], active=data["active"], by=request.user, reason=data["change_reason"]
        )

    def update(self, request, territory, data, changed):
        services.set_territory(
            territory.country, active=data["active"], by=request.user, reason=data["change_reason"]
        )
