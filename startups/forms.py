from datetime import date

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField

from billing.admin_toolkit import CheckedAutocomplete, ReasonField
from billing.contact_details import EMAIL_MAX_LENGTH
from billing.forms import PlainDecimalField, PublicForm
from billing.models import Workspace
from billing.roles import STARTUP_REVIEWERS
from startups import services
from startups.models import StartupApplication


class FundingField(PlainDecimalField):
    """S1, CR3: the total funding raised, refused in the service's words (`parse_funding`): a
    form never copies the rule, nor says Django's "Ensure this value is …"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Total funding raised (USD)")
        super().__init__(**kwargs)

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "min": "0", "step": "0.01"}

    def validate(self, value):
        super().validate(value)
        problems = []
        if value is not None and services.parse_funding(value, problems) is None:
            raise forms.ValidationError(problems)


class ApplicationForm(PublicForm):
    """S1, the public form. `nickname` is its honeypot."""

    honeypot = "nickname"

    company_name = forms.CharField(max_length=200)
    website = forms.URLField(max_length=300, assume_scheme="https")
    contact_name = forms.CharField(max_length=200)
    contact_email = forms.EmailField(max_length=EMAIL_MAX_LENGTH)
    incorporation_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="As on your incorporation papers."
    )
    total_funding = FundingField()
    # No country is preselected (the first choice is blank): an applicant who skips the field
    # is asked for it rather than sent in from Afghanistan.
    country = forms.ChoiceField(choices=lambda: [("", "Choose your country"), *countries])
    workspace = forms.SlugField(
        required=False,
        max_length=100,
        label="Existing workspace (slug)",
        help_text="If you already use the product: the name in your workspace's address.",
    )
    partner_name = forms.CharField(
        required=False, max_length=200, label="Accelerator or VC partner"
    )
    nickname = forms.CharField(required=False, label="Leave this empty")

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean_incorporation_date(self):
        day = self.cleaned_data["incorporation_date"]
        if problem := services.incorporation_date_problem(day, as_of=self.today):
            raise forms.ValidationError(problem)
        return day

    def clean_workspace(self):
        slug = self.cleaned_data["workspace"]
        if not slug:
            return None
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            # Counted per address by the public form (R7): past a few, it answers nothing.
            self.told_what_exists = True
            raise forms.ValidationError(
                "No workspace has that slug. Leave it empty if you are not a customer yet."
            )
        return workspace


def submit_answers(answers, **how):
    """S1: an application's answers, as the public form and staff entry take them, submitted
    through the service; `how` says when, from where and by whom."""
    names = ApplicationForm.answer_names()  # staff entry's form has more fields
    return services.submit_application(**{name: answers[name] for name in names}, **how)


class AssignForm(forms.Form):
    reviewer = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, groups__name=STARTUP_REVIEWERS).order_by(
            "username"
        ),
        help_text="A member of the Startup reviewers group.",
    )


class RejectForm(forms.Form):
    reason = ReasonField(
        help_text="Sent to the applicant.",
        when_empty="Say why: the reason is sent to the applicant.",  # S5
    )


class WithdrawForm(forms.Form):
    reason = ReasonField(help_text="Kept in the application's history.")


class ApproveForm(forms.Form):
    """S3, S4: the approval, with the workspace the credit goes to (linked here when the
    applicant did not name it), and S7's confirmation."""

    workspace = forms.ModelChoiceField(
        Workspace.objects.all(),
        label="Workspace",
        help_text="The workspace that gets the startup credit: search by name, slug or billing "
        "email.",
        error_messages={
            "required": "Choose the applicant's workspace: the credit is granted to it."
        },
    )
    # Capped as every reason is (ReasonField): kept in the application and its history.
    note = ReasonField(required=False, help_text="Optional; kept with the decision.")
    override_reason = ReasonField(
        required=False, help_text="Only when a check fails, and only if you may override: say why."
    )
    credits_scope_confirmed = forms.BooleanField(
        required=False,
        label="Approve although credits do not reach this workspace's invoices yet",
        help_text="Needed when the workspace is on Free or annual Team: credits apply to "
        "monthly Team invoices only.",
    )

    def __init__(self, *args, application=None, admin_site=None, **kwargs):
        initial = kwargs.setdefault("initial", {})
        if application is not None:
            initial.setdefault("workspace", application.workspace_id)
        super().__init__(*args, **kwargs)
        workspace = self.fields["workspace"]
        workspace.widget = CheckedAutocomplete(
            StartupApplication._meta.get_field("workspace"), admin_site or admin.site
        )
        workspace.widget.choices = workspace.choices


class BulkApproveForm(forms.Form):
    credits_scope_confirmed = forms.BooleanField(
        required=False,
        label="Approve those on Free or annual Team too",
        help_text="Their credits apply to monthly Team invoices only; without this box they "
        "are refused and reported.",
    )


class RenewalForm(forms.Form):
    """CR3: the startup's figures today, checked again against E2 and E3."""

    decision = forms.ChoiceField(
        choices=[("confirm", "Confirm: grant year two"), ("decline", "Decline")],
        widget=forms.RadioSelect,
    )
    total_funding = FundingField(label="Total funding")
    country = LazyTypedChoiceField(choices=countries)
    note = ReasonField(
        required=False, help_text="What you checked; needed to decline. Kept with the decision."
    )

    def __init__(self, *args, decline_only: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if decline_only:  # `renewal_refusal`: confirming is refused whatever the figures
            self.fields["decision"].choices = [("decline", "Decline")]
            self.fields["decision"].initial = "decline"
            for name in ("total_funding", "country"):
                self.fields[name].required = False

    def clean(self):
        data = super().clean()
        if data.get("decision") == "decline" and not data.get("note", "").strip():
            self.add_error("note", "Say why year two is declined.")
        return data
