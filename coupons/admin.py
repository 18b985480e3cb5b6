"""Coupons in the support console (R1), partners for startup reviewers (R2), credits read-only
for finance (R3). Pages and actions call the services; a refusal comes back as a message that
says why. Money rows are never deleted, and a redeemed coupon's discount cannot change."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from billing import admin_toolkit as toolkit
from billing import search
from billing.admin import WorkspaceAdmin
from billing.admin_toolkit import (
    DecisionPages,
    ReadOnlyInline,
    ReasonForm,
    ServiceAdmin,
    badge,
    badge_column,
    confirm_and_run,
    service_form_page,
)
from billing.models import Workspace
from billing.templatetags.money import money, month
from billing.workspace_pages import FORECAST_REASON
from coupons import campaigns, selectors, services
from coupons.forms import (
    ApplyCouponForm,
    CampaignForm,
    CouponForecastForm,
    CouponForm,
    NonprofitProofForm,
    PartnerApprovalForm,
)
from coupons.models import (
    AcceleratorPartner,
    Campaign,
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


class RedemptionForm(forms.ModelForm):
    """The redemption page is read-only: help texts in the readers' words."""

    class Meta:
        model = Redemption
        fields = []
        help_texts = {
            "override_reason": "Why the reviewer approved the startup program although the "
            "workspace had received a coupon or credit before.",
            "runs_out_on": "The first day it no longer applies (empty: not known yet).",
        }


@admin.register(Redemption)
class RedemptionAdmin(ServiceAdmin):
    form = RedemptionForm
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
        "first_month",
        "runs_out_on",
        "status",
        "ended_on",
        "by",
        "reason",
        "is_follow_up",
        "follows",
        "override_reason",
        "partner",
        "campaign",  # G3
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

    @admin.display(description="First billing month")
    def first_month(self, obj):
        return month(obj.started_month)

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
        form = ApplyCouponForm(
            request.POST or None,
            initial=initial,
            today=toolkit.today(),
            admin_site=self.admin_site,
        )

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
    list_display = ["invoice", "redemption", "amount_display", "created_at"]
    list_select_related = ["invoice", "redemption__coupon", "redemption__workspace"]
    search_fields = ["invoice__number", "redemption__coupon__code", "redemption__workspace__slug"]

    @admin.display(description="Discount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount)


# --- Credits (CR1–CR3) ----------------------------------------------------------------------


class LedgerInline(ReadOnlyInline):
    model = CreditLedgerEntry
    fields = ["on", "kind", "amount_display", "invoice"]

    @admin.display(description="Amount")
    def amount_display(self, entry):
        return money(entry.amount)


class CreditGrantForm(forms.ModelForm):
    """The grant page is read-only: help texts in the readers' words."""

    class Meta:
        model = CreditGrant
        fields = []
        help_texts = {"year": "Program year: 1 or 2 (a second year after a renewal review)."}


@admin.register(CreditGrant)
class CreditGrantAdmin(ServiceAdmin):
    form = CreditGrantForm
    list_display = [
        "workspace",
        "year",
        "amount_display",
        "remaining_display",
        "valid_from",
        "last_valid_day",
        "lapsed_on",
        "partner",
    ]
    list_filter = ["year", "valid_until"]
    list_select_related = ["workspace", "partner"]
    search_fields = ["workspace__slug", "workspace__name"]
    fields = [
        "workspace",
        "year",
        "amount_display",
        "remaining_display",
        "valid_from",
        "last_valid_day",
        "lapsed_on",
        "redemption",
        "partner",
        "granted_by",
    ]
    readonly_fields = ["amount_display", "remaining_display", "last_valid_day"]
    inlines = [LedgerInline]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount)

    @admin.display(description="Left", ordering="remaining")
    def remaining_display(self, obj):
        return money(obj.remaining)

    @admin.display(description="Valid until (last day)", ordering="valid_until")
    def last_valid_day(self, obj):
        return obj.valid_until - timedelta(days=1)


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ServiceAdmin):
    list_display = ["grant", "on", "kind", "amount_display", "invoice"]
    list_filter = ["kind", "on"]
    list_select_related = ["grant__workspace", "invoice"]
    search_fields = ["grant__workspace__slug", "invoice__number"]
    fields = ["grant", "on", "kind", "amount_display", "invoice"]
    readonly_fields = ["amount_display"]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount)


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


PROOF_TONES = {"submitted": "waiting", "approved": "good", "rejected": "bad"}


