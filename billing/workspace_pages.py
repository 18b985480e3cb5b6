"""The workspace page's closure and forecast pages (SPEC W1, FC1), mixed into `WorkspaceAdmin`.

Closing shows what will happen before anything does (the final invoice as the close would price
it, the term or trial, the discount, the credit) and asks why (R4); reopening asks why too. The
forecast page runs `billing.forecast.forecast_invoices` for today's state and, side by side,
under one proposed change; nothing it does is kept.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing import admin_toolkit as toolkit
from billing import forecast, selectors, services
from billing.admin_toolkit import ReasonForm, ServiceAdmin, service_form_page
from billing.closures import closure_preview
from billing.errors import BillingError
from billing.forms import CloseWorkspaceForm, ForecastForm
from billing.models import Plan, Subscription, Workspace, WorkspaceClosure

# What a forecast's proposed change is recorded as, inside the transaction it rolls back.
FORECAST_REASON = "Forecast only (rolled back)"


class ClosedFilter(admin.SimpleListFilter):
    """W1: closed workspaces are a list filter."""

    title = "closed"
    parameter_name = "closed"

    def lookups(self, request, model_admin):
        return [("no", "Open"), ("yes", "Closed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(closed_on__isnull=False)
        if self.value() == "no":
            return queryset.filter(closed_on=None)
        return queryset


class ClosureAndForecastPages:
    """W1's close and reopen pages and FC1's forecast page for `WorkspaceAdmin`."""

    forecast_form_class = ForecastForm

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/close/", view(self.close_view), name="billing_workspace_close"),
            path("<int:pk>/reopen/", view(self.reopen_view), name="billing_workspace_reopen"),
            path("<int:pk>/forecast/", view(self.forecast_view), name="billing_workspace_forecast"),
            *super().get_urls(),
        ]

    @staticmethod
    def may_forecast(user) -> bool:
        return user.has_perm("billing.view_workspace") and user.has_perm("billing.view_invoice")

    def closure_actions(self, request, workspace, actions):
        """The workspace page's actions with W1's and FC1's: a closed workspace accepts no
        change but reopening, so it offers nothing else."""
        user = request.user
        if workspace.closed_on is not None:
            if not user.has_perm("billing.close_workspace"):
                return []
            return [
                ("Reopen workspace", reverse("admin:billing_workspace_reopen", args=[workspace.pk]))
            ]
        actions = list(actions)
        if self.may_forecast(user):
            actions.append(
                ("Forecast", reverse("admin:billing_workspace_forecast", args=[workspace.pk]))
            )
        if user.has_perm("billing.close_workspace"):
            actions.append(
                ("Close workspace", reverse("admin:billing_workspace_close", args=[workspace.pk]))
            )
        return actions

    def close_view(self, request, pk):
        """W1: the confirmation page says what will happen, then closes with a reason."""
        if not request.user.has_perm("billing.close_workspace"):
            raise PermissionDenied
        workspace = get_object_or_404(Workspace, pk=pk)
        today = toolkit.today()
        closed = ""
        if workspace.closed_on is not None:
            closed = f"{workspace.name} is already closed (since {workspace.closed_on})."

        def perform(data):
            services.close_workspace(workspace, by=request.user, reason=data["reason"], as_of=today)
            return f"{workspace.name} closed: {data['reason']}"

        return service_form_page(
            self,
            request,
            workspace,
            form=CloseWorkspaceForm(request.POST or None),
            perform=perform,
            template="admin/billing/workspace/close.html",
            title=f"Close workspace: {workspace.name}",
            submit_label="Close workspace",
            closed=closed,
            workspace=workspace,
            status=selectors.workspace_status(workspace, as_of=today),
            preview=None if closed else closure_preview(workspace, as_of=today),
        )

    def reopen_view(self, request, pk):
        """W1: support reopens a closed workspace, with a reason: Free, unlocked."""
        if not request.user.has_perm("billing.close_workspace"):
            raise PermissionDenied
        workspace = get_object_or_404(Workspace, pk=pk)
        today = toolkit.today()
        closed = "" if workspace.closed_on else f"{workspace.name} is not closed."

        def perform(data):
            services.reopen_workspace(
                workspace, by=request.user, reason=data["reason"], as_of=today
            )
            return f"{workspace.name} reopened on Free: {data['reason']}"

        return service_form_page(
            self,
            request,
            workspace,
            form=ReasonForm(request.POST or None),
            perform=perform,
            template="admin/billing/workspace/action.html",
            title=f"Reopen workspace: {workspace.name}",
            submit_label="Reopen workspace",
            closed=closed,
            intro="It comes back on Free, unlocked, with its data flowing; a move to Team is "
            "paid at once if it ever had Team (no second trial).",
            workspace=workspace,
            status=selectors.workspace_status(workspace, as_of=today),
        )

    def proposed_change(self, request, workspace, data):
        """FC1: the change to compare, as `(label, change(workspace, as_of))` calling its
        service, or None. Subclasses add their own (the coupons app: a coupon)."""
        choice = data.get("change") or ""
        by = request.user
        if choice in ("team:monthly", "team:annual"):
            interval = choice.split(":")[1]

            def change(ws, as_of):
                on_team = Subscription.objects.filter(
                    workspace=ws, ended_on=None, plan__code=Plan.Code.TEAM
                ).exists()
                if on_team:
                    services.change_interval(
                        ws, interval=interval, as_of=as_of, by=by, reason=FORECAST_REASON
                    )
                else:
                    services.change_to_team(
                        ws, interval=interval, as_of=as_of, by=by, reason=FORECAST_REASON
                    )

        elif choice == "free":

            def change(ws, as_of):
                services.change_to_free(ws, as_of=as_of, by=by, reason=FORECAST_REASON)

        elif choice == "close":

            def change(ws, as_of):
                services.close_workspace(ws, by=by, reason=FORECAST_REASON, as_of=as_of)

        else:
            return None
        return dict(ForecastForm.CHANGES)[choice], change

    def forecast_view(self, request, pk):
        """FC1: the next 1–12 months' invoices, today's state beside a proposed change."""
        if not self.may_forecast(request.user):
            raise PermissionDenied
        workspace = get_object_or_404(Workspace, pk=pk)
        today = toolkit.today()
        form = self.forecast_form_class(request.GET or {"months": 12, "mtus": "last"})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Forecast: {workspace.name}",
            "opts": self.model._meta,
            "workspace": workspace,
            "form": form,
            "today": today,
            "status": selectors.workspace_status(workspace, as_of=today),
        }
        if form.is_valid():
            mtus = form.mtus_assumption()
            months = form.cleaned_data["months"]
            try:
                context["assumed_mtus"] = forecast.assumed_mtus(workspace, as_of=today, mtus=mtus)
                baseline = forecast.forecast_invoices(
                    workspace, as_of=today, months=months, mtus=mtus
                )
            except BillingError as exc:
                context["error"] = str(exc)
            else:
                proposed = None
                change = self.proposed_change(request, workspace, form.cleaned_data)
                if change is not None:
                    context["change_label"] = change[0]
                    try:
                        proposed = forecast.forecast_invoices(
                            workspace, as_of=today, months=months, mtus=mtus, changes=[change[1]]
                        )
                    except BillingError as exc:
                        context["change_error"] = str(exc)
                rows, totals = forecast.side_by_side(baseline, proposed)
                context.update(rows=rows, totals=totals, compared=proposed is not None)
        return TemplateResponse(request, "admin/billing/workspace/forecast.html", context)


@admin.register(WorkspaceClosure)
class WorkspaceClosureAdmin(ServiceAdmin):
    """W1: every closure and reopening, who and why; written only by the services."""

    list_display = [
        "workspace",
        "closed_on",
        "reason",
        "closed_by",
        "final_invoice",
        "reopened_on",
        "reopen_reason",
        "reopened_by",
    ]
    list_select_related = ["workspace", "closed_by", "reopened_by", "final_invoice"]
    list_filter = ["closed_on", "reopened_on"]
    search_fields = ["workspace__slug", "workspace__name", "reason"]
