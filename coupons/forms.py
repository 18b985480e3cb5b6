"""Forms of the coupon admin pages and of the public accelerator application (C7). They check
input the way the services do (the services' own checks, called without writing anything), so
a person sees every problem next to the form instead of after it."""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from billing.admin_toolkit import ReasonField
from billing.documents import clean_document
from billing.models import Workspace
from coupons import services
from coupons.models import Coupon, NonprofitProof, Redemption


class CouponForm(forms.ModelForm):
    """C1 in the admin: adding goes through `create_coupon`'s checks, changing through
    `update_coupon`'s (a redeemed coupon's discount cannot change)."""

    class Meta:
        model = Coupon
        fields = [
            "code",
            "name",
            "kind",
            "percent_off",
            "amount_off",
            "credit_amount",
            "duration",
            "duration_months",
            "applies_monthly",
            "applies_annual",
            "redeem_by",
            "max_redemptions",
            "partner",
            "follow_up",
            "active",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if self.instance.pk is None:
            problems = services.new_coupon_problems(
                data.get("code"),
                data.get("name"),
                data.get("kind"),
                percent_off=data.get("percent_off"),
                amount_off=data.get("amount_off"),
                credit_amount=data.get("credit_amount"),
                duration=data.get("duration"),
                duration_months=data.get("duration_months"),
                redeem_by=data.get("redeem_by"),
                max_redemptions=data.get("max_redemptions"),
                intervals=self.intervals(data),
                follow_up=data.get("follow_up"),
                partner=data.get("partner"),
            )
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

    def changes(self, data) -> dict:
        return {
            name: data[name]
            for name in self.changed_data
            if name in data and name in CouponForm.Meta.fields
        }


class ApplyCouponForm(forms.Form):
    """C2: support applies a coupon to a workspace found by name, slug or billing email."""

    workspace = forms.ModelChoiceField(Workspace.objects.all())
    coupon = forms.ModelChoiceField(Coupon.objects.order_by("code"), to_field_name="code")
    reason = ReasonField(help_text="Why it is applied (kept in the history), e.g. the ticket.")

    def __init__(self, *args, admin_site=None, **kwargs):
        super().__init__(*args, **kwargs)
        workspace = self.fields["workspace"]
        workspace.widget = AutocompleteSelect(
            Redemption._meta.get_field("workspace"), admin_site or admin.site
        )
        workspace.widget.choices = workspace.choices
        self.fields["coupon"].label_from_instance = lambda c: (
            f"{c.code} — {c.name} ({c.value_display}, {c.duration_display.lower()})"
        )


class PartnerApprovalForm(forms.Form):
    credit_amount = forms.DecimalField(
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="Optional: the yearly startup credit for this partner's startups (C7). "
        "Empty keeps the STARTUP coupon's amount.",
    )
    note = forms.CharField(required=False, max_length=500)


class NonprofitProofForm(forms.ModelForm):
    """C6: support uploads the proof a customer sent; it is judged by its content."""

    class Meta:
        model = NonprofitProof
        fields = ["workspace", "document"]

    def clean_document(self):
        return clean_document(self.cleaned_data.get("document"), what="proof")


class PartnerApplicationForm(forms.Form):
    """C7: the public application of an accelerator program (no login)."""

    name = forms.CharField(label="Program name", max_length=200)
    website = forms.URLField(required=False, max_length=300, assume_scheme="https")
    contact_name = forms.CharField(label="Your name", max_length=200)
    contact_email = forms.EmailField(label="Your email")
    description = forms.CharField(
        label="About the program",
        required=False,
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Cohort size, stage of the startups, where you are.",
    )
    # A honeypot: hidden from people by CSS, filled in by bots.
    fax = forms.CharField(required=False, label="Leave this empty")

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("fax"))
