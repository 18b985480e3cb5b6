"""The reviewers' console (R2): applications with their checklist, review pages and bulk
decisions, territories, partner deals and requests, renewal reviews. Pages call services."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from billing import admin_toolkit as toolkit
from billing import search
from billing.admin_toolkit import (
    ServiceAdmin,
    confirm_and_run,
    run_for_each,
    service_form_page,
    status_badge,
)
from billing.templatetags.money import day, money
from startups import services
from startups.forms import ApproveForm, AssignForm, BulkApproveForm, RejectForm, RenewalForm
from startups.models import (
    DealRequest,
    EligibleTerritory,
    PartnerDeal,
    RenewalReview,
    StartupApplication,
)

REVIEW = "startups.review_application"
ACTION_TITLES = {
    "approve": "Approve",
    "reject": "Reject",
    "withdraw": "Withdraw",
    "review": "Start review",
    "assign": "Assign",
}
APPLICATION_TONES = {
    "submitted": "waiting",
    "in_review": "waiting",
    "approved": "good",
    "rejected": "bad",
    "withdrawn": "quiet",
}


def checklist(application) -> str:
    return format_html_join(
        " ",
        '<span class="check {}" title="{}">{}</span>',
        (("pass" if c["passed"] else "fail", c["reason"], c["id"]) for c in application.checks),
    )


@admin.register(StartupApplication)
class StartupApplicationAdmin(ServiceAdmin):
    # Fits 1366 px beside the filters: number, country and partner under the company's name.
    list_display = [
        "company",
        "funding_display",
        "submitted",
        "status_and_reviewer",
        "checks_display",
        "workspace_slug",
    ]
    list_display_links = ["company"]
    list_select_related = ["assigned_to", "workspace"]
    list_filter = [
        "status",
        toolkit.CountryInUseFilter,
        "submitted_on",
        "source",
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["company_name", "contact_email", "website", "workspace__slug"]
    autocomplete_fields = ["workspace", "partner"]
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
        "partner",
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

    @admin.display(description="Company", ordering="company_name")
    def company(self, obj):
        about = f"#{obj.pk} · {obj.country.code}"
        if obj.partner_name:
            about += f" · via {obj.partner_name}"
        return format_html('{}<br><span class="quiet-text">{}</span>', obj.company_name, about)

    @admin.display(description="Submitted", ordering="submitted_on")
    def submitted(self, obj):
        return day(obj.submitted_on)

    @admin.display(description="Status", ordering="status")
    def status_and_reviewer(self, obj):
        badge = status_badge(obj, "status", APPLICATION_TONES)
        if obj.assigned_to is None:
            return badge
        return format_html('{}<br><span class="quiet-text">{}</span>', badge, obj.assigned_to)

    @admin.display(description="Workspace", ordering="workspace__slug")
    def workspace_slug(self, obj):
        return obj.workspace.slug if obj.workspace else "—"

    @admin.display(description="Checks")
    def checks_display(self, obj):
        return checklist(obj)

    @admin.display(description="Funding", ordering="total_funding")
    def funding_display(self, obj):
        return money(obj.total_funding)

    def _shown_fields(self):
        # Read, not typed: the funding as people read money ($900,000.00).
        return ["funding_display" if f == "total_funding" else f for f in self.fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The applicant's answers stay as sent; only the workspace link may be added.
        editable = ["workspace", "partner"] if obj.is_open else []
        return [f for f in self._shown_fields() if f not in editable] + self.decided_fields

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self._shown_fields() + self.decided_fields

    def create(self, request, data):
        """S1: staff entry goes through the service, so checks and email happen as for the
        public form."""
        return services.submit_application(
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
            as_of=toolkit.today(),
            source=StartupApplication.Source.STAFF,
            by=request.user,
        )

    def update(self, request, application, data, changed):
        """Only the workspace and partner links change on an open application."""
        services.link_application(
            application,
            by=request.user,
            workspace=data.get("workspace", application.workspace),
            partner=data.get("partner", application.partner),
            as_of=toolkit.today(),
        )

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
        application = get_object_or_404(
            StartupApplication.objects.select_related("workspace"), pk=pk
        )
        if action not in ("approve", "reject", "withdraw", "review", "assign"):
            raise PermissionDenied
        if action == "approve":
            form = ApproveForm(
                request.POST or None, application=application, admin_site=self.admin_site
            )
        else:
            forms = {"reject": RejectForm, "assign": AssignForm}
            form = forms[action](request.POST or None) if action in forms else None
        return service_form_page(
            self,
            request,
            application,
            form=form,
            perform=lambda data: self._perform(request, application, action, data),
            template="admin/startups/startupapplication/action.html",
            title=f"{ACTION_TITLES[action]}: {application.company_name}",
            closed=self._closed(application, action),
            application=application,
            checks=application.checks,
            credits_warning=services.credits_scope_warning(application, toolkit.today())
            if action == "approve"
            else "",
        )

    def _closed(self, application, action) -> str:
        """Why the application's state rules `action` out, for the page to say instead of
        offering a form (S3: a decision is final)."""
        if not application.is_open:
            decided = f" on {application.decided_on}" if application.decided_on else ""
            status = application.get_status_display().lower()
            return (
                f"Application #{application.pk} was already {status}{decided}: a decision is final."
            )
        if action == "review" and application.status == StartupApplication.Status.IN_REVIEW:
            return f"Application #{application.pk} is in review already."
        return ""

    def _perform(self, request, application, action, data):
        today = toolkit.today()
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
        if data.get("workspace") and data["workspace"] != application.workspace:
            # S3: approval needs a linked workspace; the reviewer may link it right here.
            application = services.link_application(
                application,
                by=request.user,
                workspace=data["workspace"],
                partner=application.partner,
                as_of=today,
            )
        services.approve_application(
            application,
            by=request.user,
            note=data["note"],
            override_reason=data["override_reason"],
            credits_scope_confirmed=data.get("credits_scope_confirmed", False),
            as_of=today,
        )
        return f"{application.company_name} is accepted into the Startup Program."

    # --- bulk decisions, each behind a confirmation page ---

    def has_review_permission(self, request):
        return request.user.has_perm(REVIEW)

    def _describe(self, application):
        failing = f"; failing: {application.failing_checks}" if application.failing_checks else ""
        status = application.get_status_display().lower()
        return f"#{application.pk} {application.company_name} ({status}{failing})"

    @admin.action(description="Assign selected applications to me", permissions=["review"])
    def assign_to_me(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda application: services.assign_application(
                application, reviewer=request.user, by=request.user, as_of=toolkit.today()
            ),
            done="application(s) assigned to you",
        )

    @admin.action(description="Approve selected applications…", permissions=["review"])
    def bulk_approve(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset.select_related("workspace"),
            lambda application, data: self._perform(
                request, application, "approve", {"note": "", "override_reason": "", **data}
            ),
            title="Approve applications",
            done="application(s) approved",
            form_class=BulkApproveForm,
            intro="Each approval redeems the startup-program coupon, grants year one's credit "
            "and emails the applicant. An application with a failing check is refused: open "
            "it to approve with an override reason.",
            describe=self._describe,
        )

    @admin.action(description="Reject selected applications…", permissions=["review"])
    def bulk_reject(self, request, queryset):
        return confirm_and_run(
            self,
            request,
            queryset,
            lambda application, data: self._perform(request, application, "reject", data),
            title="Reject applications",
            done="application(s) rejected",
            form_class=RejectForm,
            intro="Each applicant gets one email with the reason.",
            describe=self._describe,
        )


@admin.register(EligibleTerritory)
class EligibleTerritoryAdmin(ServiceAdmin):
    """E3: the countries the program is open in."""

    list_display = ["country", "active"]
    list_filter = ["active"]
    list_editable = ["active"]
    search_fields = ["country"]

    def create(self, request, data):
        return services.set_territory(data["country"], active=data["active"], by=request.user)

    def update(self, request, territory, data, changed):
        services.set_territory(territory.country, active=data["active"], by=request.user)


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
class DealRequestAdmin(ServiceAdmin):
    """S6: an accepted startup asked staff for a deal; staff fulfil or decline it."""

    list_display = ["deal", "application", "status", "requested_on", "decided_by", "decided_on"]
    list_select_related = ["deal", "application", "decided_by"]
    list_filter = ["status", "deal"]
    actions = ["fulfil", "decline"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["application", "deal"]
        return ["application", "deal", "status", "requested_on", "decided_by", "decided_on", "note"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "application":
            kwargs["queryset"] = StartupApplication.objects.filter(
                status=StartupApplication.Status.APPROVED
            )
        if db_field.name == "deal":
            kwargs["queryset"] = PartnerDeal.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request, data):
        return services.request_deal(data["application"], deal=data["deal"], as_of=toolkit.today())

    def has_decide_permission(self, request):
        return request.user.has_perm("startups.change_dealrequest")

    def _decide(self, request, queryset, fulfil):
        run_for_each(
            self,
            request,
            queryset.select_related("deal", "application"),
            lambda deal_request: services.decide_deal_request(
                deal_request, by=request.user, fulfil=fulfil, as_of=toolkit.today()
            ),
            done="request(s) " + ("fulfilled" if fulfil else "declined"),
        )

    @admin.action(description="Mark fulfilled", permissions=["decide"])
    def fulfil(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description="Decline", permissions=["decide"])
    def decline(self, request, queryset):
        self._decide(request, queryset, False)


@admin.register(RenewalReview)
class RenewalReviewAdmin(ServiceAdmin):
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
                    as_of=toolkit.today(),
                )
                return f"Year two granted to {company}."
            services.decline_renewal(
                review, by=request.user, note=data["note"], as_of=toolkit.today()
            )
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


# --- What the header's search box finds here (billing/search.py) ------------------------------


def _describe_application(application):
    detail = format_html(
        "{} · submitted {} · {}",
        application.contact_email,
        day(application.submitted_on),
        status_badge(application, "status", APPLICATION_TONES),
    )
    return f"{application.company_name} (#{application.pk})", detail


search.register(
    StartupApplication,
    label="Startup applications",
    fields=("company_name", "contact_email"),
    exact=("company_name", "contact_email"),
    order_by=("-submitted_on", "-pk"),
    describe=_describe_application,
)
