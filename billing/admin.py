"""The support console (R1) and the read-only money rows. Actions and pages call services;
a refusal comes back as an error message that says why."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from billing import admin_toolkit as toolkit
from billing import search, selectors, services, tasks, usage_import
from billing.admin_toolkit import (
    DecisionPages,
    OptionalReasonForm,
    ReadOnlyInline,
    ReasonForm,
    ServiceAdmin,
    badge,
    badge_column,
    confirm_and_run,
    run_for_each,
    service_form_page,
)
from billing.documents import clean_document
from billing.emails import resend_email, stuck_emails
from billing.errors import BillingError
from billing.forms import (
    ChangeIntervalForm,
    ChangePlanForm,
    CreditNoteRequestForm,
    PaymentMethodForm,
    RecordUsageForm,
    UnlockForm,
    UsageImportForm,
    VoidInvoiceForm,
)
from billing.invoice_documents import credit_note_number
from billing.models import (
    BillingClock,
    CreditNote,
    Invoice,
    InvoiceLine,
    LockEvent,
    MonthClose,
    OutboundEmail,
    PaymentMethod,
    Plan,
    SetAsideInvoice,
    Strike,
    Subscription,
    TaxExemption,
    TaxRate,
    Usage,
    UsageImportJob,
    Workspace,
)
from billing.months import month_start
from billing.tax import US_STATES
from billing.templatetags.money import (
    count,
    day,
    email_kind,
    money,
    month,
    period,
    period_short,
    rate,
)
from billing.workspace_pages import ClosedFilter, ClosureAndForecastPages

LOCK_TONES = {"unlocked": "good", "locked": "waiting", "locked_data_stopped": "bad"}


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


class BusinessCountryFilter(toolkit.CountryInUseFilter):
    title = "business country"
    parameter_name = "business_country"


class PaymentMethodInline(ReadOnlyInline):
    """D3: every card on file and the days it was, newest first."""

    model = PaymentMethod
    fields = ["brand", "last4", "added_on", "removed_on"]
    verbose_name_plural = "payment methods (dated history)"


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
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


@admin.register(Workspace)
class WorkspaceAdmin(ClosureAndForecastPages, ServiceAdmin):
    # Fits 1366 px beside the filters: the billing email is found by the search box.
    list_display = [
        "name_and_slug",
        "plan_display",
        "trial_end_display",
        "lock_display",
        "location",
        "program_member",
    ]
    list_filter = [
        PlanFilter,
        IntervalFilter,
        TrialingFilter,
        ClosedFilter,
        "lock",
        BusinessCountryFilter,
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
    inlines = [SubscriptionInline, PaymentMethodInline]
    change_form_template = "admin/billing/workspace/change_form.html"
    history_list_display = ["lock_display", "payment_method_added_on"]
    reason_on_change = True

    def get_queryset(self, request):
        return super().get_queryset(request).with_current_subscription()

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "slug"]

    def create(self, request, data):
        # A workspace is born through the service so it gets its Free subscription.
        return services.create_workspace(
            data["name"],
            slug=data["slug"],
            business_country=str(data["business_country"]),
            business_region=data["business_region"],
            billing_email=data["billing_email"],
            as_of=toolkit.today(),
        )

    def update(self, request, workspace, data, changed):
        services.update_workspace(
            workspace,
            by=request.user,
            reason=data["change_reason"],
            name=data["name"],
            business_country=str(data["business_country"]),
            business_region=data["business_region"],
            billing_email=data["billing_email"],
        )

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

    @admin.display(description="Workspace", ordering="name")
    def name_and_slug(self, obj):
        return format_html('{}<br><span class="quiet-text">{}</span>', obj.name, obj.slug)

    @admin.display(description="Program", boolean=True, ordering="startup_member")
    def program_member(self, obj):
        return obj.startup_member

    @admin.display(description="Lock", ordering="lock")
    def lock_display(self, obj):
        if getattr(obj, "closed_on", None) is not None:  # W1: neither used nor billed any more
            return badge("Closed", "quiet")
        return badge(obj.get_lock_display(), LOCK_TONES.get(obj.lock, ""))

    @admin.display(description="Location", ordering="business_country")
    def location(self, obj):
        """X1: the business location that decides tax, e.g. US-CA."""
        code = obj.business_country.code
        where = f"{code}-{obj.business_region}" if obj.business_region else code
        return format_html('<span title="{}">{}</span>', obj.business_country.name, where)

    # --- the status panel and the action pages ---

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workspace = self.get_object(request, object_id)
        if workspace is not None:
            today = toolkit.today()
            usage = selectors.recent_usage(workspace, as_of=today)
            peak = max([mtus for _, mtus in usage] + [1])
            status = selectors.workspace_status(workspace, as_of=today)
            # P1: the Free allowance is configurable; bars above it are drawn as over.
            allowance = Plan.objects.get(code=Plan.Code.FREE).included_mtus
            over_on_free = status["plan"] == Plan.Code.FREE
            extra_context = {
                **(extra_context or {}),
                "status": status,
                "usage_bars": [
                    (m, mtus, round(100 * mtus / peak), over_on_free and mtus > allowance)
                    for m, mtus in usage
                ],
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
        actions = [
            (labels[name], reverse("admin:billing_workspace_action", args=[workspace.pk, name]))
            for name, ok in allowed.items()
            if ok
        ]
        return self.closure_actions(request, workspace, actions)  # W1, FC1

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
        closed = ""
        if action == "unlock" and workspace.lock == "unlocked":
            closed = f"{workspace.name} is not locked: there is nothing to unlock."
        if workspace.closed_on is not None:  # W1: nothing but reopening
            closed = f"{workspace.name} was closed on {workspace.closed_on}: reopen it first."
        return service_form_page(
            self,
            request,
            workspace,
            form=form_class(request.POST or None),
            perform=lambda data: self._perform(request, workspace, action, data),
            template="admin/billing/workspace/action.html",
            title=f"{title}: {workspace.name}",
            closed=closed,
            workspace=workspace,
            status=selectors.workspace_status(workspace, as_of=toolkit.today()),
        )

    def _perform(self, request, workspace, action, data):
        today, by, reason = toolkit.today(), request.user, data.get("reason", "")
        if action == "plan":
            if data["plan"] == "free":
                services.change_to_free(workspace, as_of=today, by=by, reason=reason)
                return f"{workspace.name} cancelled or downgraded to Free: {reason}"
            interval = data["plan"].split(":")[1]
            services.change_to_team(workspace, interval=interval, as_of=today, by=by, reason=reason)
            return f"{workspace.name} moved to Team ({interval}): {reason}"
        if action == "interval":
            services.change_interval(
                workspace, interval=data["interval"], as_of=today, by=by, reason=reason
            )
            return f"{workspace.name}'s billing interval set to {data['interval']}: {reason}"
        if action == "payment-method":
            services.add_payment_method(
                workspace, as_of=today, brand=data["brand"], last4=data["last4"]
            )
            return f"Payment method recorded for {workspace.name}."
        if action == "usage":
            services.record_usage(workspace, month=data["month"], mtus=data["mtus"])
            return f"{data['mtus']:,} MTUs recorded for {workspace.name}, {data['month']:%Y-%m}."
        services.unlock_workspace(workspace, by=by, reason=reason, as_of=today)
        return f"{workspace.name} unlocked: {reason}"


@admin.register(Usage)
class UsageAdmin(ServiceAdmin):
    """U1, U2: figures are recorded from the workspace page or imported from a file, both
    through the service; this list only shows them."""

    list_display = ["workspace", "month_display", "mtus_display", "updated_at"]
    list_select_related = ["workspace"]
    list_filter = ["month"]
    search_fields = ["workspace__slug", "workspace__name"]
    autocomplete_fields = ["workspace"]
    date_hierarchy = "month"
    show_full_result_count = False
    change_list_template = "admin/billing/usage/change_list.html"

    @admin.display(description="Month", ordering="month")
    def month_display(self, obj):
        return month(obj.month)

    @admin.display(description="MTUs", ordering="mtus")
    def mtus_display(self, obj):
        return count(obj.mtus)

    def get_urls(self):
        return [
            path(
                "import/", self.admin_site.admin_view(self.import_view), name="billing_usage_import"
            ),
            path(
                "import/<int:job_id>/",
                self.admin_site.admin_view(self.import_job_view),
                name="billing_usage_import_job",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """U2: the whole file or nothing; every bad line named. The upload is streamed; a large
        one is imported by a worker and the page follows it."""
        if not request.user.has_perm("billing.import_usage"):
            raise PermissionDenied
        form = UsageImportForm(request.POST or None, request.FILES or None)
        errors = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > usage_import.INLINE_MAX_BYTES:
                job = usage_import.start_import_job(
                    upload, by=request.user, run_later=tasks.import_usage_file.delay
                )
                return redirect("admin:billing_usage_import_job", job.pk)
            try:
                result = services.import_usage(upload)
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

    def import_job_view(self, request, job_id):
        """A large file's import on a worker: queued, running (how far), then its result or
        every bad line. The page reloads itself until the job is finished."""
        if not request.user.has_perm("billing.import_usage"):
            raise PermissionDenied
        job = get_object_or_404(UsageImportJob, pk=job_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import usage: {job.file_name}",
            "job": job,
            "progress": None if job.finished else usage_import.job_progress(job),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/usage/import_job.html", context)


@admin.register(Plan)
class PlanAdmin(ServiceAdmin):
    """P1, P2: the plans' prices and allowances, edited by finance through `update_plan`."""

    list_display = [
        "name",
        "code",
        "monthly_price_display",
        "annual_price_display",
        "included_mtus_display",
        "overage_rate_display",
    ]
    readonly_fields = ["code"]
    reason_on_change = True

    @admin.display(description="Monthly price", ordering="monthly_price")
    def monthly_price_display(self, obj):
        return money(obj.monthly_price)

    @admin.display(description="Annual price", ordering="annual_price")
    def annual_price_display(self, obj):
        return money(obj.annual_price)

    @admin.display(description="MTUs included a month", ordering="included_mtus")
    def included_mtus_display(self, obj):
        return count(obj.included_mtus)

    @admin.display(description="Overage per MTU", ordering="overage_rate")
    def overage_rate_display(self, obj):
        return f"${obj.overage_rate.normalize():f}" if obj.bills_overage else "none"

    def update(self, request, plan, data, changed):
        services.update_plan(
            plan,
            by=request.user,
            reason=data["change_reason"],
            **{field: data[field] for field in changed if field in services.PLAN_TERMS},
        )


