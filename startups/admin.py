"""The reviewers' console (R2): applications with their checklist, review pages and bulk
decisions, territories, partner deals and requests, renewal reviews. Pages call services."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from simple_history.admin import SimpleHistoryAdmin

from billing.admin_pages import service_form_page
from billing.errors import BillingError
from startups import services
from startups.forms import ApproveForm, AssignForm, RejectForm, RenewalForm
from startups.models import (
    DealRequest,
    EligibleTerritory,
    PartnerDeal,
    RenewalReview,
    StartupApplication,
)

REVIEW = "startups.review_application"


def _today():
    return timezone.now().date()


def checklist(application) -> str:
    return format_html_join(
        " ",
        '<span class="check {}" title="{}">{}</span>',
        (("pass" if c["passed"] else "fail", c["reason"], c["id"]) for c in application.checks),
    )


@admin.register(StartupApplication)
class StartupApplicationAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "company_name",
        "country",
        "total_funding",
        "submitted_on",
        "status",
        "checks_display",
        "assigned_to",
        "workspace",
        "partner_name",
    ]
    list_select_related = ["assigned_to", "workspace"]
    list_filter = [
        "status",
        "country",
        "submitted_on",
        "source",
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["company_name", "contact_email", "website", "workspace__slug"]
    autocomplete_fields = ["workspace"]
    date_hierarchy = "submitted_on"
    show_full_result_count = False
    actions = ["assign_to_me", "bulk_approve", "bulk_reject"]
    change_form_template = "admin/startups/startupapplication/change_form.html"
    fields = [
        "company_name",
        "website",
        "contact_name",
        "contact_email",
        "workspace",
        "incorporation_date",
        "total_funding",
        "country",
        "partner_name",
    ]
    decided_fields = [
        "status",
        "source",
        "submitted_on",
        "assigned_to",
        "decided_by",
        "decided_on",
        "decision_note",
        "rejection_reason",
        "override_reason",
    ]

    @admin.display(description="Checks")
    def checks_display(self, obj):
        return checklist(obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The applicant's answers stay as sent; only the workspace link may be added.
        editable = ["workspace", "partner"] if obj.is_open else []
        return [f for f in self.fields if f not in editable] + self.decided_fields

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self.fields + self.decided_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Staff entry goes through the service (S1), so checks and email happen as for the
        public form; linking a workspace re-evaluates the checks."""
        if change:
            services.refresh_checks(obj)
            obj._change_reason = "Edited in the admin: " + ", ".join(form.changed_data)
            obj.save()
            return
        data = form.cleaned_data
        created = services.submit_application(
            data["company_name"],
            website=data["website"],
            contact_name=data["contact_name"],
            contact_email=data["contact_email"],
            incorporation_date=data["incorporation_date"],
            total_funding=data["total_funding"],
            country=data["country"],
            workspace=data["workspace"],
            partner_name=data["partner_name"],
            partner=data["partner"],
            as_of=_today(),
            source=StartupApplication.Source.STAFF,
            by=request.user,
        )
        obj.pk = created.pk

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BillingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(request.path)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        application = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if application is not None:
            # S2: recomputed when the reviewer opens it (a workspace may have got a coupon since).
            if application.is_open:
                services.refresh_checks(application)
                StartupApplication.objects.filter(pk=application.pk).update(
                    checks=application.checks, failing_checks=application.failing_checks
                )
            extra_context["checks"] = application.checks
            extra_context["review_actions"] = self._review_actions(request, application)
        return super().change_view(request, object_id, form_url, extra_context)

    def _review_actions(self, request, application):
        if not request.user.has_perm(REVIEW) or not application.is_open:
            return []
        names = ["approve", "reject", "withdraw"]
        if application.status == StartupApplication.Status.SUBMITTED:
            names.insert(0, "review")
        return [
            (
                name.capitalize() if name != "review" else "Start review",
                reverse("admin:startups_application_action", args=[application.pk, name]),
            )
            for name in names
        ]

    def get_urls(self):
        return [
            path(
                "<int:pk>/do/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="startups_application_action",
            ),
            *super().get_urls(),
        ]

    def action_view(self, request, pk, action):
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied
        application = get_object_or_404(StartupApplication, pk=pk)
        forms = {"approve": ApproveForm, "reject": RejectForm, "assign": AssignForm}
        form = forms[action](request.POST or None) if action in forms else None
        if action not in ("approve", "reject", "withdraw", "review", "assign"):
            raise PermissionDenied
        return service_form_page(
            self,
            request,
            application,
            form=form,
            perform=lambda data: self._perform(request, application, action, data),
            template="admin/startups/startupapplication/action.html",
            title=f"{action.capitalize()}: {application.company_name}",
            application=application,
            checks=application.checks,
        )

    def _perform(self, request, application, action, data):
        today = _today()
        if action == "review":
            services.start_review(application, by=request.user, as_of=today)
            return f"Application #{application.pk} is in review, assigned to you."
        if action == "assign":
            services.assign_application(
                application, reviewer=data["reviewer"], by=request.user, as_of=today
            )
            return f"Application #{application.pk} assigned to {data['reviewer']}."
        if action == "withdraw":
            services.withdraw_application(application, by=request.user, as_of=today)
            return f"Application #{application.pk} withdrawn."
        if action == "reject":
            services.reject_application(
                application, by=request.user, reason=data["reason"], as_of=today
            )
            return f"Application #{application.pk} rejected; the applicant is told why."
        services.approve_application(
            application,
            by=request.user,
            note=data["note"],
            override_reason=data["override_reason"],
            as_of=today,
        )
        return f"{application.company_name} is accepted into the Startup Program."

    # --- bulk decisions, each behind a confirmation page ---

    def has_review_permission(self, request):
        return request.user.has_perm(REVIEW)

    def _bulk(self, request, queryset, action, title):
        form = (
            RejectForm(request.POST)
            if action == "reject" and "confirm" in request.POST
            else (RejectForm() if action == "reject" else None)
        )
        if "confirm" in request.POST and (form is None or form.is_valid()):
            done, refused = 0, []
            for application in queryset:
                try:
                    self._perform(
                        request,
                        application,
                        action,
                        {
                            "reason": form.cleaned_data["reason"] if form else "",
                            "note": "",
                            "override_reason": "",
                        },
                    )
                    done += 1
                except BillingError as exc:
                    refused.append(f"#{application.pk} {application.company_name}: {exc}")
            if done:
                self.message_user(request, f"{done} application(s) {action}d.", messages.SUCCESS)
            for line in refused:
                self.message_user(request, line, messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "applications": queryset.select_related("workspace"),
            "action": f"bulk_{action}",
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/startups/startupapplication/bulk_confirm.html", context
        )

    @admin.action(description="Assign selected applications to me", permissions=["review"])
    def assign_to_me(self, request, queryset):
        assigned = 0
        for application in queryset:
            try:
                services.assign_application(
                    application, reviewer=request.user, by=request.user, as_of=_today()
                )
                assigned += 1
            except BillingError as exc:
                self.message_user(request, f"#{application.pk}: {exc}", messages.ERROR)
        if assigned:
            self.message_user(
                request, f"{assigned} application(s) assigned to you.", messages.SUCCESS
            )

    @admin.action(description="Approve selected applications…", permissions=["review"])
    def bulk_approve(self, request, queryset):
        return self._bulk(request, queryset, "approve", "Approve these applications?")

    @admin.action(description="Reject selected applications…", permissions=["review"])
    def bulk_reject(self, request, queryset):
        return self._bulk(request, queryset, "reject", "Reject these applications?")


