"""Forms of the coupon admin pages and of the public accelerator application (C7). They check
input the way the services do (the services' own checks, called without writing anything), so
a person sees every problem next to the form instead of after it."""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.db.models import Q
from django_countries import countries

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import CheckedAutocomplete, ReasonField
from billing.contact_details import EMAIL_MAX_LENGTH
from billing.documents import DocumentField, clean_document
from billing.formatting import day
from billing.forms import (
    ForecastForm,
    PercentField,
    PlainDecimalField,
    PlainIntegerField,
    PublicForm,
    bounded_by_the_service,
)
from billing.models import Lock, Workspace
from billing.selectors import workspace_status
from coupons import partners, selectors, services
from coupons.catalogue import COUPON_FIELDS
from coupons.models import Campaign, Coupon, NonprofitProof, Redemption


def partner_choice_label(partner) -> str:
    if partner.status == partner.Status.ACTIVE:
        return partner.name
    return f"{partner.name} ({partner.get_status_display().lower()})"


class CouponForm(forms.ModelForm):
    """C1 in the admin: adding goes through `create_coupon`'s checks, changing through
    `update_coupon`'s (a redeemed coupon's discount cannot change)."""

    class Meta:
        model = Coupon
        fields = list(COUPON_FIELDS)
        field_classes = {
            "percent_off": PercentField,
            "amount_off": PlainDecimalField,
            "credit_amount": PlainDecimalField,
            "duration_months": PlainIntegerField,
            "max_redemptions": PlainIntegerField,
        }
        help_texts = {
            "follow_up": "Applied by the system when this one runs out; its redeem-by date "
            "and maximum do not apply to that.",
            "partner": "C7: a partner's coupon applies while the partner is active; one may be "
            "prepared while it has applied.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if partner := self.fields.get("partner"):
            # A partner that only applied (public form) or was made inactive says so in the
            # list, so staff do not tie a coupon to it unawares.
            partner.label_from_instance = partner_choice_label
        # The service bounds these in words ("runs for 1 month or more, not -3"; "more than 0
        # and at most 100"); the column's own bound stopped -3 first with "Ensure this value is
        # greater than or equal to 0", and 1000 % off with "no more than 3 digits before the
        # decimal point".
        bounded_by_the_service(self, self.Meta.field_classes)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if self.instance.pk is None:
            problems = services.new_coupon_problems(**self.new_coupon(data))
        else:
            problems = services.coupon_change_problems(self.instance, self.changes(data))
        for problem in problems:
            self.add_error(None, problem)
        return data

    def _post_clean(self):
        # The service's checks said it in words already; the constraints would say it again.
        if not self.errors:
            super()._post_clean()

    @staticmethod
    def intervals(data) -> list[str]:
        return [
            name
            for name, on in (
                ("monthly", data.get("applies_monthly")),
                ("annual", data.get("applies_annual")),
            )
            if on
        ]

    @classmethod
    def new_coupon(cls, data) -> dict:
        """The form's fields as `create_coupon` takes them (its two interval boxes are one
        `intervals`): the form's checks and the admin's save ask the service the same thing."""
        boxes = {"applies_monthly", "applies_annual"}
        fields = {name: data.get(name) for name in COUPON_FIELDS if name not in boxes}
        return {**fields, "intervals": cls.intervals(data)}

    def changes(self, data) -> dict:
        return {
            name: data[name]
            for name in self.changed_data
            if name in data and name in CouponForm.Meta.fields
        }


class ApplyCouponForm(forms.Form):
    """C2: support applies a coupon to a workspace found by name, slug or billing email. Only
    coupons that can be applied today are offered; the help text names the others and why.
    Startup-program coupons are never offered: their credit comes with a reviewer's approval of
    an application whose checks pass (S3, S4), not from this page."""

    workspace = forms.ModelChoiceField(Workspace.objects.all())
    coupon = forms.ModelChoiceField(Coupon.objects.none(), to_field_name="code")
    reason = ReasonField(help_text="Why it is applied (kept in the history), e.g. the ticket.")

    def __init__(self, *args, today, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        workspace = self.fields["workspace"]
        workspace.widget = CheckedAutocomplete(
            Redemption._meta.get_field("workspace"), admin_site or admin.site
        )
        workspace.widget.choices = workspace.choices
        coupon = self.fields["coupon"]
        coupon.queryset = (
            selectors.coupons_on_offer(as_of=today)
            .exclude(kind=Coupon.Kind.STARTUP_PROGRAM)
            .order_by("code")
        )
        coupon.label_from_instance = lambda c: (
            f"{c.code} — {c.name} ({c.value_display}, {c.duration_display.lower()})"
        )
        offered = set(coupon.queryset.values_list("pk", flat=True))
        left_out = [
            f"{c.code} ({self._why_not_offered(c, today)})"
            for c in Coupon.objects.exclude(pk__in=offered).order_by("code")
        ]
        if left_out:
            coupon.help_text = "Not offered, as they cannot be applied today: " + ", ".join(
                left_out
            )

    @staticmethod
    def _why_not_offered(coupon: Coupon, today) -> str:
        if coupon.kind == Coupon.Kind.STARTUP_PROGRAM:
            return "granted by approving a startup application"
        return selectors.coupon_status(coupon, as_of=today).lower()


class PartnerApprovalForm(forms.Form):
    credit_amount = PlainDecimalField(
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="Optional: the yearly startup credit for this partner's startups. "
        "Empty keeps the partner's own amount if it has one, else the STARTUP coupon's applies.",
    )
    note = forms.CharField(required=False, max_length=500)


class NonprofitProofForm(forms.ModelForm):
    """C6: support uploads the proof a customer sent; it is judged by its content."""

    class Meta:
        model = NonprofitProof
        fields = ["workspace", "document"]
        field_classes = {"document": DocumentField}

    def clean_document(self):
        return clean_document(self.cleaned_data.get("document"), what="proof")


class PartnerApplicationForm(PublicForm):
    """C7: the public application of an accelerator program (no login)."""

    honeypot = "fax"

    name = forms.CharField(label="Program name", max_length=200)
    website = forms.URLField(required=False, max_length=300, assume_scheme="https")
    contact_name = forms.CharField(label="Your name", max_length=200)
    contact_email = forms.EmailField(label="Your email", max_length=EMAIL_MAX_LENGTH)
    description = forms.CharField(
        label="About the program",
        required=False,
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Cohort size, stage of the startups, where you are.",
    )
    fax = forms.CharField(required=False, label="Leave this empty")

    def clean_name(self):
        name = self.cleaned_data["name"]
        if taken := partners.name_taken_problem(name):
            # Counted per address by the public form (R7): past a few, it answers nothing.
            self.told_what_exists = True
            raise forms.ValidationError(taken)
        return name


# --- Promotion campaigns (G1) and the forecast's coupon (FC1) ----------------------------------


class CampaignForm(forms.ModelForm):
    """G1: a promotion coupon, the email and the audience's filters (all optional). The
    service checks them (`coupons.campaigns.create_campaign`)."""

    ANY = [("", "Any")]
    plan = forms.ChoiceField(choices=ANY + [("free", "Free"), ("team", "Team")], required=False)
    interval = forms.ChoiceField(
        choices=ANY + [("monthly", "Monthly"), ("annual", "Annual")],
        required=False,
        label="Team interval",
    )
    country = forms.ChoiceField(choices=(), required=False, label="Business country")
    lock = forms.ChoiceField(choices=(), required=False)
    startup_member = forms.ChoiceField(
        choices=ANY + [("yes", "Program members"), ("no", "Not members")],
        required=False,
        label="Startup program",
    )
    created_after = forms.DateField(required=False, help_text="Created after this day.")
    created_before = forms.DateField(required=False, help_text="Created before this day.")
    min_mtus = PlainIntegerField(
        min_value=0, required=False, label="At least MTUs", help_text="In the last closed month."
    )
    max_mtus = PlainIntegerField(
        min_value=0, required=False, label="At most MTUs", help_text="In the last closed month."
    )

    AUDIENCE_FIELDS = [
        "plan",
        "interval",
        "country",
        "lock",
        "startup_member",
        "created_after",
        "created_before",
        "min_mtus",
        "max_mtus",
    ]

    class Meta:
        model = Campaign
        fields = ["name", "coupon", "subject", "message"]
        help_texts = {"message": "The email's text; the offer and how to get it follow it."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "coupon" in self.fields:  # not on the (read-only) page of a campaign made already
            # Walk 9: the promotions that can be applied today (C2), and a draft's own: an
            # inactive coupon was offered, then refused when the campaign was saved.
            on_offer = selectors.coupons_on_offer(as_of=toolkit.today()).filter(
                kind=Coupon.Kind.PROMOTION
            )
            self.fields["coupon"].queryset = Coupon.objects.filter(
                Q(pk__in=on_offer.values("pk")) | Q(pk=self.instance.coupon_id)
            ).order_by("code")
        self.fields["country"].choices = self.ANY + [(code, name) for code, name in countries]
        self.fields["lock"].choices = self.ANY + list(Lock.choices)
        if self.instance.pk:  # a draft being edited: its filters fill the audience's fields
            audience = dict(self.instance.audience or {})
            if "startup_member" in audience:
                audience["startup_member"] = "yes" if audience["startup_member"] else "no"
            for name in self.AUDIENCE_FIELDS:
                self.initial.setdefault(name, audience.get(name))

    @classmethod
    def audience_from(cls, data) -> dict:
        """The service's `audience` dict from the form's cleaned data."""
        audience = {
            name: data[name]
            for name in cls.AUDIENCE_FIELDS
            if data.get(name) not in (None, "") and name != "startup_member"
        }
        if data.get("startup_member"):
            audience["startup_member"] = data["startup_member"] == "yes"
        return audience


class CouponForecastForm(ForecastForm):
    """FC1's form on the workspace page, with the coupons app's proposed change: a coupon."""

    coupon = forms.ModelChoiceField(
        Coupon.objects.none(),
        to_field_name="code",
        required=False,
        help_text="For the proposed change “Apply a coupon”: those the workspace can receive "
        "today.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["change"].choices = [*ForecastForm.CHANGES, ("coupon", "Apply a coupon")]
        # Walk 9: an inactive or used-up coupon was offered, then refused once submitted (C2).
        self.fields["coupon"].queryset = (
            selectors.coupons_on_offer(as_of=toolkit.today())
            .filter(credit_amount__isnull=True)
            .order_by("code")
        )

    def offer_to(self, workspace, today):
        """C2 for this workspace: a coupon it cannot receive today is not offered (a walk: a
        workspace with a running discount was offered every coupon, and each was then refused
        with "one discount at a time"): none while a discount runs, not one it received, on
        Team only those for its billing interval, NONPROFIT only with an approved proof. The
        service still checks the rest (C2, D4) when the forecast applies it."""
        coupon = self.fields["coupon"]
        running = selectors.active_discount(workspace, as_of=today)
        if running is not None:
            coupon.queryset = Coupon.objects.none()
            coupon.help_text = (
                f"None: {workspace.name} has an active discount ({running.coupon.code}, from "
                f"{day(running.redeemed_on)}), and a workspace has one at a time (C2). Remove it "
                "first to forecast another."
            )
            return
        offered = coupon.queryset.exclude(
            pk__in=Redemption.objects.filter(workspace_id=workspace.pk).values("coupon_id")
        )
        status = workspace_status(workspace, as_of=today)
        if status["plan"] == "team":
            offered = offered.filter(**{f"applies_{status['interval']}": True})
        proven = NonprofitProof.objects.filter(
            workspace_id=workspace.pk,
            status=NonprofitProof.Status.APPROVED,
            reviewed_on__lte=today,
        )
        if not proven.exists():
            offered = offered.exclude(kind=Coupon.Kind.NONPROFIT)
        coupon.queryset = offered

    def clean(self):
        data = super().clean()
        if data.get("change") == "coupon" and not data.get("coupon"):
            self.add_error("coupon", "Choose the coupon to apply.")
        return data
