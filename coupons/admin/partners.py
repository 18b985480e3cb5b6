"""Accelerator partners (C7) for startup reviewers: programs apply through the public form;
reviewers approve, decline, deactivate and correct them through the services."""

from django.contrib import admin

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import ReadOnlyInline, ServiceAdmin, confirm_and_run, with_reason
from billing.templatetags.money import money
from coupons import services
from coupons.forms import PartnerApprovalForm
from coupons.models import AcceleratorPartner, Coupon


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

    @admin.display(description="Startup credit a year", ordering="credit_amount")
    def credit_display(self, obj):
        return money(obj.credit_amount) if obj.credit_amount is not None else "as STARTUP"

    def update(self, request, partner, data, changed):
        services.update_partner(
            partner,
            by=request.user,
            reason=data["change_reason"],
            **{name: data[name] for name in changed if name in self.fields},
        )

    @admin.action(description="Approve as active partners…", permissions=["review"])
    def approve(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset,
            lambda partner, data: services.approve_partner(
                partner,
                by=request.user,
                as_of=toolkit.today(),
                credit_amount=data["credit_amount"],
                note=data["note"],
            ),
            title="Approve partners",
            done="partner(s) approved",
            form_class=PartnerApprovalForm,
        )

    @admin.action(description="Decline selected applications…", permissions=["review"])
    def decline(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset,
            with_reason(services.decline_partner, request),
            title="Decline partner applications",
            done="application(s) declined",
        )

    @admin.action(description="Deactivate selected partners…", permissions=["review"])
    def deactivate(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset,
            with_reason(services.deactivate_partner, request),
            title="Deactivate partners",
            done="partner(s) deactivated",
        )
