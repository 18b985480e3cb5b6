"""Coupons in the support console (R1), partners for startup reviewers (R2), credits read-only
for finance (R3). Pages and actions call the services; a refusal comes back as a message that
says why. Money rows are never deleted, and a redeemed coupon's discount cannot change."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from billing import admin_toolkit as toolkit
from billing.admin import WorkspaceAdmin
from billing.admin_toolkit import (
    ReadOnlyInline,
    ReasonForm,
    ServiceAdmin,
    confirm_and_run,
    service_form_page,
)
from billing.models import Workspace
from coupons import selectors, services
from coupons.forms import (
    ApplyCouponForm,
    CouponForm,
    NonprofitProofForm,
    PartnerApprovalForm,
)
from coupons.models import (
    AcceleratorPartner,
    Coupon,
    CreditGrant,
    CreditLedgerEntry,
    DiscountApplication,
    NonprofitProof,
    Redemption,
)

# --- Coupons (C1, C2) -----------------------------------------------------------------------


@admin.register(Coupon)
class CouponAdmin(ServiceAdmin):
    form = CouponForm
    reason_on_change = True
    list_display = [
        "code",
        "name",
        "kind",
        "value",
        "duration_text",
        "intervals_text",
        "redeemed",
        "remaining",
        "status",
        "redeem_by",
        "partner",
    ]
    list_filter = ["kind", "duration", "active", "partner"]
    list_select_related = ["partner"]
    search_fields = ["code", "name"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "active", "partner"]}),
        (
            "Discount or credit (exactly one)",
            {"fields": ["percent_off", "amount_off", "credit_amount"]},
        ),
        ("Duration", {"fields": ["duration", "duration_months", "follow_up"]}),
        ("Applies to", {"fields": ["applies_monthly", "applies_annual"]}),
        ("Limits", {"fields": ["redeem_by", "max_redemptions", "times_redeemed"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(redeemed_count=Count("redemptions"))

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["times_redeemed"]
        if obj.redemptions.exists():
            # A redeemed coupon's discount is what workspaces were given: it cannot change.
            editable = services.EDITABLE_AFTER_REDEMPTION
            return [
                f
                for f in CouponForm.Meta.fields + ["times_redeemed"]
                if f not in editable or f == "code"
            ]
        return ["code", "times_redeemed"]

    def update(self, request, coupon, data, changed):
        services.update_coupon(
            coupon,
            by=request.user,
            reason=data["change_reason"],
            **{name: data[name] for name in changed if name in CouponForm.Meta.fields},
        )

    def create(self, request, data):
        return services.create_coupon(
            data["code"],
            data["name"],
            data["kind"],
            percent_off=data["percent_off"],
            amount_off=data["amount_off"],
            credit_amount=data["credit_amount"],
            duration=data["duration"],
            duration_months=data["duration_months"],
            redeem_by=data["redeem_by"],
            max_redemptions=data["max_redemptions"],
            intervals=CouponForm.intervals(data),
            follow_up=data["follow_up"],
            partner=data["partner"],
            active=data["active"],
            by=request.user,
        )

    @admin.display(description="Value")
    def value(self, obj):
        return obj.value_display

    @admin.display(description="Duration", ordering="duration")
    def duration_text(self, obj):
        return obj.duration_display

    @admin.display(description="Intervals")
    def intervals_text(self, obj):
        return ", ".join(obj.intervals)

    @admin.display(description="Used", ordering="redeemed_count")
    def redeemed(self, obj):
        return obj.redeemed_count

    @admin.display(description="Remaining")
    def remaining(self, obj):
        if obj.max_redemptions is None:
            return "no limit"
        return max(obj.max_redemptions - obj.times_redeemed, 0)

    @admin.display(description="Status")
    def status(self, obj):
        return selectors.coupon_status(obj, as_of=toolkit.today())


# --- Redemptions (C2, C5) -------------------------------------------------------------------


@admin.register(Redemption)
class RedemptionAdmin(ServiceAdmin):
    list_display = [
        "workspace",
        "coupon",
        "redeemed_on",
        "status",
        "runs_out_on",
        "ended_on",
        "by",
        "is_follow_up",
    ]
    list_filter = ["status", "is_follow_up", "coupon__kind", "coupon"]
    list_select_related = ["workspace", "coupon", "by"]
    search_fields = ["workspace__slug", "workspace__name", "coupon__code"]
    date_hierarchy = "redeemed_on"
    change_list_template = "admin/coupons/redemption/change_list.html"
    fields = [
        "workspace",
        "coupon",
        "redeemed_on",
        "started_month",
        "runs_out_on",
        "status",
        "ended_on",
        "by",
        "reason",
        "is_follow_up",
        "follows",
        "override_reason",
        "partner",
    ]

    def get_urls(self):
        return [
            path(
                "apply/",
                self.admin_site.admin_view(self.apply_view),
                name="coupons_redemption_apply",
            ),
            path(
                "<int:pk>/remove/",
                self.admin_site.admin_view(self.remove_view),
                name="coupons_redemption_remove",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_apply": request.user.has_perm("coupons.add_redemption"),
        }
        return super().changelist_view(request, extra_context)

    def apply_view(self, request):
        """C2: support applies a coupon; the service's refusal is shown as it is."""
        if not request.user.has_perm("coupons.add_redemption"):
            raise PermissionDenied
        initial = {"workspace": request.GET.get("workspace")}
        form = ApplyCouponForm(request.POST or None, initial=initial, admin_site=self.admin_site)

        def perform(data):
            workspace = data["workspace"]
            redemption = services.redeem_coupon(
                workspace,
                data["coupon"].code,
                by=request.user,
                as_of=toolkit.today(),
                reason=data["reason"],
            )
            return f"{redemption.coupon.code} applied to {workspace.name}.", redemption

        back = request.POST.get("workspace") or request.GET.get("workspace")
        back_url = (
            reverse("admin:billing_workspace_change", args=[back])
            if back and str(back).isdigit()
            else reverse("admin:coupons_redemption_changelist")
        )
        return service_form_page(
            self,
            request,
            None,
            title="Apply a coupon",
            form=form,
            back_url=back_url,
            perform=perform,
        )

    def remove_view(self, request, pk):
        """C5: support removes a workspace's running discount, with a reason."""
        if not request.user.has_perm("coupons.remove_discount"):
            raise PermissionDenied
        redemption = get_object_or_404(Redemption.objects.select_related("workspace"), pk=pk)
        workspace = redemption.workspace

        def perform(data):
            removed = services.remove_discount(
                workspace, by=request.user, reason=data["reason"], as_of=toolkit.today()
            )
            return f"{removed.coupon.code} removed from {workspace.name}.", removed

        return service_form_page(
            self,
            request,
            redemption,
            title=f"Remove the discount of {workspace.name}",
            form=ReasonForm(request.POST or None),
            back_url=reverse("admin:billing_workspace_change", args=[workspace.pk]),
            perform=perform,
            intro=selectors.redemption_summary(redemption),
        )


