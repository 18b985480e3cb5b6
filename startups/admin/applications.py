"""The review workflow (S1–S3, R2): applications with their checklist, the review page and its
decisions, and bulk decisions behind a confirmation. Pages call services."""

from copy import copy
from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html_join

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import (
    ServiceAdmin,
    bulk_action,
    immediate_action,
    money_column,
    service_form_page,
    shown_column,
    status_badge,
    with_note,
)
from billing.formatting import day, email_kind, money, period_text
from startups import services
from startups.forms import (
    ApproveForm,
    AssignForm,
    BulkApproveForm,
    FundingField,
    RejectForm,
    WithdrawForm,
    submit_answers,
)
from startups.models import StartupApplication

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
    """S2: the application's checks as chips, each with its reason on hover. A chip says pass or
    fail by its mark as well as its colour, and to a screen reader in words, with its reason
    (WCAG 1.4.1: colour alone tells nothing to a colour-blind reviewer)."""
    return format_html_join(
        " ",
        '<span class="check {}" title="{}">{}&nbsp;{}'
        '<span class="visually-hidden"> {}: {}</span></span>',
        (
            (
                "pass" if c["passed"] else "fail",
                c["reason"],
                c["id"],
                "✓" if c["passed"] else "✗",
                "passes" if c["passed"] else "fails",
                c["reason"],
            )
            for c in application.checks
        ),
    )


