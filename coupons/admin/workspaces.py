"""Billing's workspace page with what coupons add to it (R1): the coupons received, the credit
grants, the apply / remove actions, a coupon as a forecast's proposed change (FC1), and a
campaign built on the list's filters (G1). Billing itself knows nothing of coupons."""

from django.contrib import admin
from django.urls import reverse
from django.utils.http import urlencode

from billing import admin_toolkit as toolkit
from billing.admin.forecast import FORECAST_REASON
from billing.admin.workspaces import WorkspaceAdmin
from billing.models import Workspace
from coupons import selectors, services
from coupons.admin.credits import CreditGrantInline
from coupons.admin.redemptions import RedemptionInline
from coupons.forms import CouponForecastForm


class CouponWorkspaceAdmin(WorkspaceAdmin):
    """Billing's workspace page with what coupons add to it: the coupons received, the credit
    grants, and the apply / remove actions (billing itself knows nothing of coupons)."""

    inlines = [*WorkspaceAdmin.inlines, RedemptionInline, CreditGrantInline]
    forecast_form_class = CouponForecastForm  # FC1: a coupon is a proposed change too
    change_list_template = "admin/coupons/workspace/change_list.html"

    def _workspace_actions(self, request, workspace):
        actions = list(super()._workspace_actions(request, workspace))
        if workspace.closed_on is not None:  # W1: a closed workspace offers only reopening
            return actions
        if request.user.has_perm("coupons.add_redemption"):
            url = reverse("admin:coupons_redemption_apply") + f"?workspace={workspace.pk}"
            actions.append(("Apply coupon", url))
        current = selectors.active_discount(workspace, as_of=toolkit.today())
        if current is not None and request.user.has_perm("coupons.remove_discount"):
            actions.append(
                ("Remove discount", reverse("admin:coupons_redemption_remove", args=[current.pk]))
            )
        return actions

    def forecast_form(self, request, workspace, today):
        form = super().forecast_form(request, workspace, today)
        form.offer_to(workspace, today)
        return form

    def proposed_change(self, request, workspace, data):
        if data.get("change") == "coupon" and data.get("coupon"):
            code = data["coupon"].code

            def change(ws, as_of):
                services.redeem_coupon(
                    ws, code, by=request.user, as_of=as_of, reason=FORECAST_REASON
                )

            return f"Apply the coupon {code}", change
        return super().proposed_change(request, workspace, data)

    # G1: a campaign built on the list's filters (plan, interval, lock, country, program).
    CAMPAIGN_FILTERS = {
        "plan": "plan",
        "interval": "interval",
        "lock__exact": "lock",
        "business_country__exact": "country",
    }

    def changelist_view(self, request, extra_context=None):
        if request.user.has_perm("coupons.add_campaign"):
            initial = {
                field: request.GET[param]
                for param, field in self.CAMPAIGN_FILTERS.items()
                if request.GET.get(param)
            }
            member = request.GET.get("startup_member__exact")
            if member in ("0", "1"):
                initial["startup_member"] = "yes" if member == "1" else "no"
            if initial.get("interval"):
                initial["plan"] = "team"
            extra_context = {
                **(extra_context or {}),
                "campaign_url": reverse("admin:coupons_campaign_add") + "?" + urlencode(initial),
            }
        return super().changelist_view(request, extra_context)


admin.site.unregister(Workspace)
admin.site.register(Workspace, CouponWorkspaceAdmin)