@admin.register(DiscountApplication)
class DiscountApplicationAdmin(ServiceAdmin):
    list_display = ["invoice", "redemption", "amount", "created_at"]
    list_select_related = ["invoice", "redemption__coupon", "redemption__workspace"]
    search_fields = ["invoice__number", "redemption__coupon__code", "redemption__workspace__slug"]


# --- Credits (CR1–CR3) ----------------------------------------------------------------------


class LedgerInline(ReadOnlyInline):
    model = CreditLedgerEntry
    fields = ["on", "kind", "amount", "invoice"]


@admin.register(CreditGrant)
class CreditGrantAdmin(ServiceAdmin):
    list_display = [
        "workspace",
        "year",
        "amount",
        "remaining",
        "valid_from",
        "valid_until",
        "lapsed_on",
        "partner",
    ]
    list_filter = ["year", "valid_until"]
    list_select_related = ["workspace", "partner"]
    search_fields = ["workspace__slug", "workspace__name"]
    fields = [
        "workspace",
        "year",
        "amount",
        "remaining",
        "valid_from",
        "valid_until",
        "lapsed_on",
        "redemption",
        "partner",
        "granted_by",
    ]
    inlines = [LedgerInline]


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ServiceAdmin):
    list_display = ["grant", "on", "kind", "amount", "invoice"]
    list_filter = ["kind", "on"]
    list_select_related = ["grant__workspace", "invoice"]
    search_fields = ["grant__workspace__slug", "invoice__number"]


# --- Accelerator partners (C7) --------------------------------------------------------------


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
        "credit_amount",
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
            lambda partner, data: services.decline_partner(
                partner, by=request.user, reason=data["reason"], as_of=toolkit.today()
            ),
            title="Decline partner applications",
            done="application(s) declined",
        )

    @admin.action(description="Deactivate selected partners…", permissions=["review"])
    def deactivate(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset,
            lambda partner, data: services.deactivate_partner(
                partner, by=request.user, reason=data["reason"], as_of=toolkit.today()
            ),
            title="Deactivate partners",
            done="partner(s) deactivated",
        )