@admin.register(Subscription)
class SubscriptionAdmin(ServiceAdmin):
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
class StrikeAdmin(ServiceAdmin):
    list_display = ["workspace", "month_display", "mtus_display"]
    list_select_related = ["workspace"]
    list_filter = ["month"]
    search_fields = ["workspace__slug"]

    @admin.display(description="Month over the Free limit", ordering="month")
    def month_display(self, obj):
        return month(obj.month)

    @admin.display(description="MTUs", ordering="mtus")
    def mtus_display(self, obj):
        return count(obj.mtus)


@admin.register(LockEvent)
class LockEventAdmin(ServiceAdmin):
    list_display = ["workspace", "on", "from_lock", "to_lock", "cause", "reason", "by"]
    list_select_related = ["workspace", "by"]
    list_filter = ["cause", "to_lock", "on"]
    search_fields = ["workspace__slug", "reason"]


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["position", "kind", "description", "quantity_display", "amount_display"]

    @admin.display(description="Quantity")
    def quantity_display(self, line):
        return count(line.quantity) if line.quantity is not None else ""

    @admin.display(description="Amount")
    def amount_display(self, line):
        return money(line.amount)


INVOICE_TONES = {"issued": "waiting", "paid": "good", "void": "quiet"}
CREDIT_NOTE_TONES = {"requested": "waiting", "approved": "good", "rejected": "bad"}


