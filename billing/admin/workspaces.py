"""The support console's workspace list and page (R1): filters by plan, interval and trial, the
status panel, and the pages that change plan, interval, card, usage or lock through services.
Also the plans (P1, P2) and the subscriptions behind them."""

from datetime import date, timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from billing import admin_toolkit as toolkit
from billing import selectors, services
from billing.admin.closures import ClosedFilter, ClosurePages
from billing.admin.forecast import ForecastPage
from billing.admin.timeline import TimelinePage
from billing.admin_toolkit import (
    ReadOnlyInline,
    ReasonForm,
    ServiceAdmin,
    badge,
    money_column,
    service_form_page,
    shown_column,
    with_note,
)
from billing.change_preview import change_effects
from billing.errors import BillingError
from billing.forecast import nothing_survives
from billing.formatting import billed, count, day, days_short, last_day, money, unit_price
from billing.formatting import month as month_name
from billing.forms import (
    ChangeIntervalForm,
    ChangePlanForm,
    PaymentMethodForm,
    PlanTermsForm,
    RecordUsageForm,
    RemovePaymentMethodForm,
    UnlockForm,
)
from billing.locks import STRIKE_WINDOW_MONTHS
from billing.models import (
    MonthClose,
    PaymentMethod,
    Plan,
    PlanTerms,
    Subscription,
    TaxExemption,
    Workspace,
)
from billing.months import add_months, month_start, next_month
from billing.regions import region_not_a_code
from billing.tax import region_codes_help

LOCK_TONES = {"unlocked": "good", "locked": "waiting", "locked_data_stopped": "bad"}
# What a plan or interval change is recorded as on its page's preview, which is rolled back.
PREVIEW_REASON = "Preview on the change's page (rolled back)"
# The status a workspace's action page shows on top (`workspace_status`'s keys).
SHOWN_STATUS = ("plan", "interval", "trialing", "trial_end", "term_end", "cancel_at_term_end")


def lock_badge(workspace):
    """The workspace's lock as a badge; a closed one (W1) is neither used nor billed any more."""
    if getattr(workspace, "closed_on", None) is not None:
        return badge("Closed", "quiet")
    return badge(workspace.get_lock_display(), LOCK_TONES.get(workspace.lock, ""))


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


class TrialingFilter(toolkit.YesNoFilter):
    title = "trialing"
    parameter_name = "trialing"
    labels = (("yes", "In a Team trial"), ("no", "Not trialing"))

    def condition(self):
        return Exists(_current_subscriptions(trial_outcome=Subscription.TrialOutcome.RUNNING))


class RegionNotACodeFilter(toolkit.YesNoFilter):
    """X1: the workspaces whose invoices wait for their region to be corrected (kept before it
    had to be one of the country's codes); the finance panel links here."""

    title = "business region"
    parameter_name = "region_not_a_code"
    labels = (("yes", "Needs a state or province code"), ("no", "Fine as kept"))

    def condition(self):
        return region_not_a_code()


class BusinessCountryFilter(toolkit.CountryInUseFilter):
    title = "business country"
    parameter_name = "business_country"


class PaymentMethodInline(ReadOnlyInline):
    """D3: every card on file and the days it was, newest first."""

    model = PaymentMethod
    fields = ["brand", "last4", "added_on", "removed_on"]
    verbose_name_plural = "payment methods (dated history)"


class TaxExemptionInline(ReadOnlyInline):
    """X4: the workspace's tax-exemption certificates, each opening its review page (walk 5:
    the workspace page did not list them)."""

    model = TaxExemption
    fields = ["region", "reason", "status", "valid_from", "valid_to", "submitted_on", "decided_on"]
    show_change_link = True
    verbose_name_plural = "tax exemption certificates"


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fields = [
        "plan",
        "interval",
        "started_on",
        "ended_on",
        "end_reason",
        "trial_days",
        "trial_outcome",
        "paid_from",
        "term",
        "cancel_at_term_end",
    ]

    # T3, K2: the days a trial and a term cover, both ends included, as the panel and the
    # invoices name them (walk 6: a "Term end" column read the first day after the term).
    @admin.display(description="Trial days")
    def trial_days(self, obj):
        if obj.trial_end is None:
            return "—"
        return days_short(obj.started_on, obj.trial_end)

    @admin.display(description="Annual term")
    def term(self, obj):
        if obj.term_end is None:
            return "—"
        return days_short(obj.term_start, obj.term_end)


