"""Coupons, redemptions, accelerator partners, non-profit proofs and startup credits
(SPEC C1–C8, CR1–CR3).

Every rule that can be a database constraint is one: a coupon's shape (C1), one redemption per
workspace and coupon (C2), a grant per program year (CR1, CR3), a balance that never goes below
zero and ledger entries whose sign follows their kind (CR2). Services keep the rest.
"""

from datetime import date

from django.db import models
from django.db.models import F, Q
from django.utils.functional import cached_property

from billing.documents import PrivateUploadTo
from billing.formatting import day, money
from billing.models import (
    acting_user,
    dated_decision,
    history_with_reasons,
    one_of,
    optional_link,
)
from billing.months import add_months, month_start


# The choices live at module level so the models' constraints can name them (`one_of`); each
# model also carries its own (`Coupon.Kind`, `Redemption.Status`, …).
class PartnerStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"


class CouponKind(models.TextChoices):
    STARTUP_PROGRAM = "startup_program", "Startup program"
    NONPROFIT = "nonprofit", "Non-profit"
    ACCELERATOR = "accelerator", "Accelerator"
    PROMOTION = "promotion", "Promotion"


class CouponDuration(models.TextChoices):
    ONCE = "once", "Once"
    REPEATING = "repeating", "Repeating"
    FOREVER = "forever", "Forever"


class RedemptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ran out"
    REMOVED = "removed", "Removed"


class ProofStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class LedgerKind(models.TextChoices):
    GRANT = "grant", "Granted"
    DRAW = "draw", "Drawn by an invoice"
    RETURN = "return", "Given back by a voided invoice"
    LAPSE = "lapse", "Lapsed at the year's end"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LAUNCHED = "launched", "Launched"


class AcceleratorPartner(models.Model):
    """C7: a program that applied through the public form and is reviewed by staff. An active
    partner may have its own coupon (`coupons`) and its own startup-program credit amount."""

    Status = PartnerStatus

    name = models.CharField(max_length=200)
    website = models.URLField(max_length=300, blank=True)
    contact_name = models.CharField(max_length=200)
    contact_email = models.EmailField()
    description = models.TextField(blank=True, help_text="The program, as the applicant gave it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPLIED)
    credit_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Yearly startup-program credit for its startups, instead of the STARTUP "
        "coupon's (C7, CR1). Empty: the STARTUP coupon's amount.",
    )
    applied_on = models.DateField()
    reviewed_by = acting_user()
    reviewed_on = models.DateField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("review_acceleratorpartner", "Can approve, decline or deactivate accelerator partners")
        ]
        constraints = [
            one_of(PartnerStatus, name="partner_status_valid"),
            models.CheckConstraint(
                condition=Q(credit_amount__isnull=True) | Q(credit_amount__gt=0),
                name="partner_credit_amount_positive",
                violation_error_message="The partner's credit amount must be more than 0.",
            ),
        ]

    def __str__(self):
        return self.name