@admin.register(EligibleTerritory)
class EligibleTerritoryAdmin(SimpleHistoryAdmin):
    list_display = ["country", "active"]
    list_filter = ["active"]
    list_editable = ["active"]
    search_fields = ["country"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PartnerDeal)
class PartnerDealAdmin(SimpleHistoryAdmin):
    list_display = ["company", "title", "active"]
    list_filter = ["active"]
    search_fields = ["company", "title"]


@admin.register(DealRequest)
class DealRequestAdmin(SimpleHistoryAdmin):
    list_display = ["deal", "application", "status", "requested_on", "decided_by", "decided_on"]
    list_select_related = ["deal", "application", "decided_by"]
    list_filter = ["status", "deal"]
    actions = ["fulfil", "decline"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["application", "deal", "status", "requested_on", "decided_by", "decided_on", "note"]

    def get_fields(self, request, obj=None):
        if obj is None:  # an accepted startup asked staff for a deal (S6)
            return ["application", "deal"]
        return super().get_fields(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "application":
            kwargs["queryset"] = StartupApplication.objects.filter(
                status=StartupApplication.Status.APPROVED
            )
        if db_field.name == "deal":
            kwargs["queryset"] = PartnerDeal.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = services.request_deal(
            form.cleaned_data["application"], deal=form.cleaned_data["deal"], as_of=_today()
        )
        obj.pk = created.pk

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except BillingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(request.path)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        return request.user.has_perm("startups.change_dealrequest")

    def _decide(self, request, queryset, fulfil):
        for deal_request in queryset:
            try:
                services.decide_deal_request(
                    deal_request, by=request.user, fulfil=fulfil, as_of=_today()
                )
            except BillingError as exc:
                self.message_user(request, f"{deal_request}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{deal_request}: {'fulfilled' if fulfil else 'declined'}."
                )

    @admin.action(description="Mark fulfilled", permissions=["decide"])
    def fulfil(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description="Decline", permissions=["decide"])
    def decline(self, request, queryset):
        self._decide(request, queryset, False)


@admin.register(RenewalReview)
class RenewalReviewAdmin(SimpleHistoryAdmin):
    """CR3: confirm E2/E3 with the startup's current figures to grant year two."""

    list_display = ["application", "year", "due_on", "status", "decided_by", "decided_on"]
    list_select_related = ["application", "decided_by"]
    list_filter = ["status", "due_on"]
    readonly_fields = [
        "application",
        "year",
        "due_on",
        "status",
        "decided_by",
        "decided_on",
        "total_funding",
        "country",
        "note",
    ]
    change_form_template = "admin/startups/renewalreview/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:pk>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="startups_renewal_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request, pk):
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied
        review = get_object_or_404(RenewalReview.objects.select_related("application"), pk=pk)
        form = RenewalForm(
            request.POST or None,
            initial={
                "total_funding": review.application.total_funding,
                "country": review.application.country,
            },
        )

        def perform(data):
            company = review.application.company_name
            if data["decision"] == "confirm":
                services.confirm_renewal(
                    review,
                    by=request.user,
                    total_funding=data["total_funding"],
                    country=data["country"],
                    as_of=_today(),
                )
                return f"Year two granted to {company}."
            services.decline_renewal(review, by=request.user, note=data["note"], as_of=_today())
            return f"Year two declined for {company}."

        return service_form_page(
            self,
            request,
            review,
            form=form,
            perform=perform,
            template="admin/startups/renewalreview/decide.html",
            title=f"Year two for {review.application.company_name}",
            review=review,
        )