@admin.register(Workspace)
class WorkspaceAdmin(ClosurePages, ForecastPage, TimelinePage, ServiceAdmin):
    workspace_of_row = "pk"
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
        RegionNotACodeFilter,
        "startup_member",
    ]
    search_fields = ["name", "slug", "billing_email"]
    list_per_page = 50
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
    inlines = [SubscriptionInline, PaymentMethodInline, TaxExemptionInline]
    change_form_template = "admin/billing/workspace/change_form.html"
    reason_on_change = True
    pages = (("<int:pk>/do/<str:action>/", "action_view", "billing_workspace_action"),)

    def get_queryset(self, request):
        return super().get_queryset(request).with_current_subscription()

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "business_region":
            # X1: from the table the service checks, so it names every country it checks.
            kwargs["help_text"] = (
                f"Where tax depends on it: {region_codes_help()}. Elsewhere optional, as the "
                "customer names it (tax there is country-wide)."
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "slug"]

    def has_change_permission(self, request, obj=None):
        # W1: a closed workspace's details accept no change, so its page offers none (no field
        # to type in, no Save that the service would refuse); reopening is its own page.
        if obj is not None and obj.closed_on is not None:
            return False
        return super().has_change_permission(request, obj)

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
            as_of=toolkit.today(),
        )

    # Plan and trial end are read from the current subscription, a subquery per row: sorted by
    # them, the list ran it for each of 100,000 workspaces (1.3 s a page). Not sortable: the
    # Plan, Team interval and Trialing filters narrow the list instead, and the subscription
    # list sorts trials by their end.
    @admin.display(description="Plan")
    def plan_display(self, obj):
        if obj.current_plan == Plan.Code.TEAM:
            return f"Team ({obj.current_interval})"
        return "Free"

    @admin.display(description="Trial ends")
    def trial_end_display(self, obj):
        if obj.current_trial_outcome == Subscription.TrialOutcome.RUNNING:
            return obj.current_trial_end
        return "—"

    @admin.display(description="Workspace", ordering="name")
    def name_and_slug(self, obj):
        return with_note(obj.name, obj.slug)

    @admin.display(description="Program", ordering="startup_member")
    def program_member(self, obj):
        """S4's member flag as a word: Django's yes/no icons read "True" and "False" aloud, and
        a red cross on every workspace outside the program looked like a fault."""
        return badge("Member", "good") if obj.startup_member else "—"

    @admin.display(description="Lock", ordering="lock")
    def lock_display(self, obj):
        return lock_badge(obj)

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
            # F1: a closed month is drawn over the Free limit when it earned a strike (not by
            # today's plan: Team months never count); a month not closed yet, when it is over
            # that month's allowance (P1: dated terms) and on Free every day of it so far, on
            # its way to one (a Team day in it, even one ended since, rules the strike out).
            free = Plan.objects.get(code=Plan.Code.FREE)
            team = Subscription.objects.filter(workspace=workspace, plan__code=Plan.Code.TEAM)
            tomorrow = today + timedelta(days=1)
            months = [m for m, _ in usage]
            struck = set(workspace.strikes.filter(month__in=months).values_list("month", flat=True))
            closed = set(
                MonthClose.objects.filter(month__in=months).values_list("month", flat=True)
            )
            extra_context = {
                **(extra_context or {}),
                "status": status,
                "term_next": self._term_next(workspace, status),
                "usage_bars": [
                    (
                        m,
                        mtus,
                        round(100 * mtus / peak),
                        m in struck
                        or (
                            m not in closed
                            and mtus > PlanTerms.objects.of(m, plan=free).included_mtus
                            and not team.overlapping(m, min(next_month(m), tomorrow)).exists()
                        ),
                    )
                    for m, mtus in usage
                ],
                "strikes": workspace.strikes.all()[:12],
                "lock_events": workspace.lock_events.select_related("by")[:10],
                "invoices": workspace.invoices.all()[:12],
                # R2: a reviewer sees the numbers; only who may open an invoice gets links.
                "can_view_invoices": request.user.has_perm("billing.view_invoice"),
                **self._invoice_preview(workspace, today),
                "forecast_url": self.may_forecast(request.user)
                and reverse("admin:billing_workspace_forecast", args=[workspace.pk]),
                "actions": self._workspace_actions(request, workspace),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _term_next(workspace, status) -> str:
        """K2, K4: what follows the annual term the panel shows, where agents look."""
        if not status["term_end"]:
            return ""
        if status["cancel_at_term_end"]:
            return "then Free (cancelled)"
        running = workspace.subscriptions.filter(ended_on=None, switch_to_monthly_at_term_end=True)
        return "then monthly" if running.exists() else "then it renews"

    @staticmethod
    def _invoice_preview(workspace, today) -> dict:
        """This month's invoice as the close would make it, or why it cannot be made (I6: an
        amount beyond what an invoice holds): the page support fixes the usage from opens."""
        try:
            return {
                "preview": services.preview_invoice(
                    workspace, month=month_start(today), as_of=today
                )
            }
        except BillingError as exc:
            return {"preview": None, "preview_problem": str(exc)}

    @staticmethod
    def _payment_method_title(workspace) -> str:
        """A card on file is replaced by the next one (T2): the action says which it does."""
        return "Replace payment method" if workspace.has_payment_method else "Add payment method"

    def _workspace_actions(self, request, workspace):
        """(label, url) of each page this person may open on this workspace. A closed one
        accepts no change but reopening (W1), so it offers nothing else but its emails."""
        user = request.user
        if workspace.closed_on is not None:
            return [
                *self.reopen_actions(request, workspace),
                *self._email_actions(request, workspace),
            ]
        allowed = {
            "plan": user.has_perm("billing.change_plan_workspace"),
            "interval": user.has_perm("billing.change_plan_workspace")
            and workspace.current_plan == Plan.Code.TEAM,
            "payment-method": user.has_perm("billing.change_workspace"),
            "remove-card": user.has_perm("billing.change_workspace")
            and workspace.has_payment_method,
            "usage": user.has_perm("billing.add_usage"),
            "unlock": user.has_perm("billing.unlock_workspace") and workspace.lock != "unlocked",
        }
        labels = {
            "plan": "Change plan",
            "interval": "Change billing interval",
            "payment-method": self._payment_method_title(workspace),
            "remove-card": "Remove payment method",
            "usage": "Record usage",
            "unlock": "Unlock",
        }
        return [
            *(
                (labels[name], reverse("admin:billing_workspace_action", args=[workspace.pk, name]))
                for name, ok in allowed.items()
                if ok
            ),
            *self.forecast_actions(request, workspace),  # FC1
            *self._email_actions(request, workspace),
            *self.close_actions(request, workspace),  # W1
        ]

    @staticmethod
    def _email_actions(request, workspace):
        """The email log of the workspace's billing addresses, today's and earlier ones ("what
        was the customer sent?"), for who may read the log."""
        if not request.user.has_perm("billing.view_outboundemail"):
            return []
        query = urlencode({"workspace": workspace.pk})
        return [("Emails", f"{reverse('admin:billing_outboundemail_changelist')}?{query}")]

    ACTIONS = {
        # name: (form, permission, title)
        "plan": (ChangePlanForm, "billing.change_plan_workspace", "Change plan"),
        "interval": (
            ChangeIntervalForm,
            "billing.change_plan_workspace",
            "Change billing interval",
        ),
        "payment-method": (PaymentMethodForm, "billing.change_workspace", "Add payment method"),
        "remove-card": (
            RemovePaymentMethodForm,
            "billing.change_workspace",
            "Remove payment method",
        ),
        "usage": (RecordUsageForm, "billing.add_usage", "Record usage"),
        "unlock": (UnlockForm, "billing.unlock_workspace", "Unlock workspace"),
    }

    def action_view(self, request, pk, action):
        if action not in self.ACTIONS:
            raise Http404(f"No page “{action}” for a workspace.")
        form_class, permission, title = self.ACTIONS[action]
        if not request.user.has_perm(permission):
            raise PermissionDenied
        workspace = get_object_or_404(Workspace, pk=pk)
        if action == "payment-method":
            title = self._payment_method_title(workspace)
        closed, way_on = "", None
        if action == "unlock" and workspace.lock == "unlocked":
            closed = f"{workspace.name} is not locked: there is nothing to unlock."
        status = selectors.workspace_status(workspace, as_of=toolkit.today())
        if action == "remove-card" and not status["has_payment_method"]:
            closed = f"{workspace.name} has no payment method on file."
        elif action == "remove-card" and workspace.closed_on is None:
            closed = self._removal_refused(workspace)
        on_free = status["plan"] == Plan.Code.FREE
        form = form_class(request.POST or None)
        if action == "plan" and on_free and not status["has_payment_method"]:
            # T2: said before a plan and a reason are picked, not after.
            closed = (
                f"{workspace.name} is on Free with no payment method on file: moving to Team "
                "needs one (T2). Add a payment method first; Free is already its plan."
            )
            way_on = ("payment-method", "Add a payment method")
        elif action == "plan" and on_free:  # Free is what it is on: only Team is a change
            choices = form.fields["plan"].choices
            form.fields["plan"].choices = [(v, label) for v, label in choices if v != "free"]
        if action == "interval" and on_free:
            closed = (
                f"{workspace.name} is on Free: only a Team subscription has a billing interval "
                "to change (K4)."
            )
            way_on = ("plan", "Change plan")
        if workspace.closed_on is not None:  # W1: nothing but reopening
            closed = f"{workspace.name} was closed on {day(workspace.closed_on)}: reopen it first."
            way_on = ("reopen", "Reopen workspace")
        choice_effects, effects = [], []
        if action in ("plan", "interval") and not closed:
            choice_effects = self._choice_effects(request, workspace, action, form)
        elif action in ("unlock", "remove-card") and not closed:
            effects = self._action_effects(workspace, action, status)
        return self.workspace_page(
            request,
            workspace,
            form=form,
            perform=lambda data: self._perform(request, workspace, action, data),
            title=f"{title}: {workspace.name}",
            closed=closed,
            status=status,
            # Confirmations, held to what they showed; usage and a card are entries.
            confirms=(choice_effects or effects)
            if action in ("plan", "interval", "unlock", "remove-card")
            else None,
            choice_effects=choice_effects,
            effects=effects,
            way_on_url=way_on and self._page_url(workspace, way_on[0]),
            way_on_label=way_on and way_on[1],
        )

    @staticmethod
    def _action_effects(workspace, action, status) -> list[str]:
        """What unlocking (F2, F5) or removing the card (T2, T4) does today, said before it is
        confirmed (walk 6: neither page said what followed)."""
        today = toolkit.today()
        if action == "unlock":
            current = month_start(today)
            strikes = workspace.strikes.filter(
                month__gte=add_months(current, 1 - STRIKE_WINDOW_MONTHS)
            ).count()
            level = ", with its data stopped" if strikes else ""
            return [
                f"{workspace.name} is unlocked from {day(today)} and its data flows.",
                f"Its strikes stay counted (F2): {count(strikes)} in the six months to "
                f"{month_name(current)}. Another month over the Free allowance locks it again "
                f"when that month closes{level}.",
            ]
        # Named, so a page opened before the card was replaced confirms nothing (`shown`).
        brand, last4 = workspace.card_brand or "Card", workspace.card_last4
        card = f"{brand} •••• {last4}" if last4 else brand
        effects = [f"The card on file ({card}) is removed from {day(today)}."]
        if status["trialing"]:
            effects.append(
                f"Its trial ends on {day(status['trial_end'])}: without a card on file that "
                "day it goes back to Free (T4)."
            )
        elif status["plan"] == Plan.Code.FREE:
            effects.append("Moving it to Team then needs a card on file again (T2).")
        return effects

    @staticmethod
    def _removal_refused(workspace) -> str:
        """T2: why removing the card today is refused, said before a reason is typed (the
        third walk: the page offered the form, and the refusal came after)."""
        with nothing_survives("this page"):
            try:
                services.remove_payment_method(
                    Workspace.objects.get(pk=workspace.pk), as_of=toolkit.today()
                )
            except BillingError as refusal:
                return str(refusal)
        return ""

    @staticmethod
    def _page_url(workspace, page: str) -> str:
        if page == "reopen":
            return reverse("admin:billing_workspace_reopen", args=[workspace.pk])
        return reverse("admin:billing_workspace_action", args=[workspace.pk, page])

    def _choice_effects(self, request, workspace, action, form) -> list[tuple[str, list[str]]]:
        """T1–T5, K1–K4: what each choice on the plan or interval page does today, as its
        service would do it (`change_preview`)."""
        today = toolkit.today()
        return [
            (
                label,
                change_effects(
                    workspace,
                    lambda ws, choice=choice: self._change(
                        ws, action, choice, by=request.user, as_of=today, reason=PREVIEW_REASON
                    ),
                    as_of=today,
                ),
            )
            for choice, label in form.fields[action].choices
        ]

    @staticmethod
    def _change(workspace, action, choice, *, by, as_of, reason) -> Subscription:
        """The service a choice of the plan or interval page calls."""
        if action == "interval":
            return services.change_interval(
                workspace, interval=choice, as_of=as_of, by=by, reason=reason
            )
        if choice == "free":
            return services.change_to_free(workspace, as_of=as_of, by=by, reason=reason)
        interval = choice.split(":")[1]
        return services.change_to_team(
            workspace, interval=interval, as_of=as_of, by=by, reason=reason
        )

    def workspace_page(
        self, request, workspace, *, template=None, status=None, confirms=None, **options
    ):
        """A page acting on one workspace (`toolkit.service_form_page`), its status on top
        (`status`: `selectors.workspace_status` today, when the caller read it already).

        `confirms`, on a page that confirms a change: what the page says it does (a list of
        sentences, a preview); a POST from the page showing another status or other effects
        runs nothing (`service_form_page`'s `shown`)."""
        status = status or selectors.workspace_status(workspace, as_of=toolkit.today())
        term_next = self._term_next(workspace, status)
        shown = ""
        if confirms is not None:
            state = [status[key] for key in SHOWN_STATUS], term_next, workspace.lock
            # The plan's last recorded change too: a page opened before a cancellation that a
            # colleague then withdrew shows the same status, and must still confirm nothing.
            changed = (
                Subscription.history.filter(workspace_id=workspace.pk)
                .order_by("-history_id")
                .values_list("history_id", flat=True)
                .first()
            )
            shown = repr((state, workspace.closed_on, confirms, changed))
        return service_form_page(
            self,
            request,
            workspace,
            template=template or "admin/billing/workspace/action.html",
            workspace=workspace,
            status=status,
            term_next=term_next,
            shown=shown,
            **options,
        )

    def _perform(self, request, workspace, action, data):
        today, by, reason = toolkit.today(), request.user, data.get("reason", "")
        if action in ("plan", "interval"):
            return self._perform_change(workspace, action, data[action], by, today, reason)
        if action == "payment-method":
            services.add_payment_method(
                workspace, as_of=today, brand=data["brand"], last4=data["last4"]
            )
            card = f"{data['brand']} •••• {data['last4']}"
            return f"Payment method recorded for {workspace.name}: {card}."
        if action == "usage":
            month, mtus, name = data["month"], data["mtus"], workspace.name
            # U1: a figure replaces the month's; naming the one replaced shows a slip of month.
            on_file = services.record_usage(
                workspace, month=month, mtus=mtus, as_of=today, by=by, reason=reason
            ).figure_before
            figure = f"{count(mtus)} MTUs"
            if on_file == mtus:
                return f"{figure} for {name}, {month_name(month)}: already on file."
            replaced = "" if on_file is None else f", replacing {count(on_file)}"
            return f"{figure} recorded for {name}, {month_name(month)}{replaced}."
        if action == "remove-card":
            services.remove_payment_method(workspace, as_of=today, by=by, reason=reason)
            return f"Payment method removed from {workspace.name}: {reason.rstrip('.')}."
        services.unlock_workspace(workspace, by=by, reason=reason, as_of=today)
        return f"{workspace.name} unlocked: {reason}"

    def _perform_change(self, workspace, action, choice, by, today, reason) -> str:
        """A plan or interval change, and a message that says what the service did, which is
        not always what was picked (an annual term runs to its end, K2, K4; a trial only notes
        its interval), with the invoices it issued and the lock it put back (F7)."""
        name = workspace.name
        running = workspace.subscriptions.filter(ended_on=None)
        before = running.values_list("pk", flat=True).first()
        issued_before = set(workspace.invoices.values_list("pk", flat=True))
        lock_before = Workspace.objects.values_list("lock", flat=True).get(pk=workspace.pk)
        sub = self._change(workspace, action, choice, by=by, as_of=today, reason=reason)
        term_to = last_day(sub.term_end)
        if action == "interval":
            interval = choice
            if sub.trial_outcome == Subscription.TrialOutcome.RUNNING:
                done = f"{name}'s trial will continue as Team, {billed(interval)}"
            elif sub.switch_to_monthly_at_term_end:
                done = f"{name}'s annual term runs to {term_to}, then monthly billing"
            elif sub.pk == before:  # the move to monthly withdrawn
                done = f"{name}'s annual term runs to {term_to}, then it renews"
            else:
                done = f"{name} is now on Team, {billed(interval)}"
        elif choice == "free":
            done = (
                f"{name}'s annual term runs to {term_to}, then Free"
                if sub.is_team
                else f"{name} is on Free"
            )
        elif sub.pk == before:  # an annual term's cancellation withdrawn
            then = "monthly" if sub.switch_to_monthly_at_term_end else "it renews"
            done = f"{name}'s cancellation withdrawn: annual term to {term_to}, then {then}"
        elif sub.trial_outcome == Subscription.TrialOutcome.RUNNING:
            done = (
                f"{name} started a Team trial ending {day(sub.trial_end)}, then "
                f"{billed(sub.interval)}"
            )
        else:
            done = f"{name} is now on Team, {billed(sub.interval)}, paid from {day(sub.paid_from)}"
        issued = workspace.invoices.exclude(pk__in=issued_before).order_by("issue_date", "pk")
        notes = [
            f" Issued {invoice.get_kind_display().lower()} invoice {invoice.number}, "
            f"{money(invoice.total)}."
            for invoice in issued
        ]
        workspace.refresh_from_db(fields=["lock"])
        if workspace.lock != lock_before:  # F7
            notes.append(f" Its lock is now “{workspace.get_lock_display()}”.")
        return f"{done}: {reason.rstrip('.')}." + "".join(notes)


# Withdrawing terms is changing the plan (R3: finance's, as the plan's page is).
WITHDRAWS_TERMS = "billing.change_plan"


def may_withdraw(request, terms) -> bool:
    """The person may withdraw `terms` and the service would take it (a button to show)."""
    return (
        terms is not None
        and request.user.has_perm(WITHDRAWS_TERMS)
        and not services.withdrawal_refusal(terms)
    )


def terms_start(terms) -> str:
    """The day a plan's terms apply from, as the pages write a day: "1 Feb 2027", or "the
    start"."""
    return "the start" if terms.effective_on == date.min else day(terms.effective_on)


def terms_summary(terms) -> str:
    return (
        f"{money(terms.monthly_price)} a month, {money(terms.annual_price)} a year, "
        f"{count(terms.included_mtus)} MTUs included a month, overage {overage_rate(terms)} "
        f"per MTU, {terms.trial_days} trial days"
    )


@admin.register(Plan)
class PlanAdmin(ServiceAdmin):
    """P1, P2: the plans' prices and allowances, changed by finance from a day on through
    `update_plan`; the list shows the terms in force today, the page every dated set."""

    form = PlanTermsForm
    change_form_template = "admin/billing/plan/change_form.html"
    list_display = [
        "name",
        "code",
        "monthly_price_display",
        "annual_price_display",
        "included_mtus_display",
        "overage_rate_display",
        "next_terms",
    ]
    readonly_fields = ["code", "terms_by_date"]
    reason_on_change = True

    def get_fields(self, request, obj=None):
        if not self.has_change_permission(request, obj):  # the terms are in the table
            return ["name", "code", "terms_by_date"]
        return ["name", "code", *services.DATED_TERMS, "effective_on", "terms_by_date"]

    def _terms_today(self, plan):
        if not hasattr(plan, "terms_today"):
            plan.terms_today = PlanTerms.objects.of(toolkit.today(), plan=plan)
        return plan.terms_today

    @admin.display(description="Monthly price")
    def monthly_price_display(self, obj):
        return money(self._terms_today(obj).monthly_price)

    @admin.display(description="Annual price")
    def annual_price_display(self, obj):
        return money(self._terms_today(obj).annual_price)

    @admin.display(description="MTUs included a month")
    def included_mtus_display(self, obj):
        return count(self._terms_today(obj).included_mtus)

    @admin.display(description="Overage per MTU")
    def overage_rate_display(self, obj):
        return overage_rate(self._terms_today(obj))

    @admin.display(description="Next terms")
    def next_terms(self, obj):
        upcoming = obj.terms.filter(effective_on__gt=toolkit.today()).order_by("effective_on")
        return ", ".join(f"from {day(terms.effective_on)}" for terms in upcoming) or "none"

    @admin.display(description="Terms by date")
    def terms_by_date(self, obj):
        return format_html(
            "<table><tr><th>From</th><th>Monthly</th><th>Annual</th><th>Included MTUs</th>"
            "<th>Overage per MTU</th><th>Trial days</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        terms_start(terms),
                        money(terms.monthly_price),
                        money(terms.annual_price),
                        count(terms.included_mtus),
                        overage_rate(terms),
                        terms.trial_days,
                    )
                    for terms in obj.terms.order_by("effective_on")
                ),
            ),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        plan = self.get_object(request, object_id)
        if plan is not None:
            # Only a plan's latest terms can be withdrawn (withdrawal_refusal): one button.
            latest = plan.terms.order_by("effective_on").last()
            extra_context = {
                **(extra_context or {}),
                "withdrawable": latest if may_withdraw(request, latest) else None,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def update(self, request, plan, data, changed):
        services.update_plan(
            plan,
            by=request.user,
            reason=data["change_reason"],
            effective_on=data["effective_on"],
            **{field: data[field] for field in changed if field in services.PLAN_TERMS},
        )


@admin.register(PlanTerms)
class PlanTermsAdmin(ServiceAdmin):
    """P1, P2, R4: every dated set of a plan's terms, with the history of who changed it, when
    and why. Changed on the plan's page only (`update_plan`); terms not in force yet are
    withdrawn on a page of their own, by those who change plans (`withdraw_plan_terms`)."""

    change_form_template = "admin/billing/planterms/change_form.html"
    pages = (("<int:pk>/withdraw/", "withdraw_view", "billing_planterms_withdraw"),)

    list_display = [
        "plan",
        "starts",
        "monthly_price_display",
        "annual_price_display",
        "included_mtus_display",
        "overage_rate_display",
        "trial_days",
    ]
    list_filter = ["plan"]
    list_select_related = ["plan"]
    # The page shows the list's columns, as people read them: the first terms from "the
    # start" (not 1 Jan 0001, their stored day), money with its currency, counts grouped.
    fields = [name for name in list_display if name != "plan"]
    readonly_fields = fields

    monthly_price_display = money_column("monthly_price", description="Monthly price")
    annual_price_display = money_column("annual_price", description="Annual price")
    included_mtus_display = shown_column("included_mtus", count, description="MTUs a month")

    @admin.display(description="From", ordering="effective_on")
    def starts(self, obj):
        return terms_start(obj)

    @admin.display(description="Overage per MTU", ordering="overage_rate")
    def overage_rate_display(self, obj):
        return overage_rate(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        terms = self.get_object(request, object_id)
        if terms is not None:
            extra_context = {**(extra_context or {}), "withdrawable": may_withdraw(request, terms)}
        return super().change_view(request, object_id, form_url, extra_context)

    def withdraw_view(self, request, pk):
        """The why asked for, then `withdraw_plan_terms`; terms it would refuse (in force, or
        read already) say why instead of asking."""
        if not request.user.has_perm(WITHDRAWS_TERMS):
            raise PermissionDenied
        terms = get_object_or_404(PlanTerms.objects.select_related("plan"), pk=pk)
        plan = terms.plan
        # The terms that apply instead (none before the terms from the start, never withdrawn).
        before = plan.terms.filter(effective_on__lt=terms.effective_on).order_by("effective_on")
        before = before.last()

        def perform(data):
            services.withdraw_plan_terms(terms, by=request.user, reason=data["reason"])
            return f"{terms} withdrawn: {data['reason']}", plan

        return service_form_page(
            self,
            request,
            terms,
            form=ReasonForm(request.POST or None),
            perform=perform,
            template="admin/billing/planterms/withdraw.html",
            title=f"Withdraw {terms}",
            back_url=reverse("admin:billing_plan_change", args=[plan.pk]),
            closed=services.withdrawal_refusal(terms),
            submit_label="Yes, withdraw them",
            terms=terms,
            summary=terms_summary(terms),
            before=before,
            before_summary=terms_summary(before) if before else "",
        )


def overage_rate(terms) -> str:
    return unit_price(terms.overage_rate) if terms.bills_overage else "none"


@admin.register(Subscription)
class SubscriptionAdmin(ServiceAdmin):
    list_display = [
        "workspace",
        "plan_and_interval",
        "started_on",
        "ended",
        "trial",
        "term_end",
    ]
    list_select_related = ["workspace", "plan"]
    list_filter = ["plan", "interval", "trial_outcome", "end_reason", "ended_on"]
    search_fields = ["workspace__slug", "workspace__name"]

    # Not sortable: sorted by its end, the list sorted every subscription for one page
    # (83,000: 87–117 ms of the database's time; bench_sorts), the current ones (no end) first
    # on PostgreSQL. The Ended on and End reason filters find the subscriptions that ended
    # lately and why. Sorted by Trial or Term end (the trials or annual terms that end soonest,
    # with the Trial outcome or Interval filter), the list reads an index of its own.
    ended = toolkit.unsorted_column("ended_on", description="Ended on")

    # Two facts a column, so the list fits 1,366 px beside the menu and the filters. Not
    # sortable: sorted by plan, the list joined every subscription to its plan and sorted them
    # all, a few plans holding them all (75,000: 0.20–0.37 s a page); the Plan and Interval
    # filters narrow the list instead.
    @admin.display(description="Plan")
    def plan_and_interval(self, obj):
        """As the workspace pages write it: "Team, billed monthly"; Free has no interval."""
        return f"{obj.plan.name}, {billed(obj.interval)}" if obj.is_team else obj.plan.name

    @admin.display(description="Trial", ordering="trial_end")
    def trial(self, obj):
        if obj.trial_end is None:
            return "—"
        return with_note(obj.get_trial_outcome_display(), f"ends {day(obj.trial_end)}")
