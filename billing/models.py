"""Workspaces, plans, subscriptions, usage and Free-plan locks (SPEC P, U, T, F).

Subscriptions are date ranges: every question the month close asks (how many paid days, was any
day a trial day, was the month billed by a final invoice) is answered from `started_on`,
`paid_from` and `ended_on` alone, so running the billing clock once or day by day gives the same
result.
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length, Lower
from django_countries.fields import CountryField
from simple_history.models import HistoricalRecords

from billing.documents import EXTENSIONS, PrivateUploadTo
from billing.formatting import billed, day, import_outcome
from billing.formatting import rate as rate_text
from billing.regions import region_not_a_code

# What every app's models share (DESIGN: what the apps share lives once, in billing).


class _HistoryReadByRow(HistoricalRecords):
    """A history only ever read one row's versions at a time (its pages look them up by the
    row's id): it keeps that one index, and none on the row's links, when or who. Each index
    costs a table written a million rows at a time on every row (bench/usage_import.py). A
    deleted user's rows are then found by a scan, which only deleting a user costs."""

    def copy_fields(self, model):
        fields = super().copy_fields(model)
        for name, field in fields.items():
            field.db_index = name == model._meta.pk.name
        return fields

    def get_extra_fields(self, model, fields):
        extra = super().get_extra_fields(model, fields)
        extra["history_date"].db_index = False
        extra["history_user"].db_index = False
        return extra


def history_with_reasons(*, read_by_row: bool = False, **options) -> HistoricalRecords:
    """R4: a model's history, each row with who changed it and why. A typed reason can be long,
    so its column is text (migration 0008). Its rows are numbered as big integers: an import
    writes a row per changed figure, and running totals change every workspace's month at
    each report, so a million workspaces would use up an integer's 2,147,483,647 within years.
    `read_by_row`: indexed by the row's id alone."""
    kind = _HistoryReadByRow if read_by_row else HistoricalRecords
    return kind(
        history_change_reason_field=models.TextField(null=True),
        history_id_field=models.BigAutoField(primary_key=True),
        **options,
    )


def optional_link(to, *, related_name: str, **options) -> models.ForeignKey:
    """A link a row may have or not (a partner, a follow-up, a final invoice, who acted).
    PROTECT: what a row points at is never deleted from under it."""
    return models.ForeignKey(
        to, null=True, blank=True, on_delete=models.PROTECT, related_name=related_name, **options
    )


def acting_user(**options) -> models.ForeignKey:
    """The user who acted on a row (created, reviewed, decided, closed it), empty when the system
    did. PROTECT: an account that acted cannot be deleted (deactivate it instead), so who acted
    stays known; no reverse accessor, as nothing asks a user for the rows they touched."""
    return optional_link(settings.AUTH_USER_MODEL, related_name="+", **options)


def one_of(choices: type[models.TextChoices], *, field: str = "status", name: str):
    """STYLE: a choice field is backed by a constraint, so a value written around the model
    (a bulk update, raw SQL) is refused by the database too."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


def in_force_on(day: date, start: str, end: str) -> Q:
    """D3: rows of dated history in force on `day`: from `start` (included) until `end`
    (excluded), an empty `end` being still in force."""
    return Q(**{f"{start}__lte": day}) & (Q(**{end: None}) | Q(**{f"{end}__gt": day}))


def ends_after_start(start: str, end: str, *, name: str, **options) -> models.CheckConstraint:
    """A dated span never ends before it starts (it may end the day it starts); an empty `end`
    is still open."""
    return models.CheckConstraint(
        condition=Q(**{end: None}) | Q(**{f"{end}__gte": F(start)}), name=name, **options
    )


def dated_decision(
    *, undecided: str, name: str, status_field: str = "status", date_field: str = "decided_on"
):
    """A decision has its date, and only a decision has one (K3, S6, CR3, C6)."""
    return models.CheckConstraint(
        condition=Q(**{status_field: undecided, f"{date_field}__isnull": True})
        | (~Q(**{status_field: undecided}) & Q(**{f"{date_field}__isnull": False})),
        name=name,
    )


class Interval(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    ANNUAL = "annual", "Annual"


class Plan(models.Model):
    """A price list entry (P1, P2), seeded by a data migration. Its terms are dated rows
    (`PlanTerms`): finance changes them from a day on, and every month is billed at the terms
    in force then, whenever the clock runs it (D4)."""

    class Code(models.TextChoices):
        FREE = "free", "Free"
        TEAM = "team", "Team"

    code = models.CharField(max_length=20, choices=Code.choices, unique=True)
    name = models.CharField(max_length=100)

    history = history_with_reasons()

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.name


class PlanTermsQuerySet(models.QuerySet):
    def on(self, day: date) -> dict[int, "PlanTerms"]:
        """Each plan's terms in force on `day`, by plan id."""
        in_force = {}
        for terms in self.filter(effective_on__lte=day).order_by("plan_id", "effective_on"):
            in_force[terms.plan_id] = terms
        return in_force

    def of(self, day: date, **plan) -> "PlanTerms":
        """The terms in force on `day` of the plan `plan` names (`plan_id=` or `plan__code=`)."""
        return self.filter(effective_on__lte=day, **plan).latest("effective_on")


