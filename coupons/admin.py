"""Coupons in the support console (R1), partners for startup reviewers (R2), credits read-only
for finance (R3). Pages and actions call the services; a refusal comes back as a message that
says why. Money rows are never deleted, and a redeemed coupon's discount cannot change."""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from billing.admin import WorkspaceAdmin
from billing.errors import BillingError
from billing.models import Workspace
from coupons import selectors, services
from coupons.forms import (
    ApplyCouponForm,
    CouponForm,
    NonprofitProofForm,
    PartnerApprovalForm,
    ReasonForm,
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


def _today():
    return timezone.now().date()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _form_page(model_admin, request, *, title, form, back_url, perform, context=None):
    """A page with one form whose valid POST calls `perform(data)` (a service). Success goes
    back with a message; a refusal stays on the page with the service's reason."""
    if request.method == "POST" and form.is_valid():
        try:
            message, obj = perform(form.cleaned_data)
        except BillingError as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        else:
            if obj is not None:
                model_admin.log_change(request, obj, message)
            model_admin.message_user(request, message, messages.SUCCESS)
            return redirect(back_url)
    return TemplateResponse(
        request,
        "admin/coupons/action.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "media": model_admin.media + form.media,
            "opts": model_admin.model._meta,
            "back_url": back_url,
            **(context or {}),
        },
    )


def _reason_action(model_admin, request, queryset, *, title, perform):
    """An admin action that asks for a reason first (R4: kept in the history), then calls
    `perform(obj, reason)` for each selected row and reports each refusal."""
    form = ReasonForm(request.POST if "reason" in request.POST else None)
    if form.is_valid():
        done = 0
        for obj in queryset:
            try:
                perform(obj, form.cleaned_data["reason"])
            except BillingError as exc:
                model_admin.message_user(request, f"{obj}: {exc}", messages.ERROR)
            else:
                model_admin.log_change(request, obj, f"{title}: {form.cleaned_data['reason']}")
                done += 1
        if done:
            model_admin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
        return None
    return TemplateResponse(
        request,
        "admin/coupons/reason.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "objects": queryset,
            "action": request.POST.get("action"),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": model_admin.model._meta,
        },
    )


# --- Coupons (C1, C2) -----------------------------------------------------------------------


@admin.register(Coupon)
class CouponAdmin(SimpleHistoryAdmin):
    form = CouponForm
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

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.update_coupon(
                obj, by=request.user, reason="Edited in the admin", **form.changes(data)
            )
            return
        created = services.create_coupon(
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
        obj.pk, obj.code = created.pk, created.code

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BillingError as exc:  # a race the form's checks could not see
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(request.path)

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
        return selectors.coupon_status(obj, as_of=_today())


# --- Redemptions (C2, C5) -------------------------------------------------------------------


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin, SimpleHistoryAdmin):
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
    readonly_fields = fields

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
                as_of=_today(),
                reason=data["reason"],
            )
            return f"{redemption.coupon.code} applied to {workspace.name}.", redemption

        back = request.POST.get("workspace") or request.GET.get("workspace")
        back_url = (
            reverse("admin:billing_workspace_change", args=[back])
            if back and str(back).isdigit()
            else reverse("admin:coupons_redemption_changelist")
        )
        return _form_page(
            self, request, title="Apply a coupon", form=form, back_url=back_url, perform=perform
        )

    def remove_view(self, request, pk):
        """C5: support removes a workspace's running discount, with a reason."""
        if not request.user.has_perm("coupons.remove_discount"):
            raise PermissionDenied
        redemption = get_object_or_404(Redemption.objects.select_related("workspace"), pk=pk)
        workspace = redemption.workspace

        def perform(data):
            removed = services.remove_discount(
                workspace, by=request.user, reason=data["reason"], as_of=_today()
            )
            return f"{removed.coupon.code} removed from {workspace.name}.", removed

        return _form_page(
            self,
            request,
            title=f"Remove the discount of {workspace.name}",
            form=ReasonForm(request.POST or None),
            back_url=reverse("admin:billing_workspace_change", args=[workspace.pk]),
            perform=perform,
            context={"intro": selectors.redemption_summary(redemption)},
        )


