"""The workspace page's forecast (SPEC FC1), mixed into `WorkspaceAdmin`: it runs
`billing.forecast.forecast_invoices` for today's state and, side by side, under one proposed
change; nothing it does is kept."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing import admin_toolkit as toolkit
from billing import forecast, selectors, services
from billing.admin_toolkit import admin_page
from billing.errors import BillingError, PaymentMethodRequired
from billing.forms import ForecastForm
from billing.models import Plan, Subscription, Workspace

# What a forecast's proposed change is recorded as, inside the transaction it rolls back.
FORECAST_REASON = "Forecast only (rolled back)"


class ForecastPage:
    """FC1's forecast page for `WorkspaceAdmin`."""

    forecast_form_class = ForecastForm

    def get_pages(self):
        return [
            *super().get_pages(),
            ("<int:pk>/forecast/", "forecast_view", "billing_workspace_forecast"),
        ]

    @staticmethod
    def may_forecast(user) -> bool:
        return user.has_perm("billing.view_workspace") and user.has_perm("billing.view_invoice")

    def forecast_actions(self, request, workspace):
        if not self.may_forecast(request.user):
            return []
        return [("Forecast", reverse("admin:billing_workspace_forecast", args=[workspace.pk]))]

    def forecast_form(self, request, workspace, today):
        """The page's form; a subclass fits its own proposed changes to the workspace (the
        coupons app: the coupons it can receive)."""
        return self.forecast_form_class(request.GET or {"months": 12, "mtus": "last"})

    def proposed_change(self, request, workspace, data):
        """FC1: the change to compare, as `(label, change(workspace, as_of))` calling its
        service, or None. Subclasses add their own (the coupons app: a coupon)."""
        choice = data.get("change") or ""
        by = request.user
        if choice in ("team:monthly", "team:annual"):
            interval = choice.split(":")[1]

            def change(ws, as_of):
                # A cancelled annual term stays on Team only by a plan change (K2, K4).
                on_team = Subscription.objects.filter(
                    workspace=ws, ended_on=None, plan__code=Plan.Code.TEAM, cancel_at_term_end=False
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
        form = self.forecast_form(request, workspace, today)
        context = {
            "workspace": workspace,
            "form": form,
            "today": today,
            "status": selectors.workspace_status(workspace, as_of=today),
        }
        if form.is_valid():
            context.update(self._forecast(request, workspace, form, today))
        return admin_page(
            self,
            request,
            "admin/billing/workspace/forecast.html",
            title=f"Forecast: {workspace.name}",
            **context,
        )

    def _proposal(self, request, workspace, data, today):
        """The proposed change's label and the changes to apply, in order: a card first when
        the form assumes one and none is on file today (a Free customer without one asks what
        Team would cost: the card goes through its service and is rolled back with the rest)."""
        change = self.proposed_change(request, workspace, data)
        label, changes = ("", []) if change is None else (change[0], [change[1]])
        if data.get("assume_card") and not workspace.payment_method_on(today):
            label = f"{label}, a card added today" if label else "A card added today"
            changes = [_add_a_card, *changes]
        return label, changes

    def _forecast(self, request, workspace, form, today):
        """The baseline and, when a change is proposed, the forecast under it, row by row."""
        months = form.cleaned_data["months"]
        context = {}
        try:
            # The assumption read once: both forecasts take the figure it comes to today.
            mtus = forecast.assumed_mtus(workspace, as_of=today, mtus=form.mtus_assumption())
            context["assumed_mtus"] = mtus
            baseline = forecast.forecast_invoices(workspace, as_of=today, months=months, mtus=mtus)
        except BillingError as exc:
            return {**context, "error": str(exc)}
        proposed = None
        label, changes = self._proposal(request, workspace, form.cleaned_data, today)
        if changes:
            context["change_label"] = label
            try:
                proposed = forecast.forecast_invoices(
                    workspace, as_of=today, months=months, mtus=mtus, changes=changes
                )
            except BillingError as exc:
                context["change_error"] = str(exc)
                context["card_needed"] = isinstance(exc, PaymentMethodRequired)
        rows, totals = forecast.side_by_side(baseline, proposed)
        return {**context, "rows": rows, "totals": totals, "compared": proposed is not None}


def _add_a_card(workspace, as_of):
    """The card *Assume a card is added today* stands for, recorded as support would record it
    (T2, T4 read it); the forecast rolls it back with everything else."""
    services.add_payment_method(workspace, as_of=as_of)