class Coupon(models.Model):
    """C1: a unique code, a kind, exactly one of percent off, amount off or (startup program
    only) a yearly credit, a duration, optional redeem-by date and maximum, the intervals it
    applies to, an optional partner and an optional follow-up coupon."""

    Kind = CouponKind
    Duration = CouponDuration

    code = models.CharField(max_length=40, unique=True, help_text="Upper case, e.g. SPRING25.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    credit_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Startup program only: the credit granted for each program year.",
    )
    duration = models.CharField(max_length=10, choices=Duration.choices, default=Duration.ONCE)
    duration_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Repeating only: how many billing months."
    )
    redeem_by = models.DateField(
        null=True, blank=True, help_text="The last day it can be applied (included)."
    )
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    # Redemptions counted against the maximum: moved with F() + 1 under the coupon's row lock.
    # Follow-up redemptions by the system are not counted (C5: the maximum does not apply).
    times_redeemed = models.PositiveIntegerField(default=0, editable=False)
    applies_monthly = models.BooleanField(default=True, help_text="Applies to monthly bills.")
    applies_annual = models.BooleanField(default=True, help_text="Applies to annual bills.")
    partner = optional_link(AcceleratorPartner, related_name="coupons")
    follow_up = optional_link(
        "self",
        related_name="follows",
        help_text="Applied by the system when this one runs out (C5).",
    )
    active = models.BooleanField(default=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=CouponKind.values, duration__in=CouponDuration.values),
                name="coupon_kind_and_duration_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    percent_off__isnull=False, amount_off__isnull=True, credit_amount__isnull=True
                )
                | Q(percent_off__isnull=True, amount_off__isnull=False, credit_amount__isnull=True)
                | Q(percent_off__isnull=True, amount_off__isnull=True, credit_amount__isnull=False),
                name="coupon_exactly_one_value",
            ),
            models.CheckConstraint(
                condition=Q(percent_off__isnull=True) | Q(percent_off__gt=0, percent_off__lte=100),
                name="coupon_percent_in_range",
            ),
            models.CheckConstraint(
                condition=Q(amount_off__isnull=True) | Q(amount_off__gt=0),
                name="coupon_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(credit_amount__isnull=True)
                | Q(credit_amount__gt=0, kind=CouponKind.STARTUP_PROGRAM),
                name="coupon_credit_only_startup_program",
            ),
            models.CheckConstraint(
                condition=Q(
                    duration=CouponDuration.REPEATING,
                    duration_months__isnull=False,
                    duration_months__gte=1,
                )
                | (~Q(duration=CouponDuration.REPEATING) & Q(duration_months__isnull=True)),
                name="coupon_months_only_for_repeating",
            ),
            models.CheckConstraint(
                condition=Q(applies_monthly=True) | Q(applies_annual=True),
                name="coupon_applies_to_an_interval",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(times_redeemed__lte=F("max_redemptions")),
                name="coupon_redemptions_within_maximum",
            ),
        ]

    def __str__(self):
        return self.code

    @property
    def is_credit(self) -> bool:
        """Credit coupons grant startup credit; they are not discounts (C2)."""
        return self.credit_amount is not None

    @property
    def can_follow_up(self) -> bool:
        """C5, C6: the system may apply it when another runs out: a discount, and not a
        non-profit one, which goes only with a proof support approved (`catalogue` refuses
        both as a follow-up, and a follow-up's change into either)."""
        return self.kind != self.Kind.NONPROFIT and not self.is_credit

    def covers(self, interval: str) -> bool:
        return self.applies_annual if interval == "annual" else self.applies_monthly

    @property
    def intervals(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, on in (("monthly", self.applies_monthly), ("annual", self.applies_annual))
            if on
        )

    def runs_out_on(self, redeemed_on):
        """C5: a repeating coupon runs out on the 1st of the month after its N billing months;
        a `once` coupon when an invoice uses it (not known yet); a forever coupon never."""
        if self.duration == self.Duration.REPEATING:
            return add_months(month_start(redeemed_on), self.duration_months)
        return None

    @property
    def value_display(self) -> str:
        if self.percent_off is not None:
            return f"{self.percent_off.normalize():f}% off"
        if self.amount_off is not None:
            return f"{money(self.amount_off)} off"
        return f"{money(self.credit_amount)} credit a year"

    @property
    def duration_display(self) -> str:
        if self.duration == self.Duration.REPEATING:
            return f"{self.duration_months} month{'s' if self.duration_months != 1 else ''}"
        return self.get_duration_display()

    def active_on(self, day: date) -> bool:
        """D3: whether it was switched on on `day`: its last switch by then; before its first
        switch, the other way round; never switched, as it is now."""
        switches = self._switches
        active = not switches[0][1] if switches else self.active
        for on, switched_on in switches:
            if on > day:
                break
            active = switched_on
        return active

    @cached_property
    def _switches(self) -> list[tuple[date, bool]]:
        return list(self.switches.order_by("on", "id").values_list("on", "active"))


class CouponSwitch(models.Model):
    """D3, C5: a coupon switched on or off, from a day on. The clock decides a follow-up by
    whether it was on when the other coupon ran out, so a switch entered while the clock lags
    changes nothing it would have done day by day (D4). `Coupon.active` is how it is now."""

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="switches")
    on = models.DateField()
    active = models.BooleanField()

    class Meta:
        ordering = ["on", "id"]
        indexes = [models.Index(fields=["coupon", "on"], name="coupon_switch_by_day")]

    def __str__(self):
        return f"{self.coupon} switched {'on' if self.active else 'off'} on {day(self.on)}"