class PlanTerms(models.Model):
    """A plan's terms from `effective_on` until its next terms start (P1, P2, D3). What reads
    them for a day reads the row in force on it: a month's charges and the Free allowance its
    strikes are measured against, the terms of the month's first day; an annual term's price,
    those of its first day; a trial's length, those of the day the move to Team is dated. The
    first terms of a plan start on `date.min` ("from the start")."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="terms")
    effective_on = models.DateField()
    monthly_price = models.DecimalField(max_digits=10, decimal_places=2)
    annual_price = models.DecimalField(max_digits=10, decimal_places=2)
    included_mtus = models.PositiveBigIntegerField(
        "included MTUs", help_text="Monthly tracked users included a month."
    )
    overage_rate = models.DecimalField(
        max_digits=10, decimal_places=4, help_text="Price per MTU above the included amount."
    )
    bills_overage = models.BooleanField(default=False)
    seats = models.PositiveIntegerField(null=True, blank=True)
    warehouse_syncs_per_day = models.PositiveIntegerField(null=True, blank=True)
    trial_days = models.PositiveIntegerField(default=0)

    history = history_with_reasons()
    objects = PlanTermsQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "plan terms"
        ordering = ["plan", "effective_on"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "effective_on"], name="one_plan_terms_a_day"),
            models.CheckConstraint(
                condition=Q(monthly_price__gte=0) & Q(annual_price__gte=0) & Q(overage_rate__gte=0),
                name="plan_terms_prices_not_negative",
            ),
        ]

    def __str__(self):
        start = "the start" if self.effective_on == date.min else day(self.effective_on)
        return f"{self.plan} terms from {start}"


class Lock(models.TextChoices):
    UNLOCKED = "unlocked", "Unlocked"
    LOCKED = "locked", "Locked (data still flows)"
    LOCKED_DATA_STOPPED = "locked_data_stopped", "Locked, data stopped"


LOCK_SEVERITY = {Lock.UNLOCKED: 0, Lock.LOCKED: 1, Lock.LOCKED_DATA_STOPPED: 2}


class WorkspaceQuerySet(models.QuerySet):
    def for_change(self, workspace: "Workspace") -> "Workspace":
        """The workspace re-read under a row lock: the start of every write to one workspace.
        FOR NO KEY UPDATE: writers of one workspace take turns, while rows that merely point at
        it (a month close's invoices, history) are inserted without waiting (FC1: a forecast's
        open transaction never holds up a close)."""
        return self.select_for_update(no_key=True).get(pk=workspace.pk)

    def with_current_subscription(self):
        # One row at most (one_current_subscription): nothing to sort for each workspace.
        current = Subscription.objects.filter(
            workspace=models.OuterRef("pk"), ended_on=None
        ).order_by()
        return self.annotate(
            current_plan=models.Subquery(current.values("plan__code")[:1]),
            current_interval=models.Subquery(current.values("interval")[:1]),
            current_trial_end=models.Subquery(current.values("trial_end")[:1]),
            current_trial_outcome=models.Subquery(current.values("trial_outcome")[:1]),
        )


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    # X1: tax follows the business location, never the billing address.
    business_country = CountryField()
    business_region = models.CharField(
        max_length=10,
        blank=True,
        help_text="The business's region: a state code (e.g. CA) where tax depends on it.",
    )
    billing_email = models.EmailField()
    created_on = models.DateField()
    # Only what is needed to show which card is on file: never a card number.
    payment_method_added_on = models.DateField(null=True, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    lock = models.CharField(max_length=20, choices=Lock.choices, default=Lock.UNLOCKED)
    lock_changed_on = models.DateField(null=True, blank=True)
    lock_cause = models.TextField(blank=True)
    # Read by the ingestion pipeline: false while locked with data stopped (F2) or closed (W1).
    data_flow = models.BooleanField(default=True)
    startup_member = models.BooleanField(default=False)
    # W1: closed since this day, empty while open. The dated record is WorkspaceClosure (D3);
    # this copy is what the pipeline and the list filter read.
    closed_on = models.DateField(null=True, blank=True)
    # D4: the latest day a dated change to the workspace was entered for (`created_on` until
    # one is): changes go in date order, so none is dated before it (`clock.take_in_date_order`).
    changes_dated_to = models.DateField(null=True, blank=True, editable=False)

    objects = WorkspaceQuerySet.as_manager()
    history = history_with_reasons()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("change_plan_workspace", "Can move a workspace between Free and Team"),
            ("unlock_workspace", "Can unlock a workspace by hand"),
            ("import_usage", "Can import usage files"),
            ("close_workspace", "Can close and reopen a workspace"),
        ]
        indexes = [
            models.Index(fields=["lock"]),
            models.Index(fields=["business_country", "business_region"]),
            models.Index(fields=["billing_email"]),
            # The support console's list order (the admin breaks ties newest first).
            models.Index(fields=["name", "-id"]),
            # X1: the few workspaces whose region tax depends on is no code, in the list's
            # order: the finance panel counts them on every visit and links to their list, each
            # a scan of every workspace otherwise (150,000: 60 ms and 0.34–0.99 s). A change to
            # the regions (billing.regions) changes the condition: a migration rebuilds it.
            models.Index(
                fields=["name", "-id"],
                condition=region_not_a_code(),
                name="workspace_region_not_a_code",
            ),
            # Searched by words (billing.search): trigram indexes of name, slug and
            # billing_email on PostgreSQL, created by migration 0028.
        ]
        constraints = [
            # U1: a usage file names a workspace by its slug; "DEMO-1" beside "demo-1" would
            # take another's figures. (The plain unique index stays: the import joins on it.)
            models.UniqueConstraint(Lower("slug"), name="workspace_slug_unique_in_any_case"),
            one_of(Lock, field="lock", name="workspace_lock_valid"),
            models.CheckConstraint(
                condition=Q(data_flow=True, lock__in=[Lock.UNLOCKED, Lock.LOCKED], closed_on=None)
                | Q(data_flow=False, lock=Lock.LOCKED_DATA_STOPPED)
                | Q(data_flow=False, closed_on__isnull=False),
                name="workspace_data_flow_follows_lock_and_closure",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.slug})"

    @property
    def has_payment_method(self):
        return self.payment_method_added_on is not None

    def payment_method_on(self, day: date) -> bool:
        """T4, D3: whether a payment method was on file on `day`, from the dated history (the
        card fields above only say which card is on file now)."""
        return self.payment_methods.on(day).exists()


class PaymentMethodQuerySet(models.QuerySet):
    def on(self, day: date):
        """The card on file on `day`: added on or before it and not removed by then (a card
        replaced on `day` is removed that day and its successor added that day)."""
        return self.filter(in_force_on(day, "added_on", "removed_on"))


class PaymentMethod(models.Model):
    """D3: a card on file from `added_on` until `removed_on` (exclusive). Replacing a card ends
    the old row and starts a new one, so what was on file on any past day stays known (T4)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="payment_methods"
    )
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    added_on = models.DateField()
    removed_on = models.DateField(null=True, blank=True)

    objects = PaymentMethodQuerySet.as_manager()

    class Meta:
        ordering = ["-added_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(removed_on=None),
                name="one_card_on_file_per_workspace",
            ),
            ends_after_start("added_on", "removed_on", name="payment_method_removed_after_added"),
        ]

    def __str__(self):
        card = f"{self.brand} •••• {self.last4}".strip() if self.last4 else "card"
        return f"{card} from {day(self.added_on)}"