# --- Non-profit proofs (C6) -----------------------------------------------------------------


@admin.register(NonprofitProof)
class NonprofitProofAdmin(ServiceAdmin):
    list_display = [
        "workspace",
        "submitted_on",
        "status",
        "original_name",
        "size",
        "reviewed_by",
        "reviewed_on",
    ]
    list_filter = ["status", "submitted_on"]
    list_select_related = ["workspace", "reviewed_by"]
    search_fields = ["workspace__slug", "workspace__name"]
    autocomplete_fields = ["workspace"]
    actions = ["approve_and_apply", "approve_only", "reject"]
    change_readonly = [
        "workspace",
        "download",
        "content_type",
        "original_name",
        "size",
        "submitted_on",
        "submitted_by",
        "status",
        "reviewed_by",
        "reviewed_on",
        "reason",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NonprofitProofForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["workspace", "document"] if obj is None else self.change_readonly

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.change_readonly

    def has_review_permission(self, request):
        return request.user.has_perm("coupons.review_nonprofitproof")

    def create(self, request, data):
        return services.submit_nonprofit_proof(
            data["workspace"], document=data["document"], by=request.user, as_of=toolkit.today()
        )

    @admin.display(description="Document")
    def download(self, obj):
        url = reverse("coupons:proof-document", args=[obj.pk])
        return format_html(
            '<a href="{}">Download ({}, {} bytes)</a>', url, obj.content_type, obj.size
        )

    def _approve(self, request, queryset, apply_discount):
        return confirm_and_run(
            self,
            request,
            queryset.select_related("workspace"),
            lambda proof, data: services.approve_nonprofit_proof(
                proof, by=request.user, as_of=toolkit.today(), apply_discount=apply_discount
            ),
            title="Approve and apply NONPROFIT" if apply_discount else "Approve proofs",
            done="proof(s) approved" + ("; NONPROFIT applied" if apply_discount else ""),
            form_class=None,
            intro="NONPROFIT takes $120.00 off each monthly Team bill, forever (C6)."
            if apply_discount
            else "",
            describe=lambda proof: f"{proof.workspace.name}: {proof.original_name}",
        )

    @admin.action(description="Approve and apply the non-profit discount…", permissions=["review"])
    def approve_and_apply(self, request, queryset):
        return self._approve(request, queryset, apply_discount=True)

    @admin.action(description="Approve only (apply the discount later)…", permissions=["review"])
    def approve_only(self, request, queryset):
        return self._approve(request, queryset, apply_discount=False)

    @admin.action(description="Reject selected proofs…", permissions=["review"])
    def reject(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset.select_related("workspace"),
            lambda proof, data: services.reject_nonprofit_proof(
                proof, by=request.user, reason=data["reason"], as_of=toolkit.today()
            ),
            title="Reject proofs",
            done="proof(s) rejected",
            describe=lambda proof: f"{proof.workspace.name}: {proof.original_name}",
        )


# --- The workspace page: its coupons and credit (R1) ----------------------------------------


class RedemptionInline(ReadOnlyInline):
    model = Redemption
    fk_name = "workspace"
    fields = ["coupon", "redeemed_on", "status", "runs_out_on", "ended_on", "by", "is_follow_up"]
    show_change_link = True
    verbose_name_plural = "coupons received"


class CreditGrantInline(ReadOnlyInline):
    model = CreditGrant
    fields = ["year", "amount", "remaining", "valid_from", "valid_until", "lapsed_on"]
    show_change_link = True
    verbose_name_plural = "startup credit grants"


class CouponWorkspaceAdmin(WorkspaceAdmin):
    """Billing's workspace page with what coupons add to it: the coupons received, the credit
    grants, and the apply / remove actions (billing itself knows nothing of coupons)."""

    inlines = [*WorkspaceAdmin.inlines, RedemptionInline, CreditGrantInline]

    def _workspace_actions(self, request, workspace):
        actions = list(super()._workspace_actions(request, workspace))
        if request.user.has_perm("coupons.add_redemption"):
            url = reverse("admin:coupons_redemption_apply") + f"?workspace={workspace.pk}"
            actions.append(("Apply coupon", url))
        current = selectors.active_discount(workspace, as_of=toolkit.today())
        if current is not None and request.user.has_perm("coupons.remove_discount"):
            actions.append(
                ("Remove discount", reverse("admin:coupons_redemption_remove", args=[current.pk]))
            )
        return actions


admin.site.unregister(Workspace)
admin.site.register(Workspace, CouponWorkspaceAdmin)