@admin.register(NonprofitProof)
class NonprofitProofAdmin(DecisionPages, ServiceAdmin):
    """C6: support reviews each proof on its page, with the document shown beside the decision
    buttons (or in bulk from the list)."""

    change_form_template = "admin/toolkit/decision_change_form.html"
    decisions = {
        "approve-and-apply": "Approve and apply NONPROFIT",
        "approve": "Approve only",
        "reject": "Reject",
    }
    review_permission = "coupons.review_nonprofitproof"
    decide_url_name = "coupons_proof_decide"
    decide_template = "admin/coupons/nonprofitproof/decide.html"
    document_label = "Proof of non-profit status"
    decision_related = ("workspace",)
    list_display = [
        "workspace",
        "submitted_on",
        "status_display",
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

    def create(self, request, data):
        return services.submit_nonprofit_proof(
            data["workspace"], document=data["document"], by=request.user, as_of=toolkit.today()
        )

    @admin.display(description="Document")
    def download(self, obj):
        url = reverse("coupons:proof-document", args=[obj.pk])
        return format_html(
            '<a href="{}">Download ({}, {} bytes)</a>', url, obj.content_type, f"{obj.size:,}"
        )

    status_display = badge_column("status", PROOF_TONES)

    # --- the review page: the document and the decision buttons (toolkit.DecisionPages) ---

    def open_decisions(self, proof):
        return list(self.decisions) if proof.status == NonprofitProof.Status.SUBMITTED else []

    def document_url(self, proof):
        return reverse("coupons:proof-document", args=[proof.pk])

    def decided(self, proof, decision):
        if proof.status == NonprofitProof.Status.SUBMITTED:
            return ""
        return (
            f"This proof was already {proof.get_status_display().lower()} on "
            f"{proof.reviewed_on}: a decision is final."
        )

    def decision_page(self, proof, decision):
        intros = {
            "approve-and-apply": f"NONPROFIT takes $120.00 off each monthly Team bill of "
            f"{proof.workspace.name}, forever, from this month's bill.",
            "approve": "The proof is approved; no discount is applied now.",
            "reject": "The reason is kept with the proof.",
        }
        return {
            "title": f"{self.decisions[decision]}: {proof.workspace.name}",
            "intro": intros[decision],
            "proof": proof,
        }

    def decide(self, request, proof, decision, data):
        """C6: approve (and apply the $120.00 a month discount, which moves money: a
        confirmation), approve only, or reject with a reason."""
        workspace, today, by = proof.workspace, toolkit.today(), request.user
        if decision == "reject":
            services.reject_nonprofit_proof(proof, by=by, reason=data["reason"], as_of=today)
            return f"The proof of {workspace.name} is rejected: {data['reason']}"
        apply_discount = decision == "approve-and-apply"
        services.approve_nonprofit_proof(proof, by=by, as_of=today, apply_discount=apply_discount)
        if apply_discount:
            return f"The proof of {workspace.name} is approved and NONPROFIT applied."
        return f"The proof of {workspace.name} is approved; apply NONPROFIT when it is due."

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
            intro="NONPROFIT takes $120.00 off each monthly Team bill, forever."
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
    fields = ["year", "amount_display", "left", "valid_from", "last_valid_day", "lapsed_on"]
    show_change_link = True
    verbose_name_plural = "startup credit grants"

    @admin.display(description="Amount")
    def amount_display(self, grant):
        return money(grant.amount)

    @admin.display(description="Left")
    def left(self, grant):
        return money(grant.remaining)

    @admin.display(description="Valid until (last day)")
    def last_valid_day(self, grant):
        return grant.valid_until - timedelta(days=1)


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


# --- Promotion campaigns (G1–G3) ---------------------------------------------------------------


@admin.register(Campaign)
class CampaignAdmin(ServiceAdmin):
    """G1: support builds a campaign and sees its reach, a sample and the refusals by reason
    before launch; G2: launching hands the emails to the workers, the page shows progress; G3:
    notified, redeemed and the discount given so far."""

    form = CampaignForm
    reason_on_change = True
    list_display = ["name", "coupon", "status", "launched_on", "reached", "redeemed"]
    list_select_related = ["coupon"]
    list_filter = ["status", "coupon"]
    search_fields = ["name", "coupon__code", "subject"]
    change_form_template = "admin/coupons/campaign/change_form.html"
    add_fieldsets = [
        (None, {"fields": ["name", "coupon"]}),
        ("The email", {"fields": ["subject", "message"]}),
        (
            "Audience (workspaces matching every filter given)",
            {"fields": CampaignForm.AUDIENCE_FIELDS},
        ),
    ]
    view_fields = [
        "name",
        "coupon",
        "subject",
        "message",
        "audience_text",
        "status",
        "created_by",
        "launched_on",
        "launched_by",
        "launches",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                reached_count=Count("recipients", distinct=True),
                redeemed_count=Count("redemptions", distinct=True),
            )
        )

    def has_change_permission(self, request, obj=None):
        # G2: a launched campaign's emails went out as they were: its page is read-only for
        # everyone, and a POST to it is refused (`update_campaign` refuses it as well).
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        if not self.has_change_permission(request, obj):
            return [(None, {"fields": self.view_fields})]
        return [
            *self.add_fieldsets,
            ("Status", {"fields": ["status", "created_by"]}),
            ("Why", {"fields": ["change_reason"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if not self.has_change_permission(request, obj):
            return self.view_fields
        return ["status", "created_by"]

    def update(self, request, campaign, data, changed):
        """G1: a draft's details through `update_campaign`, with the reason asked for."""
        changes = {name: data[name] for name in ("name", "subject", "message") if name in changed}
        if "coupon" in changed:
            changes["coupon_code"] = data["coupon"]
        if set(changed) & set(CampaignForm.AUDIENCE_FIELDS):
            changes["audience"] = CampaignForm.audience_from(data)
        campaigns.update_campaign(
            campaign, by=request.user, reason=data["change_reason"], **changes
        )

    def create(self, request, data):
        return campaigns.create_campaign(
            data["name"],
            data["coupon"].code,
            data["subject"],
            data["message"],
            audience=CampaignForm.audience_from(data),
            by=request.user,
        )

    @admin.display(description="Reached", ordering="reached_count")
    def reached(self, obj):
        return obj.reached_count

    @admin.display(description="Redeemed", ordering="redeemed_count")
    def redeemed(self, obj):
        return obj.redeemed_count

    @admin.display(description="Audience")
    def audience_text(self, obj):
        return campaigns.describe_audience(obj.audience)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            today = toolkit.today()
            extra_context = {
                **(extra_context or {}),
                "preview": campaigns.cached_audience_preview(
                    campaign,
                    as_of=today,
                    now=timezone.now(),
                    refresh=request.GET.get("refresh") == "preview",
                ),
                "preview_minutes": campaigns.PREVIEW_TIMEOUT // 60,
                "progress": campaigns.campaign_progress(campaign),
                "results": campaigns.campaign_results(campaign),
                "can_launch": request.user.has_perm("coupons.launch_campaign"),
                "launch_url": reverse("admin:coupons_campaign_launch", args=[campaign.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/launch/",
                self.admin_site.admin_view(self.launch_view),
                name="coupons_campaign_launch",
            ),
            *super().get_urls(),
        ]

    def launch_view(self, request, pk):
        """G2: a confirmation with the reach; launching again reaches only newcomers and hands
        on unsent batches."""
        if not request.user.has_perm("coupons.launch_campaign"):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign.objects.select_related("coupon"), pk=pk)
        today = toolkit.today()

        def perform(data):
            added = campaigns.launch_campaign(campaign, by=request.user, as_of=today)
            return (
                f"{campaign.name} launched: {added} workspace(s) added; the workers email them "
                "in batches."
            )

        return service_form_page(
            self,
            request,
            campaign,
            form=None,
            perform=perform,
            template="admin/coupons/campaign/launch.html",
            title=f"Launch campaign: {campaign.name}",
            submit_label="Launch campaign" if campaign.launches == 0 else "Launch again",
            campaign=campaign,
            preview=campaigns.audience_preview(campaign, as_of=today),
            progress=campaigns.campaign_progress(campaign),
        )


# --- What the header's search box finds here (billing/search.py) ------------------------------

COUPON_TONES = {"Active": "good", "Inactive": "quiet", "Expired": "quiet", "Used up": "quiet"}


def _describe_coupon(coupon):
    status = selectors.coupon_status(coupon, as_of=toolkit.today())
    detail = format_html(
        "{} · {} · {}", coupon.name, coupon.value_display, badge(status, COUPON_TONES.get(status))
    )
    return coupon.code, detail


search.register(
    Coupon,
    label="Coupons",
    fields=("code", "name"),
    exact=("code",),
    order_by=("code",),
    describe=_describe_coupon,
)