class SubscriptionQuerySet(models.QuerySet):
    def current(self):
        return self.filter(ended_on=None)

    def overlapping(self, start: date, end: date):
        """Subscriptions that existed on some day in [start, end) (one that ended the day it
        started existed on none)."""
        lasted = Q(ended_on__gt=start) & Q(ended_on__gt=F("started_on"))
        return self.filter(Q(ended_on=None) | lasted, started_on__lt=end)

    def paid_overlapping(self, start: date, end: date):
        """Team subscriptions with at least one paid day in [start, end)."""
        still_paid = Q(ended_on=None) | (Q(ended_on__gt=F("paid_from")) & Q(ended_on__gt=start))
        return self.filter(still_paid, plan__code=Plan.Code.TEAM, paid_from__lt=end)


class Subscription(models.Model):
    """One stretch of one plan for one workspace (P3); past ones are kept as history.

    Team days from `started_on` to `paid_from` are trial days, days from `paid_from` to
    `ended_on` (exclusive) are paid days. Annual subscriptions also carry the current term.
    """

    class TrialOutcome(models.TextChoices):
        NONE = "", "No trial"
        RUNNING = "running", "Running"
        CONVERTED = "converted", "Converted to paid"
        REVERTED = "reverted", "Ended without payment method"
        CANCELLED = "cancelled", "Cancelled during trial"

    class EndReason(models.TextChoices):
        NONE = "", "—"
        CANCELLED = "cancelled", "Cancelled or downgraded"
        UPGRADED = "upgraded", "Moved to Team"
        TRIAL_ENDED = "trial_ended", "Trial ended without payment method"
        INTERVAL_CHANGED = "interval_changed", "Billing interval changed"
        TERM_ENDED = "term_ended", "Annual term ended"
        CLOSED = "closed", "Workspace closed"

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    interval = models.CharField(max_length=10, choices=Interval.choices, default=Interval.MONTHLY)
    started_on = models.DateField()
    ended_on = models.DateField(null=True, blank=True, help_text="First day no longer on it.")
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    trial_end = models.DateField(null=True, blank=True, help_text="T3: the first paid day.")
    trial_outcome = models.CharField(max_length=10, choices=TrialOutcome.choices, blank=True)
    paid_from = models.DateField(null=True, blank=True, help_text="First paid day (Team only).")
    term_start = models.DateField(null=True, blank=True)
    term_end = models.DateField(null=True, blank=True, help_text="Annual: end of current term.")
    cancel_at_term_end = models.BooleanField(default=False)
    # D3: the days the term's last cancellation stood, from the day it was dated up to the day
    # its withdrawal was (empty: it stands), so the status on another day reads it as it was
    # then. Empty on a cancellation from before they were kept.
    cancelled_on = models.DateField(null=True, blank=True)
    cancel_withdrawn_on = models.DateField(null=True, blank=True)
    switch_to_monthly_at_term_end = models.BooleanField(default=False)
    # D3, K4: the day a trial was last set to continue on another interval, and the interval it
    # was to continue on before that day (empty: never changed), so the status on an earlier
    # day reads the interval then. Only the last change's day is kept.
    interval_chosen_on = models.DateField(null=True, blank=True)
    interval_before = models.CharField(max_length=10, choices=Interval.choices, blank=True)
    trial_reminder_sent_on = models.DateField(null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()
    history = history_with_reasons()

    class Meta:
        ordering = ["-started_on", "-id"]
        indexes = [
            models.Index(
                fields=["trial_end"],
                condition=Q(trial_outcome="running"),
                name="sub_running_trials",
            ),
            models.Index(
                fields=["term_end"],
                condition=Q(ended_on=None, interval="annual"),
                name="sub_annual_terms",
            ),
            models.Index(fields=["workspace", "started_on"]),
            models.Index(fields=["paid_from", "ended_on"]),
            models.Index(fields=["-started_on", "-id"]),  # the subscription list's order
            # The subscription list sorted by Trial or Term end, either way (the trials and
            # annual terms that end soonest): each sorted every subscription for one page.
            models.Index(fields=["trial_end", "id"]),
            models.Index(fields=["term_end", "id"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(ended_on=None), name="one_current_subscription"
            ),
            # T1: one trial per workspace, ever.
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(trial_end__isnull=False),
                name="one_trial_per_workspace",
            ),
            ends_after_start("started_on", "ended_on", name="subscription_ends_after_start"),
            models.CheckConstraint(
                condition=Q(trial_end=None, trial_outcome="")
                | (Q(trial_end__isnull=False) & ~Q(trial_outcome="")),
                name="subscription_trial_end_with_outcome",
            ),
            one_of(Interval, field="interval", name="subscription_interval_valid"),
            models.CheckConstraint(
                condition=Q(cancel_at_term_end=True, cancel_withdrawn_on=None)
                | Q(cancel_at_term_end=False, cancelled_on=None, cancel_withdrawn_on=None)
                | Q(
                    cancel_at_term_end=False,
                    cancelled_on__isnull=False,
                    cancel_withdrawn_on__gte=F("cancelled_on"),
                ),
                name="subscription_cancellation_days_follow_the_flag",
            ),
            models.CheckConstraint(
                condition=Q(interval_chosen_on=None, interval_before="")
                | (Q(interval_chosen_on__isnull=False) & Q(interval_before__in=Interval.values)),
                name="subscription_interval_before_with_its_day",
            ),
        ]

    def __str__(self):
        plan = f"{self.plan.name}, {billed(self.interval)}" if self.is_team else self.plan.name
        return f"{self.workspace.name}: {plan}, from {day(self.started_on)}"

    @property
    def is_team(self):
        return self.plan.code == Plan.Code.TEAM

    @property
    def trial_days(self) -> int | None:
        """How long this subscription's trial is (T3: 14 days as the plan stood when it began)."""
        return (self.trial_end - self.started_on).days if self.trial_end else None

    def trialing_on(self, day: date) -> bool:
        return (
            self.trial_end is not None
            and self.started_on <= day < self.trial_end
            and (self.ended_on is None or day < self.ended_on)
        )


class Usage(models.Model):
    """U1: monthly tracked users per workspace and calendar month; a new report replaces it."""

    # No index of its own: the one-usage-per-month constraint leads with it, and every index
    # costs an import on each row.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="usage", db_index=False
    )
    month = models.DateField(help_text="The 1st of the month.")
    mtus = models.PositiveBigIntegerField("MTUs")
    updated_at = models.DateTimeField(auto_now=True)
    # U1: the later report wins, by when it was reported, not written: a worker imports a file
    # after its upload, and a file held up must not replace a figure reported since. Empty for
    # figures written before this was kept (their `updated_at` stands for it).
    reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When the figure was reported (a file: its upload)."
    )

    # R4: who changed a figure is the signed-in user who recorded or uploaded it, or the user who
    # queued the import job: a user that exists. Checking that again in the database took an
    # import of 1,050,000 figures several seconds at commit, one foreign-key check per history
    # row (bench/usage_import.py); a deleted user's history rows are still set to no one, by
    # Django (SET_NULL).
    history = history_with_reasons(read_by_row=True, user_db_constraint=False)

    class Meta:
        ordering = ["-month"]
        verbose_name_plural = "usage"
        indexes = [models.Index(fields=["month", "workspace"])]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "month"], name="one_usage_per_month"),
            models.CheckConstraint(condition=Q(month__day=1), name="usage_month_is_first_day"),
        ]

    def __str__(self):
        return f"{self.workspace.slug} {self.month:%Y-%m}: {self.mtus:,} MTUs"


