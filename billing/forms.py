import csv
import io
from decimal import Decimal

from django import forms

from billing.admin_toolkit import ReasonField
from billing.models import Interval
from billing.months import parse_month

MAX_USAGE_FILE_BYTES = 20 * 1024 * 1024


class ChangePlanForm(forms.Form):
    PLAN_CHOICES = [
        ("team:monthly", "Team, billed monthly"),
        ("team:annual", "Team, billed annually"),
        ("free", "Free (cancel or downgrade)"),
    ]
    plan = forms.ChoiceField(choices=PLAN_CHOICES, widget=forms.RadioSelect)
    reason = ReasonField()


class ChangeIntervalForm(forms.Form):
    interval = forms.ChoiceField(choices=Interval.choices, widget=forms.RadioSelect)
    reason = ReasonField()


class PaymentMethodForm(forms.Form):
    brand = forms.CharField(max_length=20, required=False, help_text="E.g. Visa.")
    last4 = forms.RegexField(
        regex=r"^\d{4}$",
        required=False,
        label="Last four digits",
        error_messages={"invalid": "Enter the last four digits only, e.g. 4242."},
    )


class UnlockForm(forms.Form):
    reason = ReasonField(help_text="Kept in the workspace's history and shown to other agents.")


class RecordUsageForm(forms.Form):
    month = forms.CharField(max_length=7, help_text="YYYY-MM")
    mtus = forms.IntegerField(min_value=0, label="MTUs")

    def clean_month(self):
        try:
            return parse_month(self.cleaned_data["month"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class UsageImportForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with the columns workspace,month,mtus (month as YYYY-MM)."
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_USAGE_FILE_BYTES:
            raise forms.ValidationError("The file is larger than 20 MB; split it.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text; export it as CSV.") from None
        return text


def usage_rows(text: str):
    """`(line_number, row)` pairs from a usage CSV; the header must name the three columns."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"workspace", "month", "mtus"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(
            "The header must be workspace,month,mtus; missing: " + ", ".join(sorted(missing))
        )
    return [(reader.line_num, row) for row in reader]


class VoidInvoiceForm(forms.Form):
    reason = ReasonField(help_text="Kept on the invoice.")


class CreditNoteRequestForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
    reason = ReasonField(help_text="Finance sees it.")
