"""Partner deals (S6): the catalogue of offers, and the requests of accepted startups that staff
fulfil or decline."""

from django.contrib import admin
from django.db.models import Exists, OuterRef

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import ServiceAdmin, bulk_action, immediate_action
from coupons.models import CreditGrant
from startups import services
from startups.models import DealRequest, PartnerDeal, StartupApplication


@admin.register(PartnerDeal)
class PartnerDealAdmin(ServiceAdmin):
    """S6: the catalogue of partner offers."""

    list_display = ["company", "title", "active"]
    list_filter = ["active"]
    search_fields = ["company", "title"]
    fields = ["company", "title", "description", "active"]

    def create(self, request, data):
        return services.save_partner_deal(None, by=request.user, **data)

    def update(self, request, deal, data, changed):
        services.save_partner_deal(deal, by=request.user, **data)


@admin.register(DealRequest)
class DealRequestAdmin(ServiceAdmin):
    """S6: an accepted startup asked staff for a deal; staff fulfil or decline it."""

    list_display = ["deal", "application", "status", "requested_on", "decided_by", "decided_on"]
    list_select_related = ["deal", "application", "decided_by"]
    list_filter = ["status", "deal"]
    actions = ["fulfil", "decline"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["application", "deal"]
        return ["application", "deal", "status", "requested_on", "decided_by", "decided_on", "note"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "application":
            # S4: the startups that are members today (the service refuses the others).
            valid = CreditGrant.objects.valid_on(toolkit.today()).filter(
                workspace=OuterRef("workspace")
            )
            kwargs["queryset"] = StartupApplication.objects.filter(
                Exists(valid), status=StartupApplication.Status.APPROVED
            )
        if db_field.name == "deal":
            kwargs["queryset"] = PartnerDeal.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request, data):
        return services.request_deal(data["application"], deal=data["deal"], as_of=toolkit.today())

    def has_decide_permission(self, request):
        return request.user.has_perm("startups.change_dealrequest")

    # Fulfilling needs nothing confirmed (no money moves, nothing to undo); a decline says why.
    fulfil = immediate_action(
        "Mark fulfilled",
        lambda model_admin, request, deal_request: services.decide_deal_request(
            deal_request, by=request.user, fulfil=True, as_of=toolkit.today()
        ),
        permission="decide",
        done="request(s) fulfilled",
        related=("deal", "application"),
    )
    decline = bulk_action(
        "Decline",
        lambda model_admin, request, deal_request, data: services.decide_deal_request(
            deal_request, by=request.user, fulfil=False, as_of=toolkit.today(), note=data["reason"]
        ),
        permission="decide",
        title="Decline deal requests",
        done="request(s) declined",
        related=("deal", "application"),
    )
