"""Partner deals (S6): the catalogue of offers, and the requests of accepted startups that staff
fulfil or decline, on each request's page or from the list."""

from django.contrib import admin
from django.db.models import Exists, OuterRef

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import DecisionPages, ServiceAdmin, decision_action, immediate_action
from billing.formatting import day
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
class DealRequestAdmin(DecisionPages, ServiceAdmin):
    """S6: an accepted startup asked staff for a deal; staff fulfil or decline it."""

    list_display = ["deal", "application", "status", "requested_on", "decided_by", "decided_on"]
    list_select_related = ["deal", "application", "decided_by"]
    list_filter = ["status", "deal"]
    actions = ["fulfil", "decline"]
    # Decided on its page (toolkit.DecisionPages); a request has no document.
    change_form_template = "admin/toolkit/decision_change_form.html"
    decisions = {"fulfil": "Mark fulfilled", "decline": "Decline"}
    reasoned = ("decline",)
    review_permission = "startups.change_dealrequest"
    decide_url_name = "startups_dealrequest_decide"
    row_name = "deal_request"
    decision_related = ("deal", "application", "decided_by")
    has_document = False

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

    # --- the decisions, on the request's page and from the list ---

    def open_decisions(self, deal_request):
        return list(self.decisions) if deal_request.status == DealRequest.Status.REQUESTED else []

    def decided(self, deal_request, decision):
        if deal_request.status == DealRequest.Status.REQUESTED:
            return ""
        by = f" by {deal_request.decided_by}" if deal_request.decided_by else ""
        return (
            f"This request was already {deal_request.get_status_display().lower()} on "
            f"{day(deal_request.decided_on)}{by}: a decision is final."
        )

    def decision_subject(self, deal_request):
        return f"{deal_request.deal} for {deal_request.application.company_name}"

    def decision_intros(self, deal_request):
        asked = (
            f"{deal_request.application.company_name} asked for {deal_request.deal} on "
            f"{day(deal_request.requested_on)}."
        )
        return {
            "fulfil": f"{asked} Mark it fulfilled once the offer has been passed on.",
            "decline": f"{asked} It is declined with your reason, which is kept.",
        }

    def decide(self, request, deal_request, decision, data):
        """S6: one request fulfilled or declined (with why, R4), as of the admin's today."""
        fulfil = decision == "fulfil"
        services.decide_deal_request(
            deal_request,
            by=request.user,
            fulfil=fulfil,
            as_of=toolkit.today(),
            note="" if fulfil else data["reason"],
        )
        done = "fulfilled" if fulfil else "declined"
        return f"{deal_request.application.company_name}'s request for {deal_request.deal} {done}."

    # Fulfilling from the list needs nothing confirmed (no money moves); a decline says why.
    fulfil = immediate_action(
        "Mark fulfilled",
        lambda model_admin, request, deal_request: model_admin.decide(
            request, deal_request, "fulfil", {}
        ),
        permission="review",
        done="request(s) fulfilled",
        related=("deal", "application"),
    )
    decline = decision_action(
        "decline", "Decline", title="Decline deal requests", done="request(s) declined"
    )