# The choices of models below live at module level so their constraints can name them
# (`one_of`); each model also carries its own (`Invoice.Status`, …).
class UsageImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Imported"
    REFUSED = "refused", "Refused, nothing imported"
    FAILED = "failed", "Failed, nothing imported"


class UsageImportJob(models.Model):
    """U2 for a large file: the admin stores the upload privately and a worker imports it
    (`billing.usage_import.run_import_job`); the import page follows this row."""

    Status = UsageImportStatus

    FINISHED = (Status.DONE, Status.REFUSED, Status.FAILED)

    file = models.FileField(upload_to=PrivateUploadTo("usage-imports"), max_length=200, blank=True)
    file_name = models.CharField(max_length=255, help_text="As uploaded (stored under another).")
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_by = acting_user()
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    figures_created = models.PositiveIntegerField(null=True, blank=True)
    figures_replaced = models.PositiveIntegerField(null=True, blank=True)
    figures_unchanged = models.PositiveIntegerField(null=True, blank=True)
    bad_lines = models.PositiveIntegerField(default=0)
    # The refusal: the first bad lines with their reasons (billing.usage_import.MAX_LISTED_LINES).
    errors = models.JSONField(default=list, blank=True)
    # U2: every bad line with its reason (CSV), when there are more than the page names.
    bad_lines_file = models.FileField(
        upload_to=PrivateUploadTo("usage-import-refusals"), max_length=200, blank=True
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            one_of(UsageImportStatus, name="usage_import_job_status_valid"),
        ]

    def __str__(self):
        return f"Usage import {self.pk} ({self.file_name}, {self.get_status_display().lower()})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def outcome(self) -> str:
        return import_outcome(self.figures_created, self.figures_replaced, self.figures_unchanged)