@admin.register(StartupApplication)
class StartupApplicationAdmin(ServiceAdmin):
    reason_on_change = True  # R4: linking a workspace or a partner says why
    # The Approve page's workspace gets the credit: its POST waits for the workspace's pages (a
    # closure's final invoice would otherwise draw credit its page never showed).
    workspace_of_post = "workspace"
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
    pages = (("<int:pk>/do/<str:action>/", "action_view", "startups_application_action"),)

    @admin.display(description="Company", ordering="company_name")
    def company(self, obj):
        about = f"#{obj.pk} · {obj.country.code}"
        if obj.partner_name:
            about += f" · via {obj.partner_name}"
        return with_note(obj.company_name, about)

    submitted = shown_column("submitted_on", day, description="Submitted")

    @admin.display(description="Status", ordering="status")
    def status_and_reviewer(self, obj):
        badge = status_badge(obj, "status", APPLICATION_TONES)
        if obj.assigned_to is None:
            return badge
        return with_note(badge, obj.assigned_to)

    # Not sortable: sorted by workspace, the list joined every application to its workspace,
    # if it has one, and sorted them all for one page (50,000: 124–136 ms of the database's
    # time; bench_sorts); no index gives the order of an optional link's column. The search
    # finds an application by its workspace's slug.
    @admin.display(description="Workspace")
    def workspace_slug(self, obj):
        return obj.workspace.slug if obj.workspace else "—"

    @admin.display(description="Checks")
    def checks_display(self, obj):
        return checklist(obj)

    funding_display = money_column("total_funding", description="Funding")

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

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "total_funding":  # S1: refused in the public form's words
            return FundingField()
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def create(self, request, data):
        """S1: staff entry goes through the service, so checks and email happen as for the
        public form."""
        return submit_answers(
            data,
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
            reason=data["change_reason"],
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        application = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if application is not None and application.is_open:
            # S2: evaluated again when a reviewer opens it, and stored through the service;
            # anyone else who may see it sees them evaluated now, and nothing is written.
            if request.user.has_perm(REVIEW):
                application = services.recheck_application(application, by=request.user)
            else:
                services.refresh_checks(application)
        if application is not None:
            extra_context["checks"] = application.checks
            if application.is_open:
                extra_context["contact_note"] = services.contact_note(application)
            extra_context["review_actions"] = self._review_actions(request, application)
            extra_context["applicant_emails"] = [
                (email, email_kind(email.kind)) for email in services.applicant_emails(application)
            ]
            extra_context["outbox_visible"] = request.user.has_perm("billing.view_outboundemail")
        return super().change_view(request, object_id, form_url, extra_context)

    def _review_actions(self, request, application):
        if not request.user.has_perm(REVIEW) or not application.is_open:
            return []
        names = ["approve", "reject", "withdraw", "assign"]
        if application.status == StartupApplication.Status.SUBMITTED:
            names.insert(0, "review")
        labels = {"review": "Start review", "assign": "Assign to a colleague"}
        return [
            (
                labels.get(name, name.capitalize()),
                reverse("admin:startups_application_action", args=[application.pk, name]),
            )
            for name in names
        ]

    def action_view(self, request, pk, action):
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied
        application = get_object_or_404(
            StartupApplication.objects.select_related("workspace"), pk=pk
        )
        if action not in ("approve", "reject", "withdraw", "review", "assign"):
            raise PermissionDenied
        shown, checked_against = application, ""
        if action == "approve":
            form = ApproveForm(
                request.POST or None, application=application, admin_site=self.admin_site
            )
            picked = (
                form.cleaned_data.get("workspace") if form.is_bound and form.is_valid() else None
            )
            if picked is not None and picked != application.workspace:
                # A refusal is read beside the checks and warning of the workspace picked, which
                # is linked only when the approval goes through (S2: E4, E5; S7).
                shown = copy(application)
                shown.workspace = picked
                services.refresh_checks(shown)
                checked_against = (
                    f"Checked against {picked.name} ({picked.slug}), picked below: it is linked "
                    "when the approval goes through."
                )
            credits_warning = services.credits_scope_warning(shown, toolkit.today())
            unconfirmed = form.is_bound and form.is_valid()
            unconfirmed = unconfirmed and not form.cleaned_data["credits_scope_confirmed"]
            # A failing check without an override is the service's refusal, named first.
            checks_pass = unconfirmed and (
                not shown.failing_checks or form.cleaned_data["override_reason"]
            )
            if credits_warning and checks_pass:
                # S7: the page's warning says why; the box itself says what is missing (the
                # service's refusal repeated the warning above it, in other words).
                form.add_error(
                    "credits_scope_confirmed",
                    "Tick this to approve: the credit reaches monthly Team invoices only.",
                )
        else:
            forms = {"reject": RejectForm, "withdraw": WithdrawForm, "assign": AssignForm}
            form = forms[action](request.POST or None) if action in forms else None
            credits_warning = ""
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
            checks=shown.checks,
            checked_against=checked_against,
            credits_warning=credits_warning,
            grants=self._grants(shown) if action == "approve" else "",
            closure_note=services.closure_note(shown) if action == "approve" else "",
            contact_note=services.contact_note(shown) if action == "approve" else "",
            # What approving grants, as the application stands (a workspace picked on the page
            # is the form's): a page opened before a partner was linked confirms nothing.
            shown=repr((application.status, application.workspace_id, self._grants(application)))
            if action == "approve"
            else "",
        )

    @staticmethod
    def _grants(application) -> str:
        """What the approve page says approving grants, and to whom the acceptance goes."""
        code, amount, valid_from, valid_until = services.year_one_terms(
            application, toolkit.today()
        )
        last_day = valid_until - timedelta(days=1)
        whom = "this workspace" if application.workspace_id else "the workspace you pick below"
        return " ".join(
            [
                f"Approving redeems {code} for {whom}: {money(amount)} of credit for year "
                f"one, valid from {day(valid_from)} to {day(last_day)}, and the acceptance goes "
                f"to {application.contact_email}.",
                *services.partner_notes(application, toolkit.today()),
            ]
        )

    def _closed(self, application, action) -> str:
        """Why the application's state rules `action` out, for the page to say instead of
        offering a form (S3: a decision is final)."""
        if not application.is_open:
            decided = f" on {day(application.decided_on)}" if application.decided_on else ""
            if application.status == StartupApplication.Status.WITHDRAWN:  # not a decision
                return (
                    f"Application #{application.pk} was withdrawn{decided}: there is nothing left "
                    "to decide."
                )
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
            services.withdraw_application(
                application, by=request.user, as_of=today, reason=data["reason"]
            )
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
                reason="picked on the approval page, to approve",
            )
        services.approve_application(
            application,
            by=request.user,
            note=data["note"],
            override_reason=data["override_reason"],
            credits_scope_confirmed=data.get("credits_scope_confirmed", False),
            as_of=today,
        )
        grant = application.workspace.credit_grants.get(year=1)
        return (
            f"{application.company_name} is accepted into the Startup Program: "
            f"{application.workspace.slug} has {money(grant.amount)} of credit, "
            f"{period_text(grant.valid_from, grant.valid_until)}."
        )

    # --- bulk decisions, each behind a confirmation page ---

    def has_review_permission(self, request):
        return request.user.has_perm(REVIEW)

    def describe_row(self, application):
        failing = f"; failing: {application.failing_checks}" if application.failing_checks else ""
        status = application.get_status_display().lower()
        return f"#{application.pk} {application.company_name} ({status}{failing})"

    assign_to_me = immediate_action(
        "Assign selected applications to me",
        lambda model_admin, request, application: services.assign_application(
            application, reviewer=request.user, by=request.user, as_of=toolkit.today()
        ),
        permission="review",
        done="application(s) assigned to you",
    )
    bulk_approve = bulk_action(
        "Approve selected applications…",
        lambda model_admin, request, application, data: model_admin._perform(
            request, application, "approve", {"note": "", "override_reason": "", **data}
        ),
        permission="review",
        title="Approve applications",
        done="application(s) approved",
        form_class=BulkApproveForm,
        intro="Each approval redeems the startup-program coupon, grants year one's credit "
        "and emails the applicant. An application with a failing check is refused: open "
        "it to approve with an override reason.",
        related=("workspace",),
    )
    bulk_reject = bulk_action(
        "Reject selected applications…",
        lambda model_admin, request, application, data: model_admin._perform(
            request, application, "reject", data
        ),
        permission="review",
        title="Reject applications",
        done="application(s) rejected",
        form_class=RejectForm,
        intro="Each applicant gets one email with the reason.",
    )