@admin.register(Invoice)
class InvoiceAdmin(ServiceAdmin):
    """I3: read-only for everyone; finance voids with a reason, support asks for a refund. The
    page shows what is refunded, pending and left (K3) and links the documents (I5)."""

    # Fits 1366 px beside the filters, Status and Total included.
    list_display = [
        "number",
        "workspace_name",
        "kind",
        "period_in_list",
        "issued",
        "status_display",
        "total_display",
    ]
    list_select_related = ["workspace"]
    list_filter = ["status", "kind", "issue_date"]
    search_fields = ["number", "workspace__slug", "workspace__name"]
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline]
    show_full_result_count = False
    change_form_template = "admin/billing/invoice/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "workspace",
                    "kind",
                    "status_display",
                    "issue_date",
                    "period_display",
                ]
            },
        ),
        (
            "Amounts",
            {
                "fields": [
                    "subtotal_display",
                    "discount_display",
                    "credits_display",
                    "tax_display",
                    "total_display",
                ]
            },
        ),
        ("Tax", {"fields": ["jurisdiction", "rate_display", "tax_note"]}),
        ("As issued", {"fields": ["plan_display", "overage_display"]}),
    ]
    void_fieldset = ("Void", {"fields": ["voided_on", "void_reason"]})
    readonly_fields = [
        name for _, options in fieldsets for name in options["fields"] if name.endswith("display")
    ] + ["jurisdiction"]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.status == Invoice.Status.VOID:
            return [*self.fieldsets, self.void_fieldset]
        return self.fieldsets

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_name(self, obj):
        return obj.workspace.name

    @admin.display(description="Period", ordering="period_start")
    def period_display(self, obj):
        return period(obj)

    @admin.display(description="Period", ordering="period_start")
    def period_in_list(self, obj):
        return period_short(obj)

    @admin.display(description="Issued", ordering="issue_date")
    def issued(self, obj):
        return day(obj.issue_date)

    status_display = badge_column("status", INVOICE_TONES)

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj):
        return money(obj.total, obj.currency)

    @admin.display(description="Subtotal")
    def subtotal_display(self, obj):
        return money(obj.subtotal, obj.currency)

    @admin.display(description="Discount")
    def discount_display(self, obj):
        return money(obj.discount, obj.currency)

    @admin.display(description="Startup credit")
    def credits_display(self, obj):
        return money(obj.credits, obj.currency)

    @admin.display(description="Tax")
    def tax_display(self, obj):
        return money(obj.tax, obj.currency)

    @admin.display(description="Jurisdiction")
    def jurisdiction(self, obj):
        if not obj.tax_country:
            return "—"
        return f"{obj.tax_country}-{obj.tax_region}" if obj.tax_region else obj.tax_country

    @admin.display(description="Tax rate")
    def rate_display(self, obj):
        return rate(obj.tax_rate) if obj.tax_rate is not None else "no rate (no tax)"

    @admin.display(description="Plan")
    def plan_display(self, obj):
        return f"{obj.plan_code.capitalize()}, billed {obj.get_interval_display().lower()}"

    @admin.display(description="MTUs billed as overage")
    def overage_display(self, obj):
        return count(obj.overage_mtus)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        if invoice is not None:
            extra_context = {
                **(extra_context or {}),
                "refunds": selectors.refund_summary(invoice),
                "can_decide": request.user.has_perm("billing.approve_creditnote"),
            }
        return super().change_view(request, object_id, form_url, extra_context)

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

    def _form_page(self, request, invoice, form, title, permission, perform, **context):
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
            **context,
        )

    def void_view(self, request, pk):
        invoice = get_object_or_404(Invoice.objects.select_related("workspace"), pk=pk)

        def perform(data):
            services.void_invoice(
                invoice, by=request.user, reason=data["reason"], as_of=toolkit.today()
            )
            return f"{invoice.number} voided: {data['reason']}"

        closed = ""
        if invoice.status == Invoice.Status.VOID:
            closed = f"{invoice.number} is already void (since {invoice.voided_on}): "
            closed += invoice.void_reason or "no reason recorded."
        form = VoidInvoiceForm(request.POST or None)
        return self._form_page(
            request,
            invoice,
            form,
            "Void invoice",
            "billing.void_invoice",
            perform,
            closed=closed,
            intro="A void invoice is kept, marked void; nothing is due on it. This cannot be "
            "undone.",
        )

    def credit_note_view(self, request, pk):
        """K3: support asks for a refund; the page shows what is refunded, what is already
        requested and what is left, so a request that can never be approved is not filed."""
        invoice = get_object_or_404(Invoice.objects.select_related("workspace"), pk=pk)
        refunds = selectors.refund_summary(invoice)

        def perform(data):
            services.request_credit_note(
                invoice,
                by=request.user,
                amount=data["amount"],
                reason=data["reason"],
                as_of=toolkit.today(),
            )
            return (
                f"Credit note of {money(data['amount'])} on {invoice.number} requested; "
                "finance decides."
            )

        closed = ""
        if invoice.status == Invoice.Status.VOID:
            closed = f"{invoice.number} is void: there is nothing to refund."
        elif refunds.left <= 0:
            closed = f"{invoice.number} is refunded in full ({money(refunds.refunded)})."
        form = CreditNoteRequestForm(request.POST or None)
        return self._form_page(
            request,
            invoice,
            form,
            "Request a credit note",
            "billing.add_creditnote",
            perform,
            closed=closed,
            refunds=refunds,
        )