class Strike(models.Model):
    """F1: a month in which a workspace on Free went over its MTU allowance."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="strikes")
    month = models.DateField()
    mtus = models.PositiveBigIntegerField("MTUs")

    class Meta:
        ordering = ["-month"]
        # The strike list's order (the admin breaks ties newest first).
        indexes = [models.Index(fields=["-month", "-id"])]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "month"], name="one_strike_per_month"),
            # A month is its first day: the 15th would be a second strike for the month (F1).
            models.CheckConstraint(condition=Q(month__day=1), name="strike_month_is_first_day"),
        ]

    def __str__(self):
        return f"{self.workspace.slug} {self.month:%Y-%m}"


class LockEvent(models.Model):
    """F6: every lock and unlock, with its cause, who (for a manual one) and why."""

    class Cause(models.TextChoices):
        FREE_LIMIT = "free_limit", "Over the Free limit at month close"
        UNDER_LIMIT = "under_limit", "No strike at month close"
        MOVED_TO_TEAM = "moved_to_team", "Moved to Team"
        TRIAL_NOT_PAID = "trial_not_paid", "Trial ended before paying"
        MANUAL = "manual", "Unlocked by support"
        REOPENED = "reopened", "Workspace reopened by support"

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="lock_events")
    on = models.DateField()
    month = models.DateField(null=True, blank=True, help_text="The closed month, for F2/F3.")
    from_lock = models.CharField(max_length=20, choices=Lock.choices)
    to_lock = models.CharField(max_length=20, choices=Lock.choices)
    cause = models.CharField(max_length=20, choices=Cause.choices)
    reason = models.TextField(blank=True)
    by = acting_user()
    created_at = models.DateTimeField(auto_now_add=True)
    # F7: a move to Team names the subscription whose upgrade lifted the lock, which puts it
    # back if it ends unpaid (two moves on one day are told apart).
    subscription = optional_link(Subscription, related_name="lifted_locks")

    class Meta:
        ordering = ["-on", "-id"]
        indexes = [models.Index(fields=["-on", "-id"])]  # the lock change list's order
        constraints = [
            # A month close locks or unlocks a workspace at most once for that month.
            models.UniqueConstraint(
                fields=["workspace", "month"],
                condition=Q(month__isnull=False),
                name="one_lock_change_per_closed_month",
            ),
            # Its first day, or a mid-month date would be a second change for the month.
            models.CheckConstraint(
                condition=Q(month__isnull=True) | Q(month__day=1),
                name="lock_event_month_is_first_day",
            ),
        ]

    def __str__(self):
        change = f"{self.get_from_lock_display()} → {self.get_to_lock_display()}"
        return f"{self.workspace.name}: {change} on {day(self.on)}"


class WorkspaceClosureQuerySet(models.QuerySet):
    def on(self, day: date):
        """D3: the closures in force on `day`: closed on or before it, not reopened by then."""
        return self.filter(in_force_on(day, "closed_on", "reopened_on"))


class WorkspaceClosure(models.Model):
    """W1, D3: a workspace closed from `closed_on` until `reopened_on` (exclusive), each with
    who and why. Its invoices and history are kept; while closed it accepts no change but
    reopening."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="closures")
    closed_on = models.DateField()
    reason = models.TextField()
    closed_by = acting_user()
    final_invoice = optional_link(
        "Invoice",
        related_name="+",
        help_text="K1: the final invoice of the monthly Team subscription the closure ended.",
    )
    reopened_on = models.DateField(null=True, blank=True)
    reopen_reason = models.TextField(blank=True)
    reopened_by = acting_user()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceClosureQuerySet.as_manager()
    history = history_with_reasons()

    class Meta:
        ordering = ["-closed_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(reopened_on=None),
                name="one_open_closure_per_workspace",
            ),
            ends_after_start("closed_on", "reopened_on", name="closure_reopened_after_closed"),
            models.CheckConstraint(condition=~Q(reason=""), name="closure_has_reason"),
            models.CheckConstraint(
                condition=Q(reopened_on=None) | ~Q(reopen_reason=""),
                name="reopening_has_reason",
            ),
        ]

    def __str__(self):
        until = f" until {day(self.reopened_on)}" if self.reopened_on else ""
        return f"{self.workspace.slug} closed on {day(self.closed_on)}{until}"