@admin.register(DiscountApplication)
class DiscountApplicationAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "redemption", "amount", "created_at"]
    list_select_related = ["invoice", "redemption__coupon", "redemption__workspace"]
    search_fields = ["invoice__number", "redemption__coupon__code", "redemption__workspace__slug"]


# --- Credits (CR1–CR3) ----------------------------------------------------------------------


class LedgerInline(ReadOnlyInline):
    model = CreditLedgerEntry
    fields = ["on", "kind", "amount", "invoice"]
    readonly_fields = fields
    show_change_link = False


@admin.register(CreditGrant)
class CreditGrantAdmin(ReadOnlyAdmin, SimpleHistoryAdmin):
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
    readonly_fields = fields
    inlines = [LedgerInline]


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["grant", "on", "kind", "amount", "invoice"]
    list_filter = ["kind", "on"]
    list_select_related = ["grant__workspace", "invoice"]
    search_fields = ["grant__workspace__slug", "invoice__number"]


# --- Accelerator partners (C7) --------------------------------------------------------------


class PartnerCouponInline(ReadOnlyInline):
    model = Coupon
    fields = ["code", "name", "kind", "active"]
    readonly_fields = fields
    verbose_name_plural = "the partner's coupons"


@admin.register(AcceleratorPartner)
class AcceleratorPartnerAdmin(SimpleHistoryAdmin):
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
        "name",
        "website",
        "contact_name",
        "contact_email",
        "description",
        "credit_amount",
        *readonly_fields,
    ]
    inlines = [PartnerCouponInline]
    actions = ["approve", "decline", "deactivate"]

    def has_add_permission(self, request):
        return False  # programs apply through the public form

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request):
        return request.user.has_perm("coupons.review_acceleratorpartner")

    def save_model(self, request, obj, form, change):
        obj._change_reason = "Edited in the admin: " + ", ".join(form.changed_data)
        super().save_model(request, obj, form, change)

    @admin.action(description="Approve as active partners", permissions=["review"])
    def approve(self, request, queryset):
        if queryset.count() == 1:  # one partner: ask for its credit amount and a note
            return self._approve_page(request, queryset.get())
        for partner in queryset:
            try:
                services.approve_partner(partner, by=request.user, as_of=_today())
            except BillingError as exc:
                self.message_user(request, f"{partner}: {exc}", messages.ERROR)
            else:
                self.log_change(request, partner, "Approved")
                self.message_user(request, f"{partner} is an active partner.", messages.SUCCESS)

    def _approve_page(self, request, partner):
        form = PartnerApprovalForm(request.POST if "note" in request.POST else None)
        if form.is_valid():
            try:
                services.approve_partner(
                    partner,
                    by=request.user,
                    as_of=_today(),
                    credit_amount=form.cleaned_data["credit_amount"],
                    note=form.cleaned_data["note"],
                )
            except BillingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.log_change(request, partner, "Approved")
                self.message_user(request, f"{partner} is an active partner.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/coupons/reason.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Approve {partner}",
                "form": form,
                "objects": [partner],
                "action": "approve",
                "selected": [partner.pk],
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Decline selected applications", permissions=["review"])
    def decline(self, request, queryset):
        return _reason_action(
            self,
            request,
            queryset,
            title="Decline",
            perform=lambda p, reason: services.decline_partner(
                p, by=request.user, reason=reason, as_of=_today()
            ),
        )

    @admin.action(description="Deactivate selected partners", permissions=["review"])
    def deactivate(self, request, queryset):
        return _reason_action(
            self,
            request,
            queryset,
            title="Deactivate",
            perform=lambda p, reason: services.deactivate_partner(
                p, by=request.user, reason=reason, as_of=_today()
            ),
        )


# --- Non-profit proofs (C6) -----------------------------------------------------------------


@admin.register(NonprofitProof)
class NonprofitProofAdmin(SimpleHistoryAdmin):
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

    def has_change_permission(self, request, obj=None):
        return False  # decided through the actions, never edited

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request):
        return request.user.has_perm("coupons.review_nonprofitproof")

    def save_model(self, request, obj, form, change):
        proof = services.submit_nonprofit_proof(
            form.cleaned_data["workspace"],
            document=form.cleaned_data["document"],
            by=request.user,
            as_of=_today(),
        )
        obj.pk = proof.pk

    def save_related(self, request, form, formsets, change):
        pass  # the service saved everything

    @admin.display(description="Document")
    def download(self, obj):
        url = reverse("admin:coupons_nonprofitproof_document", args=[obj.pk])
        return format_html(
            '<a href="{}">Download ({}, {} bytes)</a>', url, obj.content_type, obj.size
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/document/",
                self.admin_site.admin_view(self.document_view),
                name="coupons_nonprofitproof_document",
            ),
            *super().get_urls(),
        ]

    def document_view(self, request, pk):
        """C6 (as X5): the document only for staff allowed to see proofs, as a download that
        a browser will not run as a page."""
        if not request.user.has_perm("coupons.view_nonprofitproof"):
            raise PermissionDenied
        proof = get_object_or_404(NonprofitProof, pk=pk)
        try:
            handle = proof.document.open("rb")
        except FileNotFoundError:
            raise Http404("The document file is missing.") from None
        extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"nonprofit-proof-{proof.pk}.{extension.get(proof.content_type, 'bin')}",
            content_type=proof.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response

    def _approve(self, request, queryset, apply_discount):
        for proof in queryset.select_related("workspace"):
            try:
                services.approve_nonprofit_proof(
                    proof, by=request.user, as_of=_today(), apply_discount=apply_discount
                )
            except BillingError as exc:
                self.message_user(request, f"{proof.workspace.name}: {exc}", messages.ERROR)
            else:
                done = "approved; NONPROFIT applied" if apply_discount else "approved"
                self.log_change(request, proof, done)
                self.message_user(request, f"{proof.workspace.name}: {done}.", messages.SUCCESS)

    @admin.action(description="Approve and apply the non-profit discount", permissions=["review"])
    def approve_and_apply(self, request, queryset):
        self._approve(request, queryset, apply_discount=True)

    @admin.action(description="Approve only (apply the discount later)", permissions=["review"])
    def approve_only(self, request, queryset):
        self._approve(request, queryset, apply_discount=False)

    @admin.action(description="Reject selected proofs", permissions=["review"])
    def reject(self, request, queryset):
        return _reason_action(
            self,
            request,
            queryset,
            title="Reject",
            perform=lambda proof, reason: services.reject_nonprofit_proof(
                proof, by=request.user, reason=reason, as_of=_today()
            ),
        )


# --- The workspace page: its coupons and credit (R1) ----------------------------------------


class RedemptionInline(ReadOnlyInline):
    model = Redemption
    fk_name = "workspace"
    fields = ["coupon", "redeemed_on", "status", "runs_out_on", "ended_on", "by", "is_follow_up"]
    readonly_fields = fields
    verbose_name_plural = "coupons received"


class CreditGrantInline(ReadOnlyInline):
    model = CreditGrant
    fields = ["year", "amount", "remaining", "valid_from", "valid_until", "lapsed_on"]
    readonly_fields = fields
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
        current = selectors.active_discount(workspace, as_of=_today())
        if current is not None and request.user.has_perm("coupons.remove_discount"):
            actions.append(
                ("Remove discount", reverse("admin:coupons_redemption_remove", args=[current.pk]))
            )
        return actions


admin.site.unregister(Workspace)
admin.site.register(Workspace, CouponWorkspaceAdmin)