@admin.register(CreditNote)
class CreditNoteAdmin(ServiceAdmin):
    """K3: finance approves or rejects what support requested, from the credit note's page
    (the invoice's figures beside the buttons) or in bulk from the list."""

    list_display = [
        "invoice",
        "workspace_name",
        "amount_display",
        "status_display",
        "reason_in_list",
        "requested",
        "decided",
    ]
    list_select_related = ["invoice__workspace", "requested_by", "decided_by"]
    list_filter = ["status", "requested_on"]
    search_fields = ["invoice__number", "reason"]
    actions = ["approve", "reject"]
    change_form_template = "admin/billing/creditnote/change_form.html"
    fields = [
        "invoice",
        "amount_display",
        "status_display",
        "reason",
        "requested_by",
        "requested_on",
        "decided_by",
        "decided_on",
        "decision_note",
    ]
    readonly_fields = ["amount_display", "status_display"]

    def has_approve_permission(self, request):
        return request.user.has_perm("billing.approve_creditnote")

    @admin.display(description="Workspace", ordering="invoice__workspace__name")
    def workspace_name(self, note):
        return note.invoice.workspace.name

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, note):
        return money(note.amount)

    status_display = badge_column("status", CREDIT_NOTE_TONES)

    # The list fits 1366 px beside the filters: who and when share a column, the reason is cut
    # (the note's page has it whole).
    @admin.display(description="Reason")
    def reason_in_list(self, note):
        return Truncator(note.reason).chars(70)

    @admin.display(description="Requested", ordering="requested_on")
    def requested(self, note):
        return format_html(
            '{}<br><span class="quiet-text">{}</span>', day(note.requested_on), note.requested_by
        )

    @admin.display(description="Decided", ordering="decided_on")
    def decided(self, note):
        if note.decided_on is None:
            return "—"
        return format_html(
            '{}<br><span class="quiet-text">{}</span>', day(note.decided_on), note.decided_by
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        note = self.get_object(request, object_id)
        if note is not None:
            extra_context = {
                **(extra_context or {}),
                "invoice": note.invoice,
                "refunds": selectors.refund_summary(note.invoice),
                "can_decide": self.has_approve_permission(request),
                "document_number": credit_note_number(note),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/decide/<str:decision>/",
                self.admin_site.admin_view(self.decide_view),
                name="billing_creditnote_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request, pk, decision):
        """K3: one credit note, decided on a page that shows the invoice's refunded, pending
        and left amounts; approving moves money, so the page is a confirmation."""
        if decision not in ("approve", "reject") or not self.has_approve_permission(request):
            raise PermissionDenied
        note = get_object_or_404(
            CreditNote.objects.select_related("invoice__workspace", "decided_by"), pk=pk
        )
        approve = decision == "approve"
        invoice = note.invoice

        def perform(data):
            services.decide_credit_note(
                note,
                by=request.user,
                approve=approve,
                as_of=toolkit.today(),
                note_text=data["reason"],
            )
            if approve:
                return f"Credit note of {money(note.amount)} on {invoice.number} approved."
            return f"Credit note of {money(note.amount)} on {invoice.number} rejected."

        closed = ""
        if note.status != CreditNote.Status.REQUESTED:
            closed = (
                f"This credit note was already {note.get_status_display().lower()} on "
                f"{note.decided_on}"
                + (f" by {note.decided_by}" if note.decided_by else "")
                + ": a decision is final."
            )
        form_class = OptionalReasonForm if approve else ReasonForm
        verb = "Approve" if approve else "Reject"
        return service_form_page(
            self,
            request,
            note,
            form=form_class(request.POST or None),
            perform=perform,
            template="admin/billing/creditnote/decide.html",
            title=f"{verb} the credit note of {money(note.amount)} on {invoice.number}",
            submit_label=f"Yes, {verb.lower()} {money(note.amount)}",
            closed=closed,
            note=note,
            invoice=invoice,
            refunds=selectors.refund_summary(invoice),
        )

    def _decide(self, request, queryset, approve):
        verb = "approve" if approve else "reject"
        return confirm_and_run(
            self,
            request,
            queryset.select_related("invoice"),
            lambda note, data: services.decide_credit_note(
                note,
                by=request.user,
                approve=approve,
                as_of=toolkit.today(),
                note_text=data["reason"],
            ),
            title=f"{verb.capitalize()} credit notes",
            done=f"credit note(s) {verb}d",
            form_class=OptionalReasonForm if approve else ReasonForm,
            describe=lambda note: f"{note.invoice.number}: {money(note.amount)} — {note.reason}",
        )

    @admin.action(description="Approve selected credit notes…", permissions=["approve"])
    def approve(self, request, queryset):
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected credit notes…", permissions=["approve"])
    def reject(self, request, queryset):
        return self._decide(request, queryset, approve=False)


class SetAsideInline(ReadOnlyInline):
    """I6: the workspaces this close could not bill, with why; the clock tries each again."""

    model = SetAsideInvoice
    fields = ["workspace", "error", "first_seen_on", "resolved_on"]
    verbose_name_plural = "workspaces set aside (not billed yet)"


@admin.register(MonthClose)
class MonthCloseAdmin(ServiceAdmin):
    list_display = [
        "month_display",
        "finished",
        "closed_on",
        "strikes",
        "invoices",
        "waiting",
        "updated_at",
    ]
    inlines = [SetAsideInline]

    def get_queryset(self, request):
        unresolved = Count("set_aside", filter=Q(set_aside__resolved_on=None))
        return super().get_queryset(request).annotate(waiting_count=unresolved)

    @admin.display(description="Set aside", ordering="waiting_count")
    def waiting(self, obj):
        return obj.waiting_count or "—"

    @admin.display(description="Month", ordering="month")
    def month_display(self, obj):
        return month(obj.month)


@admin.register(BillingClock)
class BillingClockAdmin(ServiceAdmin):
    """D1, D2: the last day the billing clock processed; changes dated on or before it are
    refused."""

    list_display = ["last_processed_day", "updated_at"]


@admin.register(TaxRate)
class TaxRateAdmin(ServiceAdmin):
    """X2: a rate is a dated fact: a new rate from a date replaces the old one from then on
    (`set_tax_rate`); a rate in force is never edited in place."""

    list_display = ["country", "region", "rate_display", "name", "valid_from"]
    list_filter = ["country"]
    search_fields = ["region", "name"]
    fields = ["country", "region", "rate", "name", "valid_from"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        return ["rate_display" if f == "rate" else f for f in self.fields]  # "7.25 %"

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description="Rate", ordering="rate")
    def rate_display(self, obj):
        return rate(obj.rate)

    def create(self, request, data):
        return services.set_tax_rate(
            str(data["country"]),
            region=data["region"].strip().upper(),
            rate=data["rate"],
            name=data["name"],
            valid_from=data["valid_from"],
        )


class EmailKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = OutboundEmail.objects.order_by("kind").values_list("kind", flat=True).distinct()
        return [(kind, email_kind(kind)) for kind in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class DeliveryFilter(admin.SimpleListFilter):
    """The emails that need a person: failed after their last retry, or stuck pending."""

    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        stuck = f"Stuck (pending, untouched for {settings.EMAIL_STUCK_AFTER_MINUTES} min)"
        return [("attention", "Failed or stuck"), ("failed", "Failed"), ("stuck", stuck)]

    def queryset(self, request, queryset):
        failed = queryset.filter(status=OutboundEmail.Status.FAILED)
        stuck = stuck_emails(timezone.now(), queryset)
        return {"attention": failed | stuck, "failed": failed, "stuck": stuck}.get(
            self.value(), queryset
        )


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ServiceAdmin):
    """The outbox: every promised email has left, or shows here as failed or stuck with its
    error; support and finance resend it (never one already sent)."""

    list_display = [
        "kind_display",
        "to",
        "subject",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "error",
    ]
    list_filter = [DeliveryFilter, EmailKindFilter, "status"]
    search_fields = ["to", "subject", "object_key"]
    actions = ["resend"]

    def has_resend_permission(self, request):
        return request.user.has_perm("billing.resend_outboundemail")

    @admin.display(description="Kind", ordering="kind")
    def kind_display(self, email):
        return email_kind(email.kind)

    @admin.display(description="Last error")
    def error(self, email):
        return Truncator(email.last_error).chars(80) or "—"

    @admin.action(description="Resend selected emails…", permissions=["resend"])
    def resend(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset,
            lambda email, data: resend_email(email, by=request.user),
            title="Resend emails",
            done="email(s) sent again",
            form_class=None,
            intro="Each email goes once: one already sent is refused.",
            describe=lambda email: (
                f"“{email.subject}” to {email.to} ({email.get_status_display().lower()})"
            ),
        )


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
        return clean_document(self.cleaned_data.get("document"), what="certificate")


CERTIFICATE_TONES = {
    "submitted": "waiting",
    "in_review": "waiting",
    "approved": "good",
    "rejected": "bad",
}


@admin.register(TaxExemption)
class TaxExemptionAdmin(DecisionPages, ServiceAdmin):
    """X4: support and finance upload certificates; finance reviews each on its page, with the
    document shown beside the decision buttons (or in bulk from the list). Nothing is edited by
    hand: a wrong certificate is rejected and a new one submitted."""

    form = TaxExemptionForm
    change_form_template = "admin/toolkit/decision_change_form.html"
    decisions = {"review": "Start review", "approve": "Approve", "reject": "Reject"}
    review_permission = "billing.review_taxexemption"
    decide_url_name = "billing_taxexemption_decide"
    decide_template = "admin/billing/taxexemption/decide.html"
    document_label = "Certificate document"
    decision_related = ("workspace", "reviewed_by")
    list_display = [
        "number",
        "workspace",
        "region",
        "reason",
        "status_display",
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

    @admin.display(description="Certificate", ordering="pk")
    def number(self, obj):
        return f"#{obj.pk}"

    status_display = badge_column("status", CERTIFICATE_TONES)

    # --- the review page: the document and the decision buttons (toolkit.DecisionPages) ---

    def open_decisions(self, certificate):
        if certificate.status in (TaxExemption.Status.APPROVED, TaxExemption.Status.REJECTED):
            return []
        if certificate.status == TaxExemption.Status.SUBMITTED:
            return ["review", "approve", "reject"]
        return ["approve", "reject"]

    def document_url(self, certificate):
        return reverse("finance:certificate-document", args=[certificate.pk])

    def decided(self, certificate, decision):
        name = f"Certificate #{certificate.pk}"
        if certificate.status in (TaxExemption.Status.APPROVED, TaxExemption.Status.REJECTED):
            return (
                f"{name} was already {certificate.get_status_display().lower()} on "
                f"{certificate.decided_on}: a decision is final."
            )
        if decision == "review" and certificate.status == TaxExemption.Status.IN_REVIEW:
            return f"{name} is already in review since {certificate.review_started_on}."
        return ""

    def decision_page(self, certificate, decision):
        ws = certificate.workspace.name
        intros = {
            "review": "Taking the certificate into review tells the customer's agents that "
            "finance is on it; it changes no invoice.",
            "approve": f"From today, invoices of {ws} for {certificate.region} carry no sales "
            "tax while the certificate is valid. Invoices already issued do not change.",
            "reject": "Invoices go on carrying sales tax. The reason is kept with the certificate.",
        }
        return {
            "title": f"{self.decisions[decision]}: certificate #{certificate.pk} of {ws}",
            "intro": intros[decision],
            "certificate": certificate,
        }

    def decide(self, request, certificate, decision, data):
        """X4: finance takes one certificate into review, approves or rejects it (with a
        reason), on a page that shows the document again."""
        today, by, name = toolkit.today(), request.user, f"Certificate #{certificate.pk}"
        if decision == "review":
            services.start_exemption_review(certificate, by=by, as_of=today)
            return f"{name} is in review."
        if decision == "approve":
            services.approve_exemption(certificate, by=by, as_of=today)
            ws = certificate.workspace.name
            return f"{name} approved: {certificate.region} invoices of {ws} carry no tax."
        services.reject_exemption(certificate, by=by, reason=data["reason"], as_of=today)
        return f"{name} rejected: {data['reason']}"

    @admin.display(description="Document")
    def document_link(self, obj):
        if not obj.pk or not obj.document:
            return "—"
        url = reverse("finance:certificate-document", args=[obj.pk])
        return format_html('<a href="{}">Download</a>', url)

    def create(self, request, data):
        return services.submit_exemption(
            data["workspace"],
            region=data["region"],
            reason=data["reason"],
            document=data["document"],
            valid_from=data["valid_from"],
            valid_to=data["valid_to"],
            as_of=toolkit.today(),
            by=request.user,
        )

    def _describe(self, certificate):
        status = certificate.get_status_display().lower()
        return f"#{certificate.pk} {certificate.workspace.name}, {certificate.region} ({status})"

    @admin.action(description="Start review of selected certificates", permissions=["review"])
    def start_review(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset.select_related("workspace"),
            lambda c: services.start_exemption_review(c, by=request.user, as_of=toolkit.today()),
            done="certificate(s) taken into review",
        )

    @admin.action(description="Approve selected certificates…", permissions=["review"])
    def approve(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset.select_related("workspace"),
            lambda c, data: services.approve_exemption(c, by=request.user, as_of=toolkit.today()),
            title="Approve certificates",
            done="certificate(s) approved",
            form_class=None,
            intro="Approved certificates waive the sales tax of invoices issued from today in "
            "their state, while they are valid.",
            describe=self._describe,
        )

    @admin.action(description="Reject selected certificates…", permissions=["review"])
    def reject(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset.select_related("workspace"),
            lambda c, data: services.reject_exemption(
                c, by=request.user, reason=data["reason"], as_of=toolkit.today()
            ),
            title="Reject certificates",
            done="certificate(s) rejected",
            describe=self._describe,
        )


# --- What the header's search box finds here (billing/search.py) ------------------------------


def _describe_workspace(ws):
    lock = (
        badge("Closed", "quiet")
        if ws.closed_on is not None
        else badge(ws.get_lock_display(), LOCK_TONES.get(ws.lock, ""))
    )
    return f"{ws.name} ({ws.slug})", format_html("{} · {}", ws.billing_email, lock)


def _describe_invoice(invoice):
    detail = format_html(
        "{} · {} · {} · {}",
        invoice.workspace.name,
        period_short(invoice),
        money(invoice.total, invoice.currency),
        toolkit.status_badge(invoice, "status", INVOICE_TONES),
    )
    return invoice.number, detail


search.register(
    Workspace,
    label="Workspaces",
    fields=("slug", "name", "billing_email"),
    exact=("slug", "billing_email"),
    order_by=("name", "pk"),
    describe=_describe_workspace,
)
search.register(
    Invoice,
    label="Invoices",
    fields=("number", "workspace__slug"),
    exact=("number",),
    order_by=("-issue_date", "-pk"),
    select_related=("workspace",),
    describe=_describe_invoice,
)