class BillingClock(models.Model):
    """D1, D2: the last day the billing clock has processed (one row). Changes dated on or
    before it are refused; `run_billing` goes on from the day after."""

    last_processed_day = models.DateField(null=True, blank=True)
    processing_day = models.DateField(
        null=True, blank=True, help_text="The day being processed: refused to changes too."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="one_billing_clock")]

    def __str__(self):
        return f"processed through {self.last_processed_day or 'no day yet'}"


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the beat's heartbeat (`billing.tasks.record_heartbeat`,
    one row): a worker that runs it proves the beat sends and a worker takes tasks off the
    queue. `check_billing` says so when it is older than HEARTBEAT_STALE_AFTER."""

    ran_at = models.DateTimeField()
    worker = models.CharField(max_length=255, blank=True, help_text="The worker's node name.")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="one_worker_heartbeat")]

    def __str__(self):
        return f"heartbeat at {self.ran_at:%Y-%m-%d %H:%M:%S} UTC by {self.worker or 'a worker'}"


class MonthClose(models.Model):
    """A billing month's close (M1, F1–F3); once finished, closing again is a no-op (I4).

    Its steps are each recorded when done, so a close interrupted anywhere resumes where it
    stopped: the locks, then the plan of invoice chunks, then each chunk.
    """

    month = models.DateField(unique=True)
    closed_on = models.DateField(help_text="The billing clock's date when it ran.")
    locks_done = models.BooleanField(default=False)
    chunks_planned = models.BooleanField(default=False)
    finished = models.BooleanField(default=False)
    strikes = models.PositiveIntegerField(default=0)
    invoices = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month"]
        permissions = [("retry_set_aside_monthclose", "Can try set-aside invoices again now")]
        constraints = [
            # I4: closed once; the 15th would be a second close of the month.
            models.CheckConstraint(
                condition=Q(month__day=1), name="month_close_month_is_first_day"
            ),
        ]

    def __str__(self):
        return f"{self.month:%B %Y}"


class SetAsideInvoice(models.Model):
    """I6: a workspace whose invoice the close could not make, with the error; every other
    invoice was issued. A later run of the clock tries it again until it is billed."""

    close = models.ForeignKey(MonthClose, on_delete=models.CASCADE, related_name="set_aside")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    error = models.TextField()
    first_seen_on = models.DateField()
    resolved_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["close", "workspace_id"]
        constraints = [
            models.UniqueConstraint(fields=["close", "workspace"], name="set_aside_once_per_close")
        ]

    def __str__(self):
        return f"Invoice of {self.workspace} for {self.close}"


class MonthCloseChunk(models.Model):
    """The invoices of one range of workspaces in a month close: issued in one transaction,
    then marked done, so a redelivered or late chunk task does nothing."""

    close = models.ForeignKey(MonthClose, on_delete=models.CASCADE, related_name="chunks")
    first_workspace_id = models.BigIntegerField()
    last_workspace_id = models.BigIntegerField()
    done = models.BooleanField(default=False)
    invoices = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["close", "first_workspace_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["close", "first_workspace_id"], name="one_chunk_per_range_start"
            ),
        ]

    def __str__(self):
        return f"{self.close} workspaces {self.first_workspace_id}–{self.last_workspace_id}"


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Not sent: too late"


class OutboundEmail(models.Model):
    """One email per (kind, object, recipient): a retried task finds the row and sends nothing.

    Every promised email leaves or shows as failed: the send task's last retry marks a row
    failed with its error; a row left pending (the broker was down at commit, a worker was lost)
    is claimed and sent again by the sweep (`billing.emails.resend_stuck_emails`)."""

    Status = EmailStatus

    kind = models.CharField(max_length=50)
    object_key = models.CharField(max_length=100, help_text="What the email is about, e.g. sub:12.")
    to = models.EmailField()
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a sender last took it: a send attempt, the sweep or a resend.",
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [("resend_outboundemail", "Can resend an email that failed or is stuck")]
        indexes = [
            # The sweep's and the admin filter's search for stuck rows reads pending rows only.
            models.Index(
                fields=["created_at"], condition=Q(status="pending"), name="email_pending_idx"
            ),
            # The outbox list's order (the admin breaks ties newest first).
            models.Index(fields=["-created_at", "-id"], name="email_newest_first_idx"),
            # The failed ones, few among a million: the finance panel counts them and the
            # list's "failed" filter shows them, newest first.
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(status="failed"),
                name="email_failed_idx",
            ),
        ]
        constraints = [
            # One email of each kind about each thing (S4's acceptance, S5's rejection, W1's
            # closure, T6's reminder…), whoever it was addressed to: every key names its one
            # recipient's object (a campaign's, the workspace it reaches).
            models.UniqueConstraint(
                fields=["kind", "object_key"], name="one_email_per_kind_and_object"
            ),
            one_of(EmailStatus, name="email_status_valid"),
        ]

    def __str__(self):
        return f"“{self.subject}” to {self.to} ({self.get_status_display().lower()})"


class InvoiceSequence(models.Model):
    """I1: the last invoice number given in a year; its row lock keeps numbers gapless."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.year}: {self.last_number}"


# I1: numbers have six digits up to INV-YYYY-999999 and grow a seventh after (a year of 100,000+
# monthly workspaces issues over 1,000,000), so their text alone is not their order: it put
# INV-2026-1000000 between INV-2026-100000 and INV-2026-100001. Within a year numbers follow
# issue dates (I1, D4), and one day's share their year: by issue date, then length, then text is
# number order, but for an invoice a close set aside and issued on a later run (I6): it keeps
# its close's issue date and takes the next number, so it is listed among its date's. Length
# as a lookup (`number__length`) keeps Meta.ordering plain names, which a list ordered by
# invoice (credit notes by their invoice) reverses; an expression it would not.
models.CharField.register_lookup(Length)
NUMBER_ORDER = ("issue_date", "number__length", "number")


def number_order(*, descending: bool = False) -> list[str]:
    """Invoices by issue date, then number (I1), as `order_by` arguments: the order of their
    numbers, but for a set-aside invoice issued late (I6), listed by its date."""
    return [f"-{name}" if descending else name for name in NUMBER_ORDER]


class InvoiceQuerySet(models.QuerySet):
    def issued_between(self, start: date, end: date):
        return self.filter(issue_date__gte=start, issue_date__lt=end)


