"""The support console (R1) and the read-only money rows. Actions and pages call services;
a refusal comes back as an error message that says why."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from billing import selectors, services
from billing.admin_pages import service_form_page
from billing.errors import BillingError
from billing.exemptions import check_document
from billing.forms import (
    ChangeIntervalForm,
    ChangePlanForm,
    CreditNoteRequestForm,
    PaymentMethodForm,
    RecordUsageForm,
    UnlockForm,
    UsageImportForm,
    VoidInvoiceForm,
    usage_rows,
)
from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    LockEvent,
    MonthClose,
    OutboundEmail,
    Plan,
    Strike,
    Subscription,
    TaxExemption,
    TaxRate,
    Usage,
    Workspace,
)
from billing.months import month_start
from billing.tax import US_STATES


def _current_subscriptions(**filters):
    return Subscription.objects.filter(workspace=OuterRef("pk"), ended_on=None, **filters)


class PlanFilter(admin.SimpleListFilter):
    title = "plan"
    parameter_name = "plan"

    def lookups(self, request, model_admin):
        return Plan.Code.choices

    def queryset(self, request, queryset):
        if self.value() in Plan.Code.values:
            return queryset.filter(Exists(_current_subscriptions(plan__code=self.value())))
        return queryset


class IntervalFilter(admin.SimpleListFilter):
    title = "Team interval"
    parameter_name = "interval"

    def lookups(self, request, model_admin):
        return [("monthly", "Monthly"), ("annual", "Annual")]

    def queryset(self, request, queryset):
        if self.value() in ("monthly", "annual"):
            return queryset.filter(
                Exists(_current_subscriptions(plan__code="team", interval=self.value()))
            )
        return queryset


class TrialingFilter(admin.SimpleListFilter):
    title = "trialing"
    parameter_name = "trialing"

    def lookups(self, request, model_admin):
        return [("yes", "In a Team trial"), ("no", "Not trialing")]

    def queryset(self, request, queryset):
        trialing = Exists(_current_subscriptions(trial_outcome=Subscription.TrialOutcome.RUNNING))
        if self.value() == "yes":
            return queryset.filter(trialing)
        if self.value() == "no":
            return queryset.exclude(trialing)
        return queryset


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    can_delete = False
    fields = [
        "plan",
        "interval",
        "started_on",
        "ended_on",
        "end_reason",
        "trial_end",
        "trial_outcome",
        "paid_from",
        "term_end",
        "cancel_at_term_end",
    ]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _today():
    return timezone.now().date()


@admin.register(Workspace)
class WorkspaceAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "slug",
        "plan_display",
        "trial_end_display",
        "lock",
        "business_country",
        "business_region",
        "billing_email",
        "startup_member",
    ]
    list_filter = [
        PlanFilter,
        IntervalFilter,
        TrialingFilter,
        "lock",
        "business_country",
        "startup_member",
    ]
    search_fields = ["name", "slug", "billing_email"]
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [
        "created_on",
        "lock",
        "lock_changed_on",
        "lock_cause",
        "data_flow",
        "startup_member",
        "payment_method_added_on",
        "card_brand",
        "card_last4",
    ]
    fieldsets = [
        (None, {"fields": ["name", "slug", "billing_email", "created_on"]}),
        ("Business location (decides tax)", {"fields": ["business_country", "business_region"]}),
        ("Payment method", {"fields": ["payment_method_added_on", "card_brand", "card_last4"]}),
        (
            "Lock",
            {"fields": ["lock", "lock_changed_on", "lock_cause", "data_flow", "startup_member"]},
        ),
    ]
    inlines = [SubscriptionInline]
    change_form_template = "admin/billing/workspace/change_form.html"
    history_list_display = ["lock", "payment_method_added_on"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_current_subscription()

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "slug"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            obj._change_reason = "Edited in the admin: " + ", ".join(form.changed_data)
            super().save_model(request, obj, form, change)
            return
        # A workspace is born through the service so it gets its Free subscription.
        created = services.create_workspace(
            obj.name,
            slug=obj.slug,
            business_country=str(obj.business_country),
            business_region=obj.business_region,
            billing_email=obj.billing_email,
            as_of=_today(),
        )
        obj.pk, obj.created_on = created.pk, created.created_on

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BillingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(request.path)

    @admin.display(description="Plan", ordering="current_plan")
    def plan_display(self, obj):
        if obj.current_plan == Plan.Code.TEAM:
            return f"Team ({obj.current_interval})"
        return "Free"

    @admin.display(description="Trial ends", ordering="current_trial_end")
    def trial_end_display(self, obj):
        if obj.current_trial_outcome == Subscription.TrialOutcome.RUNNING:
            return obj.current_trial_end
        return "—"

    # --- the status panel and the action pages ---

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workspace = self.get_object(request, object_id)
        if workspace is not None:
            today = _today()
            usage = selectors.recent_usage(workspace, as_of=today)
            peak = max([mtus for _, mtus in usage] + [1])
            extra_context = {
                **(extra_context or {}),
                "status": selectors.workspace_status(workspace, as_of=today),
                "usage_bars": [(m, mtus, round(100 * mtus / peak)) for m, mtus in usage],
                "strikes": workspace.strikes.all()[:12],
                "lock_events": workspace.lock_events.select_related("by")[:10],
                "invoices": workspace.invoices.all()[:12],
                "preview": services.preview_invoice(
                    workspace, month=month_start(today), as_of=today
                ),
                "actions": self._workspace_actions(request, workspace),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _workspace_actions(self, request, workspace):
        allowed = {
            "plan": request.user.has_perm("billing.change_plan_workspace"),
            "interval": request.user.has_perm("billing.change_plan_workspace")
            and workspace.current_plan == Plan.Code.TEAM,
            "payment-method": request.user.has_perm("billing.change_workspace"),
            "usage": request.user.has_perm("billing.add_usage"),
            "unlock": request.user.has_perm("billing.unlock_workspace")
            and workspace.lock != "unlocked",
        }
        labels = {
            "plan": "Change plan",
            "interval": "Change billing interval",
            "payment-method": "Add payment method",
            "usage": "Record usage",
            "unlock": "Unlock",
        }
        return [
            (labels[name], reverse("admin:billing_workspace_action", args=[workspace.pk, name]))
            for name, ok in allowed.items()
            if ok
        ]

    def get_urls(self):
        return [
            path(
                "<int:pk>/do/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="billing_workspace_action",
            ),
            *super().get_urls(),
        ]

    ACTIONS = {
        # name: (form, permission, title)
        "plan": (ChangePlanForm, "billing.change_plan_workspace", "Change plan"),
        "interval": (
            ChangeIntervalForm,
            "billing.change_plan_workspace",
            "Change billing interval",
        ),
        "payment-method": (PaymentMethodForm, "billing.change_workspace", "Add payment method"),
        "usage": (RecordUsageForm, "billing.add_usage", "Record usage"),
        "unlock": (UnlockForm, "billing.unlock_workspace", "Unlock workspace"),
    }

    def action_view(self, request, pk, action):
        if action not in self.ACTIONS:
            raise PermissionDenied
        form_class, permission, title = self.ACTIONS[action]
        if not request.user.has_perm(permission):
            raise PermissionDenied
        workspace = get_object_or_404(Workspace, pk=pk)
        return service_form_page(
            self,
            request,
            workspace,
            form=form_class(request.POST or None),
            perform=lambda data: self._perform(request, workspace, action, data),
            template="admin/billing/workspace/action.html",
            title=f"{title}: {workspace.name}",
            workspace=workspace,
            status=selectors.workspace_status(workspace, as_of=_today()),
        )

    def _perform(self, request, workspace, action, data):
        today = _today()
        if action == "plan":
            if data["plan"] == "free":
                services.change_to_free(workspace, as_of=today)
                return f"{workspace.name} cancelled or downgraded to Free."
            interval = data["plan"].split(":")[1]
            services.change_to_team(workspace, interval=interval, as_of=today)
            return f"{workspace.name} moved to Team ({interval})."
        if action == "interval":
            services.change_interval(workspace, interval=data["interval"], as_of=today)
            return f"{workspace.name}'s billing interval set to {data['interval']}."
        if action == "payment-method":
            services.add_payment_method(
                workspace, as_of=today, brand=data["brand"], last4=data["last4"]
            )
            return f"Payment method recorded for {workspace.name}."
        if action == "usage":
            services.record_usage(workspace, month=data["month"], mtus=data["mtus"])
            return f"{data['mtus']:,} MTUs recorded for {workspace.name}, {data['month']:%Y-%m}."
        services.unlock_workspace(workspace, by=request.user, reason=data["reason"], as_of=today)
        return f"{workspace.name} unlocked: {data['reason']}"


@admin.register(Usage)
class UsageAdmin(SimpleHistoryAdmin):
    list_display = ["workspace", "month", "mtus", "updated_at"]
    list_select_related = ["workspace"]
    list_filter = ["month"]
    search_fields = ["workspace__slug", "workspace__name"]
    autocomplete_fields = ["workspace"]
    date_hierarchy = "month"
    show_full_result_count = False
    change_list_template = "admin/billing/usage/change_list.html"

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "import/", self.admin_site.admin_view(self.import_view), name="billing_usage_import"
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """U2: the whole file or nothing; every bad line named."""
        if not request.user.has_perm("billing.import_usage"):
            raise PermissionDenied
        form = UsageImportForm(request.POST or None, request.FILES or None)
        errors = []
        if request.method == "POST" and form.is_valid():
            try:
                result = services.import_usage(usage_rows(form.cleaned_data["file"]))
            except ValueError as exc:
                errors = [str(exc)]
            except BillingError as exc:
                errors = getattr(exc, "errors", [str(exc)])
            else:
                self.message_user(
                    request,
                    f"Usage imported: {result['created']} new figure(s), "
                    f"{result['replaced']} replaced.",
                    messages.SUCCESS,
                )
                return redirect("admin:billing_usage_changelist")
            self.message_user(
                request,
                "Nothing was imported: fix the lines below and upload again.",
                messages.ERROR,
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import usage",
            "form": form,
            "errors": errors,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/usage/import.html", context)


@admin.register(Plan)
class PlanAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "code",
        "monthly_price",
        "annual_price",
        "included_mtus",
        "overage_rate",
    ]
    readonly_fields = ["code"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = [
        "workspace",
        "plan",
        "interval",
        "started_on",
        "ended_on",
        "trial_end",
        "trial_outcome",
        "term_end",
    ]
    list_select_related = ["workspace", "plan"]
    list_filter = ["plan", "interval", "trial_outcome", "end_reason"]
    search_fields = ["workspace__slug", "workspace__name"]
    show_full_result_count = False


@admin.register(Strike)
class StrikeAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "month", "mtus"]
    list_select_related = ["workspace"]
    list_filter = ["month"]
    search_fields = ["workspace__slug"]


@admin.register(LockEvent)
class LockEventAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "on", "from_lock", "to_lock", "cause", "reason", "by"]
    list_select_related = ["workspace", "by"]
    list_filter = ["cause", "to_lock", "on"]
    search_fields = ["workspace__slug", "reason"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["position", "kind", "description", "quantity", "amount"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CreditNoteInline(admin.TabularInline):
    model = CreditNote
    extra = 0
    can_delete = False
    fields = [
        "amount",
        "reason",
        "status",
        "requested_by",
        "requested_on",
        "decided_by",
        "decided_on",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """I3: read-only for everyone; finance voids with a reason, support asks for a refund."""

    list_display = [
        "number",
        "workspace",
        "kind",
        "issue_date",
        "period_start",
        "period_end",
        "status",
        "total",
    ]
    list_select_related = ["workspace"]
    list_filter = ["kind", "status", "issue_date"]
    search_fields = ["number", "workspace__slug", "workspace__name"]
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline, CreditNoteInline]
    show_full_result_count = False
    change_form_template = "admin/billing/invoice/change_form.html"

    def get_urls(self):
        return [
            path(
                "<int:pk>/void/",
                self.admin_site.admin_view(self.void_view),
                name="billing_invoice_void",
            ),
            path(
                "<int:pk>/credit-note/",
                self.admin_site.admin_view(self.credit_note_view),
                name="billing_invoice_credit_note",
            ),
            *super().get_urls(),
        ]

    def _form_page(self, request, invoice, form, title, permission, perform):
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return service_form_page(
            self,
            request,
            invoice,
            form=form,
            perform=perform,
            template="admin/billing/invoice/action.html",
            title=f"{title}: {invoice.number}",
            invoice=invoice,
        )

    def void_view(self, request, pk):
        invoice = get_object_or_404(Invoice, pk=pk)

        def perform(data):
            services.void_invoice(invoice, by=request.user, reason=data["reason"], as_of=_today())
            return f"{invoice.number} voided: {data['reason']}"

        form = VoidInvoiceForm(request.POST or None)
        return self._form_page(
            request, invoice, form, "Void invoice", "billing.void_invoice", perform
        )

    def credit_note_view(self, request, pk):
        invoice = get_object_or_404(Invoice, pk=pk)

        def perform(data):
            services.request_credit_note(
                invoice,
                by=request.user,
                amount=data["amount"],
                reason=data["reason"],
                as_of=_today(),
            )
            return (
                f"Credit note of {data['amount']} on {invoice.number} requested; finance decides."
            )

        form = CreditNoteRequestForm(request.POST or None)
        return self._form_page(
            request, invoice, form, "Request a credit note", "billing.add_creditnote", perform
        )


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """K3: finance approves or rejects what support requested."""

    list_display = [
        "invoice",
        "amount",
        "status",
        "reason",
        "requested_by",
        "requested_on",
        "decided_by",
    ]
    list_select_related = ["invoice", "requested_by", "decided_by"]
    list_filter = ["status", "requested_on"]
    search_fields = ["invoice__number", "reason"]
    actions = ["approve", "reject"]

    def has_approve_permission(self, request):
        return request.user.has_perm("billing.approve_creditnote")

    def _decide(self, request, queryset, approve):
        done = 0
        for note in queryset:
            try:
                services.decide_credit_note(note, by=request.user, approve=approve, as_of=_today())
            except BillingError as exc:
                self.message_user(request, f"{note.invoice.number}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            verb = "approved" if approve else "rejected"
            self.message_user(request, f"{done} credit note(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Approve selected credit notes", permissions=["approve"])
    def approve(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected credit notes", permissions=["approve"])
    def reject(self, request, queryset):
        self._decide(request, queryset, approve=False)


@admin.register(MonthClose)
class MonthCloseAdmin(ReadOnlyAdmin):
    list_display = ["month", "finished", "closed_on", "strikes", "invoices", "updated_at"]


@admin.register(TaxRate)
class TaxRateAdmin(SimpleHistoryAdmin):
    list_display = ["country", "region", "rate", "name", "valid_from"]
    list_filter = ["country"]
    search_fields = ["region", "name"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    list_display = ["kind", "to", "subject", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["kind", "status"]
    search_fields = ["to", "subject", "object_key"]


# --- Tax exemption certificates (X4, X5, R3) ---------------------------------------------------


class TaxExemptionForm(forms.ModelForm):
    """The upload: the document is checked by its content before the service stores it."""

    class Meta:
        model = TaxExemption
        fields = ["workspace", "region", "reason", "document", "valid_from", "valid_to"]
        help_texts = {"document": "PDF, PNG or JPEG, at most 10 MB."}

    def clean_region(self):
        region = self.cleaned_data["region"].strip().upper()
        if region not in US_STATES:
            raise forms.ValidationError(f"“{region}” is not a US state code (e.g. NH).")
        return region

    def clean_document(self):
        document = self.cleaned_data.get("document")
        try:
            check_document(document)
        except BillingError as exc:
            raise forms.ValidationError(str(exc)) from None
        return document


class RejectExemptionForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept on the certificate and in its history.",
    )


@admin.register(TaxExemption)
class TaxExemptionAdmin(SimpleHistoryAdmin):
    """X4: support and finance upload certificates; finance reviews them through the actions.
    Nothing is edited by hand: a wrong certificate is rejected and a new one submitted."""

    form = TaxExemptionForm
    list_display = [
        "number",
        "workspace",
        "region",
        "reason",
        "status",
        "valid_from",
        "valid_to",
        "submitted_on",
        "decided_on",
        "document_link",
    ]
    list_select_related = ["workspace"]
    list_filter = ["status", "reason", "region"]
    search_fields = ["workspace__slug", "workspace__name", "=region"]
    autocomplete_fields = ["workspace"]
    actions = ["start_review", "approve", "reject"]
    show_full_result_count = False
    add_fields = ["workspace", "region", "reason", "document", "valid_from", "valid_to"]
    view_fields = [
        "workspace",
        "region",
        "reason",
        "document_link",
        "content_type",
        "valid_from",
        "valid_to",
        "status",
        "submitted_on",
        "review_started_on",
        "reviewed_by",
        "decided_on",
        "rejection_reason",
    ]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.view_fields

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request):
        return request.user.has_perm("billing.review_taxexemption")

    @admin.display(description="Certificate", ordering="pk")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Document")
    def document_link(self, obj):
        if not obj.pk or not obj.document:
            return "—"
        url = reverse("finance:certificate-document", args=[obj.pk])
        return format_html('<a href="{}">Download</a>', url)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.submit_exemption(
            data["workspace"],
            region=data["region"],
            reason=data["reason"],
            document=data["document"],
            valid_from=data["valid_from"],
            valid_to=data["valid_to"],
            as_of=_today(),
            by=request.user,
        )
        obj.pk, obj.document, obj.status = created.pk, created.document, created.status

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BillingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(request.path)

    def _review(self, request, queryset, decide, done_message):
        done = 0
        for certificate in queryset.select_related("workspace"):
            try:
                decide(certificate)
            except BillingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} certificate(s) {done_message}.", messages.SUCCESS)

    @admin.action(description="Start review of selected certificates", permissions=["review"])
    def start_review(self, request, queryset):
        self._review(
            request,
            queryset,
            lambda c: services.start_exemption_review(c, by=request.user, as_of=_today()),
            "taken into review",
        )

    @admin.action(description="Approve selected certificates", permissions=["review"])
    def approve(self, request, queryset):
        self._review(
            request,
            queryset,
            lambda c: services.approve_exemption(c, by=request.user, as_of=_today()),
            "approved",
        )

    @admin.action(description="Reject selected certificates (asks why)", permissions=["review"])
    def reject(self, request, queryset):
        form = RejectExemptionForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._review(
                request,
                queryset,
                lambda c: services.reject_exemption(
                    c, by=request.user, reason=reason, as_of=_today()
                ),
                "rejected",
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject certificates",
            "certificates": queryset.select_related("workspace"),
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/billing/taxexemption/reject.html", context)
