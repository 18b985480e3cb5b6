"""The startup program (SPEC S, CR3): applications, their eligibility checks, the review
workflow, partner deals and the year-two renewal reviews."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django_countries.fields import CountryField

from billing.models import (
    acting_user,
    dated_decision,
    history_with_reasons,
    one_of,
    optional_link,
)


class EligibleTerritory(models.Model):
    """E3: where the program is open; data, editable by staff (seeded by a migration)."""

    country = CountryField(unique=True)
    active = models.BooleanField(default=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["country"]
        verbose_name_plural = "eligible territories"

    def __str__(self):
        return self.country.name


# The choices live at module level so the models' constraints can name them (`one_of`);
# each model also carries its own as `Status` (and `Source`).
class ApplicationStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ApplicationSource(models.TextChoices):
    PUBLIC_FORM = "public_form", "Public form"
    STAFF = "staff", "Entered by staff"


class RenewalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed: year two granted"
    DECLINED = "declined", "Declined"


class DealRequestStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    FULFILLED = "fulfilled", "Fulfilled"
    DECLINED = "declined", "Declined"


class ApplicationQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=StartupApplication.OPEN_STATUSES)


class StartupApplication(models.Model):
    Status = ApplicationStatus
    Source = ApplicationSource

    OPEN_STATUSES = (Status.SUBMITTED, Status.IN_REVIEW)

    company_name = models.CharField(max_length=200)
    # E5 compares companies by this: lower case, no punctuation, no legal suffix at its end.
    company_key = models.CharField(max_length=200, db_index=True, editable=False)
    website = models.URLField(max_length=300)
    contact_name = models.CharField(max_length=200)
    contact_email = models.EmailField()
    workspace = optional_link("billing.Workspace", related_name="startup_applications")
    incorporation_date = models.DateField()
    total_funding = models.DecimalField(max_digits=14, decimal_places=2, help_text="USD")
    country = CountryField()
    partner_name = models.CharField(
        max_length=200, blank=True, help_text="Accelerator or VC partner, as the applicant gave it."
    )
    # C7: a reviewer links the partner; its coupon and credit amount then apply on approval.
    partner = optional_link("coupons.AcceleratorPartner", related_name="startup_applications")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PUBLIC_FORM)
    submitted_on = models.DateField(db_index=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.SUBMITTED, db_index=True
    )
    assigned_to = acting_user()
    # The checks as last evaluated (S2): [{"id": "E1", "passed": true, "reason": "..."}, ...].
    checks = models.JSONField(default=list)
    failing_checks = models.CharField(
        max_length=30, blank=True, db_index=True, help_text="E.g. 'E1 E4'; empty when all pass."
    )
    decided_by = acting_user()
    decided_on = models.DateField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    rejection_reason = models.TextField(blank=True)
    override_reason = models.TextField(blank=True)

    objects = ApplicationQuerySet.as_manager()
    history = history_with_reasons()

    class Meta:
        ordering = ["-submitted_on", "-id"]
        permissions = [
            ("review_application", "Can review, approve and reject startup applications"),
            ("override_eligibility", "Can approve an application whose checks fail, with a reason"),
        ]
        indexes = [
            models.Index(fields=["status", "-submitted_on", "-id"], name="startup_queue_idx"),
            models.Index(fields=["country", "status"]),
            # One confirmation a day per address (S1): the day's applications from an address.
            models.Index(Upper("contact_email"), "submitted_on", name="startup_contact_day_idx"),
            # The reviewers' list sorted by company or funding, either way (ties by id): each
            # page sorted every application (50,000: 0.21–0.22 s a page, 0.10–0.11 s of it in
            # the database; bench/staff_walk.py). Applications are written one at a time.
            models.Index(fields=["company_name", "id"], name="startup_company_order_idx"),
            models.Index(fields=["total_funding", "id"], name="startup_funding_order_idx"),
        ]
        constraints = [
            one_of(ApplicationStatus, name="application_status_valid"),
            one_of(ApplicationSource, field="source", name="application_source_valid"),
            models.CheckConstraint(condition=Q(total_funding__gte=0), name="funding_not_negative"),
            # S3: an approval always has its workspace; a decision has who and when.
            models.CheckConstraint(
                condition=~Q(status=ApplicationStatus.APPROVED) | Q(workspace__isnull=False),
                name="approved_application_has_workspace",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[ApplicationStatus.APPROVED, ApplicationStatus.REJECTED])
                | Q(decided_on__isnull=False, decided_by__isnull=False),
                name="decision_has_who_and_when",
            ),
            # S3/S4: a workspace is accepted into the program once.
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(status=ApplicationStatus.APPROVED),
                name="one_approval_per_workspace",
            ),
        ]

    def __str__(self):
        return f"{self.company_name} ({self.get_status_display()})"

    @property
    def is_open(self):
        return self.status in self.OPEN_STATUSES


class Decision(models.Model):
    """What staff decide on a request (CR3's renewal, S6's deal): who, when and why."""

    decided_by = acting_user()
    decided_on = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        abstract = True


class RenewalReview(Decision):
    """CR3: at a member's anniversary, a reviewer confirms E2 and E3 to grant year two."""

    Status = RenewalStatus

    application = models.ForeignKey(
        StartupApplication, on_delete=models.PROTECT, related_name="renewals"
    )
    year = models.PositiveSmallIntegerField(default=2)
    due_on = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total_funding = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    country = CountryField(blank=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["due_on"]
        constraints = [
            models.UniqueConstraint(fields=["application", "year"], name="one_renewal_per_year"),
            # CR3: never more than two years.
            models.CheckConstraint(condition=Q(year=2), name="renewal_only_for_year_two"),
            one_of(RenewalStatus, name="renewal_status_valid"),
            dated_decision(undecided=RenewalStatus.PENDING, name="renewal_decided_on_date"),
        ]

    def __str__(self):
        return f"Year {self.year} review of {self.application.company_name}"


class PartnerDeal(models.Model):
    """S6: an offer from a partner company in the catalogue."""

    company = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    description = models.TextField()
    active = models.BooleanField(default=True)

    history = history_with_reasons()

    class Meta:
        ordering = ["company", "title"]

    def __str__(self):
        return f"{self.company}: {self.title}"


class DealRequest(Decision):
    """S6: an accepted startup asks for a deal of the catalogue; staff fulfil or decline it."""

    Status = DealRequestStatus

    application = models.ForeignKey(
        StartupApplication, on_delete=models.PROTECT, related_name="deal_requests"
    )
    deal = models.ForeignKey(PartnerDeal, on_delete=models.PROTECT, related_name="requests")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_on = models.DateField()

    history = history_with_reasons()

    class Meta:
        ordering = ["-requested_on"]
        constraints = [
            models.UniqueConstraint(fields=["application", "deal"], name="one_request_per_deal"),
            one_of(DealRequestStatus, name="deal_request_status_valid"),
            dated_decision(
                undecided=DealRequestStatus.REQUESTED, name="deal_request_decided_on_date"
            ),
        ]

    def __str__(self):
        return f"{self.deal} for {self.application.company_name}"