class Redemption(models.Model):
    """C2, C5: a coupon given to a workspace, once ever (a unique constraint).

    A discount applies from `started_month` (the month of `redeemed_on`) until it runs out
    (`runs_out_on`: the month after a repeating coupon's last one, or the issue date of the
    invoice a `once` coupon went to) or is removed. The billing clock then ends it and applies
    the coupon's follow-up, dated the day it ran out.
    """

    Status = RedemptionStatus

    workspace = models.ForeignKey(
        "billing.Workspace", on_delete=models.PROTECT, related_name="coupon_redemptions"
    )
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    redeemed_on = models.DateField()
    started_month = models.DateField(help_text="The first billing month it applies to.")
    runs_out_on = models.DateField(
        null=True,
        blank=True,
        help_text="A repeating coupon: the 1st of the month after the last month it covers (the "
        "invoice issued that day bills the month before, discounted). A once coupon: the day of "
        "the invoice it went to. Empty: not known yet.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    ended_on = models.DateField(null=True, blank=True)
    by = acting_user(help_text="Empty when applied by the system.")
    reason = models.TextField(blank=True)
    is_follow_up = models.BooleanField(default=False)
    follows = optional_link("self", related_name="+")
    override_reason = models.TextField(
        blank=True, help_text="S3: why the startup-program refusal (E4) was overridden."
    )
    partner = optional_link(AcceleratorPartner, related_name="+")
    campaign = optional_link(
        "Campaign",
        related_name="redemptions",
        help_text="G3: the campaign that notified the workspace of this coupon.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["-redeemed_on", "-id"]
        permissions = [("remove_discount", "Can remove a workspace's active discount")]
        indexes = [
            models.Index(fields=["status", "runs_out_on"]),
            models.Index(fields=["-redeemed_on", "-id"]),  # the redemption list's order
        ]
        constraints = [
            # C2: a workspace receives each coupon once, ever.
            models.UniqueConstraint(
                fields=["workspace", "coupon"], name="one_redemption_per_workspace_and_coupon"
            ),
            models.CheckConstraint(
                condition=Q(status=RedemptionStatus.ACTIVE, ended_on__isnull=True)
                | Q(
                    status__in=[RedemptionStatus.ENDED, RedemptionStatus.REMOVED],
                    ended_on__isnull=False,
                ),
                name="redemption_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(started_month__day=1), name="redemption_started_month_is_first"
            ),
            models.CheckConstraint(
                condition=Q(is_follow_up=False, follows__isnull=True)
                | Q(is_follow_up=True, follows__isnull=False),
                name="redemption_follow_up_names_predecessor",
            ),
        ]

    def __str__(self):
        return f"{self.coupon.code} for {self.workspace.slug}"


class DiscountApplication(models.Model):
    """Which invoice got which redemption's discount, and how much (C4, C5). Written in the
    invoice's issuing transaction; never changed, so it needs no history of its own."""

    invoice = models.OneToOneField(
        "billing.Invoice", on_delete=models.PROTECT, related_name="coupon_discount"
    )
    redemption = models.ForeignKey(
        Redemption, on_delete=models.PROTECT, related_name="applications"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="discount_applied_positive"),
        ]

    def __str__(self):
        return f"{self.redemption.coupon.code} on {self.invoice.number}: {money(self.amount)}"


# C6: a random stored name under the private media root (billing.documents). Migration 0001
# names it by this path.
proof_upload_to = PrivateUploadTo("nonprofit-proofs")


class NonprofitProof(models.Model):
    """C6: a document proving non-profit status, reviewed by support. Kept in private storage
    and served only through a permission-checked view."""

    Status = ProofStatus

    workspace = models.ForeignKey(
        "billing.Workspace", on_delete=models.PROTECT, related_name="nonprofit_proofs"
    )
    document = models.FileField(upload_to=proof_upload_to, max_length=200)
    content_type = models.CharField(max_length=50, editable=False)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    submitted_on = models.DateField()
    submitted_by = acting_user()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    reviewed_by = acting_user()
    reviewed_on = models.DateField(null=True, blank=True)
    reason = models.TextField(blank=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["-submitted_on", "-id"]
        verbose_name = "non-profit proof"
        permissions = [
            ("review_nonprofitproof", "Can approve or reject proofs of non-profit status")
        ]
        constraints = [
            one_of(ProofStatus, name="nonprofit_proof_status_valid"),
            dated_decision(
                undecided=ProofStatus.SUBMITTED,
                date_field="reviewed_on",
                name="nonprofit_proof_reviewed_on_with_review",
            ),
            models.CheckConstraint(
                condition=~Q(status=ProofStatus.REJECTED) | ~Q(reason=""),
                name="nonprofit_proof_rejection_has_reason",
            ),
        ]

    def __str__(self):
        return f"Non-profit proof {self.pk} for {self.workspace.slug}"


class CreditGrantQuerySet(models.QuerySet):
    def valid_on(self, day):
        """CR1, CR3, S4: the grants valid on `day`: from their first day up to, not including,
        their end, and not lapsed early by a closure (W1: lapsed on the closure's day)."""
        return self.filter(valid_from__lte=day, valid_until__gt=day).exclude(lapsed_on__lte=day)


class CreditGrant(models.Model):
    """CR1: startup credit for one program year, valid from `valid_from` up to, not including,
    `valid_until`. `remaining` is the sum of its ledger entries, kept on the row so the balance
    check is a constraint and a month close reads balances in one query."""

    workspace = models.ForeignKey(
        "billing.Workspace", on_delete=models.PROTECT, related_name="credit_grants"
    )
    year = models.PositiveSmallIntegerField(help_text="Program year: 1 or 2 (CR3).")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    remaining = models.DecimalField(max_digits=12, decimal_places=2)
    valid_from = models.DateField()
    valid_until = models.DateField(help_text="Exclusive: the same date a year later.")
    redemption = optional_link(Redemption, related_name="credit_grants")
    partner = optional_link(AcceleratorPartner, related_name="+")
    granted_by = acting_user()
    lapsed_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CreditGrantQuerySet.as_manager()

    # The ledger is the history of `remaining`: recording it here too would double every draw.
    history = history_with_reasons(excluded_fields=["remaining"])

    class Meta:
        ordering = ["-valid_from", "-id"]
        indexes = [
            models.Index(fields=["workspace", "valid_until"]),
            # The grant list's order, and the ledger list's (its entries by grant, in this
            # order): each sorted every grant to show one page.
            models.Index(fields=["-valid_from", "-id"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "year"], name="one_grant_per_program_year"
            ),
            models.CheckConstraint(condition=Q(year__in=[1, 2]), name="grant_year_one_or_two"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="grant_amount_positive"),
            # CR2: a balance never goes below zero (nor above what was granted).
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=F("amount")),
                name="grant_balance_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("valid_from")), name="grant_validity_not_empty"
            ),
        ]

    def __str__(self):
        return f"Year {self.year} credit for {self.workspace.slug}: {money(self.amount)}"

    def valid_on(self, day) -> bool:
        return self.valid_from <= day < self.valid_until


