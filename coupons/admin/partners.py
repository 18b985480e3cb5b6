"""Accelerator partners (C7) for startup reviewers: programs apply through the public form;
reviewers approve, decline, deactivate and correct them through the services."""

from functools import partial

from django.contrib import admin

from billing.admin_toolkit import ReadOnlyInline, ServiceAdmin, bulk_action, calls
from billing.formatting import money
from coupons import services
from coupons.forms import PartnerApprovalForm
from coupons.models import AcceleratorPartner, Coupon

# Every decision on a partner is a startup reviewer's (coupons.review_acceleratorpartner).
review_action = partial(bulk_action, permission="review")


class PartnerCouponInline(ReadOnlyInline):
    model = Coupon
    fields = ["code", "name", "kind", "active"]
    show_change_link = True
    verbose_name_plural = "the partner's coupons"


@admin.register(AcceleratorPartner)
class AcceleratorPartnerAdmin(ServiceAdmin):
    """C7: programs apply through the public form; reviewers approve, decline, deactivate and
    correct them through the services."""

    list_display = [
        "name",
        "status",
        "contact_name",
        "contact_email",
        "credit_display",
        "applied_on",
        "reviewed_on",
    ]
    list_filter = ["status", "applied_on"]
    search_fields = ["name", "contact_name", "contact_email"]
    readonly_fields = ["status", "applied_on", "reviewed_by", "reviewed_on", "review_note"]
    fields = [
        *services.PARTNER_DETAILS,
        "credit_amount",
        *readonly_fields,
    ]
    inlines = [PartnerCouponInline]
    actions = ["approve", "decline", "deactivate"]
    reason_on_change = True

    def has_review_permission(self, request):
        return request.user.has_perm("coupons.review_acceleratorpartner")

    @admin.display(description="Credit a year", ordering="credit_amount")
    def credit_display(self, obj):
        return money(obj.credit_amount) if obj.credit_amount is not None else "as STARTUP"

    def update(self, request, partner, data, changed):
        services.update_partner(
            partner,
            by=request.user,
            reason=data["change_reason"],
            **{name: data[name] for name in changed if name in self.fields},
        )

    approve = review_action(
        "Approve as active partners…",
        calls(services.approve_partner, "credit_amount", "note"),
        title="Approve partners",
        done="partner(s) approved",
        form_class=PartnerApprovalForm,
    )
    decline = review_action(
        "Decline selected applications…",
        calls(services.decline_partner, "reason"),
        title="Decline partner applications",
        done="application(s) declined",
    )
    deactivate = review_action(
        "Deactivate selected partners…",
        calls(services.deactivate_partner, "reason"),
        title="Deactivate partners",
        done="partner(s) deactivated",
    )