class InvoiceKind(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    ANNUAL = "annual", "Annual"
    FINAL = "final", "Final"


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class Invoice(models.Model):
    """I1–I3: issued once (a constraint), never edited or deleted; finance may void it."""

    Kind = InvoiceKind
    Status = InvoiceStatus

    # INV-YYYY- and up to 11 digits; FORECAST-YYYY-NNNNNN (placeholders, counted from 1 in each
    # rolled-back block: one workspace's invoices, or the few the lagging clock owes) fit too.
    number = models.CharField(max_length=20, unique=True)
    # No index of their own: (workspace, issue_date) and the one-invoice-per-period constraint
    # lead with these columns, and every index costs the month close on each insert.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Exclusive.")
    issue_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ISSUED)
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    credits = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # What the invoice was issued under, kept as it was (I1).
    plan_code = models.CharField(max_length=20)
    interval = models.CharField(max_length=10, choices=Interval.choices)
    tax_country = models.CharField(max_length=2, blank=True)
    tax_region = models.CharField(max_length=10, blank=True)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    tax_note = models.CharField(max_length=300, blank=True)
    overage_mtus = models.PositiveBigIntegerField(
        "overage MTUs", default=0, help_text="MTUs billed as overage."
    )
    void_reason = models.TextField(blank=True)
    voided_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InvoiceQuerySet.as_manager()
    history = history_with_reasons()

    class Meta:
        ordering = number_order(descending=True)  # newest first
        permissions = [
            ("void_invoice", "Can void an invoice"),
            ("export_invoice", "Can export invoices and see finance reports"),
        ]
        indexes = [
            models.Index(fields=["issue_date", "id"]),
            models.Index(fields=["workspace", "issue_date"]),
            # The invoice list's order (`number_order`): its first page is read, not sorted.
            models.Index(
                F("issue_date").desc(),
                Length("number").desc(),
                F("number").desc(),
                name="invoice_number_order",
            ),
            # Searched by words (billing.search): a trigram index of number on PostgreSQL,
            # created by migration 0028.
        ]
        constraints = [
            # I4: a second invoice for the same subscription, kind and period cannot exist.
            # Kind is in it on purpose: a forecast's sandbox (FC1) issues a final invoice for
            # the period the close is billing as monthly, in a transaction it rolls back, and
            # a constraint across kinds would make the close wait for it. M1's "not already
            # billed by a final invoice" is held by the clock instead: a change holds its row
            # shared, the clock takes it to run a day, and D2 refuses a processed day.
            models.UniqueConstraint(
                fields=["subscription", "kind", "period_start"], name="one_invoice_per_period"
            ),
            # I2. Within a tenth of a cent because SQLite (the laptop default) compares
            # decimals as floats; on PostgreSQL the numerics are exact anyway.
            models.CheckConstraint(
                condition=Q(
                    total__range=(
                        F("subtotal") - F("discount") - F("credits") + F("tax") - Decimal("0.001"),
                        F("subtotal") - F("discount") - F("credits") + F("tax") + Decimal("0.001"),
                    )
                ),
                name="invoice_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(
                    total__gte=0, subtotal__gte=0, discount__gte=0, credits__gte=0, tax__gte=0
                ),
                name="invoice_amounts_not_negative",
            ),
            # C4, CR2: a discount is at most the subtotal, and credit at most what the discount
            # left; as I2's, within a tenth of a cent for SQLite.
            models.CheckConstraint(
                condition=Q(
                    subtotal__gte=F("discount") + F("credits") - Decimal("0.001"),
                ),
                name="invoice_discount_and_credits_within_subtotal",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="invoice_period_not_empty"
            ),
            one_of(InvoiceKind, field="kind", name="invoice_kind_valid"),
            one_of(InvoiceStatus, name="invoice_status_valid"),
        ]

    def __str__(self):
        return self.number


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        BASE = "base", "Base"
        OVERAGE = "overage", "Overage"
        DISCOUNT = "discount", "Discount"
        CREDIT = "credit", "Credit"
        TAX = "tax", "Tax"

    # Indexed by the one-line-per-position constraint, which leads with it.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="lines", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    description = models.CharField(max_length=200)
    quantity = models.BigIntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="one_line_per_position"),
        ]

    def __str__(self):
        # Its amount is a column of its own wherever lines are listed (written as money there).
        return f"Line {self.position}"


class InvoiceRollup(models.Model):
    """What the finance reports (R3) sum, kept by the database as invoices are written: rows
    of counted (not void, I3) invoices' totals by issue month and by what a report groups or
    filters on. Database triggers on the invoice table (migration 0047) add a row for every
    statement that inserts, updates or deletes invoices: its totals, or the negated totals of
    what an update or delete took away. No writer can forget it, and a month close's workers
    never wait on each other for it, as they would if they updated shared rows.
    `reports.fold_rollup` folds the rows into one per group now and then; the sums never
    depend on when it last ran."""

    month = models.DateField()
    tax_country = models.CharField(max_length=2)
    tax_region = models.CharField(max_length=10)
    plan_code = models.CharField(max_length=20)
    interval = models.CharField(max_length=10)
    taxed = models.BooleanField(help_text="A positive tax rate applied.")
    exempt = models.BooleanField(help_text="A certificate exempted it (X4).")
    # Negative in a row that takes away (a void, I3).
    invoices = models.BigIntegerField()
    net = models.DecimalField(
        max_digits=16, decimal_places=2, help_text="After discounts and credits (X3)."
    )
    tax = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["month"])]

    def __str__(self):
        return f"{self.month:%Y-%m} {self.plan_code} {self.tax_country}"


class CreditNoteStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class CreditNote(models.Model):
    """K3: requested by support with a reason, approved by finance, never above what is left."""

    Status = CreditNoteStatus

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    # The part of `amount` that gives back the invoice's tax, set when it is approved.
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_on = models.DateField()
    decided_by = acting_user()
    decided_on = models.DateField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    # I5: its number among its invoice's approved credit notes (INV-2026-000123-CN1), given
    # when it is approved. Notes approved before there was one kept their row id (sent so).
    sequence = models.PositiveIntegerField(null=True, blank=True, editable=False)

    history = history_with_reasons()

    class Meta:
        ordering = ["-requested_on", "-id"]
        permissions = [("approve_creditnote", "Can approve or reject credit notes")]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "sequence"], name="one_credit_note_number_per_invoice"
            ),
            models.CheckConstraint(
                condition=Q(status=CreditNoteStatus.APPROVED, sequence__isnull=False)
                | (~Q(status=CreditNoteStatus.APPROVED) & Q(sequence__isnull=True)),
                name="credit_note_numbered_when_approved",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_amount_positive"),
            models.CheckConstraint(
                condition=Q(tax__gte=0, tax__lte=F("amount")), name="credit_note_tax_within_amount"
            ),
            one_of(CreditNoteStatus, name="credit_note_status_valid"),
            dated_decision(
                undecided=CreditNoteStatus.REQUESTED, name="credit_note_decided_on_with_decision"
            ),
        ]

    def __str__(self):
        return self.number or f"Credit note request #{self.pk} on {self.invoice.number}"

    @property
    def number(self) -> str:
        """I5: an approved credit note is named after the invoice it credits and its number
        among that invoice's approved notes (INV-2026-000123-CN1); a request has none."""
        return f"{self.invoice.number}-CN{self.sequence}" if self.sequence else ""


class TaxRate(models.Model):
    """X2: in force from `valid_from` until the same jurisdiction's next rate starts."""

    country = CountryField()
    region = models.CharField(max_length=10, blank=True)
    rate = models.DecimalField(max_digits=6, decimal_places=3, help_text="Percent, e.g. 7.250.")
    name = models.CharField(max_length=100, help_text="E.g. 'CA sales tax', 'VAT'.")
    valid_from = models.DateField()

    history = history_with_reasons()

    class Meta:
        ordering = ["country", "region", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "region", "valid_from"], name="one_rate_per_jurisdiction_day"
            ),
            models.CheckConstraint(
                condition=Q(rate__gte=0, rate__lte=100), name="tax_rate_is_percent"
            ),
        ]

    def __str__(self):
        where = f"{self.country}-{self.region}" if self.region else str(self.country)
        return f"{where} {rate_text(self.rate)} from {day(self.valid_from)}"


# X5: a random stored name under the private media root (billing.documents). Migration 0005
# names it by this path.
exemption_document_path = PrivateUploadTo("tax-exemptions")


class ExemptionReason(models.TextChoices):
    NONPROFIT = "nonprofit", "Non-profit"
    GOVERNMENT = "government", "Government"
    RESALE = "resale", "Resale"
    OTHER = "other", "Other"


class ExemptionStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class TaxExemption(models.Model):
    """X4, X5: a workspace's sales-tax exemption certificate for one US state, reviewed by
    finance. A workspace may hold certificates for states other than its own; only an approved
    one for the invoice's state, approved by and valid on the issue date, waives the tax."""

    Reason = ExemptionReason
    Status = ExemptionStatus

    OPEN_STATUSES = (Status.SUBMITTED, Status.IN_REVIEW)  # waiting for finance's decision

    EXTENSIONS = EXTENSIONS

    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="tax_exemptions"
    )
    region = models.CharField(max_length=10, help_text="The US state it covers (e.g. NH).")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    document = models.FileField(upload_to=exemption_document_path, max_length=200)
    content_type = models.CharField(
        max_length=50, editable=False, help_text="Detected from the document's content."
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last valid day; empty: open.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    submitted_on = models.DateField()
    review_started_on = models.DateField(null=True, blank=True)
    reviewed_by = acting_user()
    decided_on = models.DateField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["-submitted_on", "-id"]
        permissions = [("review_taxexemption", "Can review tax exemption certificates")]
        indexes = [models.Index(fields=["workspace", "region"])]
        constraints = [
            one_of(ExemptionStatus, name="tax_exemption_status_valid"),
            one_of(ExemptionReason, field="reason", name="tax_exemption_reason_valid"),
            ends_after_start(
                "valid_from",
                "valid_to",
                name="tax_exemption_valid_to_after_from",
                violation_error_message="A certificate cannot end before it starts.",
            ),
            # A decision has a date; an open certificate has none.
            models.CheckConstraint(
                condition=Q(
                    status__in=[ExemptionStatus.SUBMITTED, ExemptionStatus.IN_REVIEW],
                    decided_on=None,
                )
                | Q(
                    status__in=[ExemptionStatus.APPROVED, ExemptionStatus.REJECTED],
                    decided_on__isnull=False,
                ),
                name="tax_exemption_decided_on_with_decision",
            ),
            models.CheckConstraint(
                condition=~Q(status=ExemptionStatus.REJECTED, rejection_reason=""),
                name="tax_exemption_rejection_has_reason",
            ),
        ]

    def __str__(self):
        return f"Certificate #{self.pk} ({self.region}, {self.get_reason_display().lower()})"