class CreditLedgerEntry(models.Model):
    """CR2, CR3, I3: every movement of a grant's balance. The grant's balance is the sum of
    its entries: the grant itself (+), draws by invoices (−), what a voided invoice gives back
    of its draw (+) and the lapse at the year's end (−). Rows are only ever added."""

    Kind = LedgerKind

    grant = models.ForeignKey(CreditGrant, on_delete=models.PROTECT, related_name="entries")
    invoice = optional_link("billing.Invoice", related_name="credit_draws")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["grant", "on", "id"]
        verbose_name_plural = "credit ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=LedgerKind.GRANT, amount__gt=0, invoice__isnull=True)
                | Q(kind=LedgerKind.DRAW, amount__lt=0, invoice__isnull=False)
                | Q(kind=LedgerKind.RETURN, amount__gt=0, invoice__isnull=False)
                | Q(kind=LedgerKind.LAPSE, amount__lt=0, invoice__isnull=True),
                name="ledger_entry_sign_follows_kind",
            ),
            # An invoice draws on a grant once, and a void gives that draw back once.
            models.UniqueConstraint(
                fields=["grant", "invoice", "kind"],
                condition=Q(invoice__isnull=False),
                name="one_draw_and_return_per_grant_and_invoice",
            ),
            models.UniqueConstraint(
                fields=["grant", "kind"],
                condition=Q(kind__in=[LedgerKind.GRANT, LedgerKind.LAPSE]),
                name="one_grant_and_one_lapse_entry",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {money(self.amount)} on {day(self.on)}"


class Campaign(models.Model):
    """G1–G3: a promotion coupon announced by email to an audience of workspaces (a filter:
    see `coupons.campaigns.AUDIENCE_FILTERS`). Staff still apply the coupon (C2); a redemption
    for a notified workspace is attributed to the campaign."""

    Status = CampaignStatus

    name = models.CharField(max_length=200)
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="campaigns")
    subject = models.CharField(max_length=200)
    message = models.TextField()
    audience = models.JSONField(default=dict, blank=True, help_text="The audience's filters.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = acting_user()
    created_at = models.DateTimeField(auto_now_add=True)
    launched_on = models.DateField(null=True, blank=True, help_text="The first launch.")
    launched_by = acting_user()
    launches = models.PositiveIntegerField(default=0)

    history = history_with_reasons()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("launch_campaign", "Can launch a promotion campaign")]
        constraints = [
            one_of(CampaignStatus, name="campaign_status_valid"),
            models.CheckConstraint(
                condition=Q(status=CampaignStatus.DRAFT, launched_on=None)
                | Q(status=CampaignStatus.LAUNCHED, launched_on__isnull=False),
                name="campaign_launched_on_with_launch",
            ),
        ]

    def __str__(self):
        return self.name


class CampaignRecipient(models.Model):
    """G2: a workspace a campaign reaches, once ever (a constraint): added by a launch, emailed
    by a worker's batch through the outbox (`email` is set in the batch that queues it)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="recipients")
    workspace = models.ForeignKey(
        "billing.Workspace", on_delete=models.PROTECT, related_name="campaign_notices"
    )
    added_on = models.DateField(help_text="The day of the launch that reached it.")
    email = models.OneToOneField(
        "billing.OutboundEmail",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaign_recipient",
    )

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "workspace"], name="one_notice_per_campaign_and_workspace"
            ),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "id"], condition=Q(email=None), name="campaign_unsent_idx"
            ),
        ]

    def __str__(self):
        return f"{self.campaign} → workspace {self.workspace_id}"
