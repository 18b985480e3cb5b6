import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.validators import DecimalValidator, MaxValueValidator, MinValueValidator

from billing.admin_toolkit import ReasonField
from billing.models import Interval, Plan, PlanTerms
from billing.months import parse_month
from billing.plans import DATED_TERMS

# Streamed, and imported by a worker above billing.usage_import.INLINE_MAX_BYTES.
MAX_USAGE_FILE_BYTES = 1024 * 1024 * 1024

# A number written in full: a sign, digits ([0-9]: Python reads other scripts' too), one point.
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# "1,000" or "12,500.00": a thousands separator (refused, never guessed at).
THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")


class PlainDecimalField(forms.DecimalField):
    """An amount, rate or percentage a person types, written in full. Django's field reads
    whatever Python's Decimal reads: "1e2" became 100 (a 100 % tax rate, 100 % off) and was
    echoed as "1E+2"; NaN and Infinity are no number either. "1,000" is still refused (a
    separator is never guessed at), saying why instead of a bare "Enter a number."."""

    what = "amount"
    example = "1000.00"
    # Text, not a number box: a browser empties a number box holding "1,000" when the page
    # comes back with its error, or sends "1,000.50" as 1000.50 unasked (the third walk).
    widget = forms.TextInput(attrs={"inputmode": "decimal"})
    default_error_messages = {
        "invalid": "Enter the %(what)s as a plain number, e.g. %(example)s.",
        "exponent": "Write the number in full, e.g. %(example)s, not “%(value)s”.",
        "separator": (
            "Enter the %(what)s as a plain number without thousands separators, e.g. %(example)s."
        ),
        "decimal_comma": "Write the decimals after a point, e.g. %(example)s, not “%(value)s”.",
    }

    def __init__(self, *, what=None, example=None, **kwargs):
        self.what, self.example = what or self.what, example or self.example
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values or isinstance(value, Decimal | int):
            return super().to_python(value)  # not typed: an initial value
        text = str(value).strip()
        if not PLAIN_NUMBER.fullmatch(text):
            raise forms.ValidationError(
                self.error_messages[_miswritten(text)],
                code="invalid",
                params={"what": self.what, "example": self.example, "value": text},
            )
        return Decimal(text)

    def validate(self, value):
        if isinstance(value, Decimal) and not value.is_finite():  # an initial value, not typed
            raise forms.ValidationError(
                self.error_messages["invalid"],
                code="invalid",
                params={"what": self.what, "example": self.example},
            )
        super().validate(value)


def _miswritten(text: str) -> str:
    """Which of PlainDecimalField's messages fits `text`, a number not written in full."""
    if THOUSANDS.fullmatch(text):
        return "separator"
    if PLAIN_NUMBER.fullmatch(text.replace(",", ".", 1)):
        return "decimal_comma"
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return "invalid"
    return "exponent" if number.is_finite() and "e" in text.lower() else "invalid"


def bounded_by_the_service(form, names):
    """The fields `names` of `form` keep no bounds of their column (its digits, its integer
    type's range): their service bounds them in the rule's words ("between 1 and 100,000, not
    -1"), where the column's said "greater than or equal to 0" or "no more than 8 digits before
    the decimal point" first, of a figure the rule refuses for another reason."""
    column_bounds = (MinValueValidator, MaxValueValidator, DecimalValidator)
    for name in names:
        if field := form.fields.get(name):
            field.validators = [v for v in field.validators if not isinstance(v, column_bounds)]
            field.min_value = field.max_value = None
            field.widget.attrs.pop("min", None)
            field.widget.attrs.pop("max", None)


class PlainIntegerField(forms.IntegerField):
    """A count a person types (MTUs, months), in [0-9]: Django's field reads other scripts'
    digits too ("١٢٣" became 123, which the usage import refuses) and says only "Enter a whole
    number." of "12,500"."""

    widget = forms.TextInput(attrs={"inputmode": "numeric"})  # as PlainDecimalField's
    default_error_messages = {
        "invalid": "Enter a whole number in the digits 0–9, e.g. 12500.",
        "separator": "Enter the number without thousands separators, e.g. 12500.",
    }

    def to_python(self, value):
        if value in self.empty_values or isinstance(value, int):
            return super().to_python(value)  # not typed: an initial value
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            code = "separator" if THOUSANDS.fullmatch(text) and "." not in text else "invalid"
            raise forms.ValidationError(self.error_messages[code], code="invalid")
        return super().to_python(text)


class RateField(PlainDecimalField):
    """A tax rate in percent, e.g. 7.25."""

    what = "rate"
    example = "7.25"


class PercentField(PlainDecimalField):
    """A percentage, e.g. a coupon's 25 % off."""

    what = "percentage"
    example = "25"


class PublicForm(forms.Form):
    """A form the public fills in without logging in (`billing.views.public_form` serves it).
    The field named `honeypot` is hidden from people by CSS and filled in by bots; every other
    field is an answer the service takes, under the same name."""

    honeypot = ""
    # Set by a field whose error tells whether something exists (no workspace has that slug, a
    # program of that name has applied): the page counts those answers per address, so what
    # exists cannot be listed by trying names (R7).
    told_what_exists = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Out of the keyboard's reach and the browser's autofill: a person never fills it in.
        self.fields[self.honeypot].widget.attrs.update(autocomplete="off", tabindex="-1")

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get(self.honeypot))

    @classmethod
    def answer_names(cls) -> list[str]:
        return [name for name in cls.base_fields if name != cls.honeypot]

    def answers(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.answer_names()}


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
    """T2: the card staff record; its brand and last four digits are what the pages show."""

    brand = forms.CharField(max_length=20, help_text="E.g. Visa.")
    # [0-9], not \d: \d also takes other scripts' digits ("١٢٣٤").
    last4 = forms.RegexField(
        regex=r"^[0-9]{4}$",
        label="Last four digits",
        error_messages={"invalid": "Enter the last four digits only, e.g. 4242."},
    )


class UnlockForm(forms.Form):
    reason = ReasonField(help_text="Kept in the workspace's history and shown to other agents.")


class RemovePaymentMethodForm(forms.Form):
    reason = ReasonField(help_text="Kept in the workspace's history, e.g. the ticket number.")


class RecordUsageForm(forms.Form):
    # Longer than a month's 7 characters: "2026-12-01" is told it is no month in the form
    # YYYY-MM, not that it is too long.
    month = forms.CharField(max_length=100, help_text="YYYY-MM")
    mtus = PlainIntegerField(min_value=0, label="MTUs")
    # R4: a figure by hand changes what the month's invoice charges (M3).
    reason = ReasonField(
        help_text="Why it is recorded by hand, e.g. the ticket (kept in the usage's history)."
    )

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
        """The upload itself: the import streams it (a large one on a worker), never reading
        the whole file into memory here."""
        upload = self.cleaned_data["file"]
        if upload.size > MAX_USAGE_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_USAGE_FILE_BYTES // 1024**2:,} MB; split it."
            )
        return upload


class VoidInvoiceForm(forms.Form):
    reason = ReasonField(help_text="Kept on the invoice.")


class CreditNoteRequestForm(forms.Form):
    amount = PlainDecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
    reason = ReasonField(help_text="Finance sees it.")


class CloseWorkspaceForm(forms.Form):
    reason = ReasonField(
        help_text="W1: why it is closed, e.g. the customer's deletion request and the ticket. "
        "Kept in the history."
    )


class ForecastForm(forms.Form):
    """FC1: how many months, which MTUs to assume and, optionally, a change to compare."""

    CHANGES = [
        ("", "No change: today's state only"),
        ("team:monthly", "Team, billed monthly (upgrade or switch)"),
        ("team:annual", "Team, billed annually (upgrade or switch)"),
        ("free", "Cancel: move to Free"),
        ("close", "Close the workspace"),
    ]
    months = PlainIntegerField(min_value=1, max_value=12, initial=12, label="Months")
    mtus = forms.ChoiceField(
        choices=[
            ("last", "Last month's"),
            ("average3", "Average of the last three months (those since sign-up)"),
            ("given", "This figure"),
        ],
        initial="last",
        widget=forms.RadioSelect,
        label="MTUs each month",
    )
    given_mtus = PlainIntegerField(
        min_value=0, max_value=10_000_000_000, required=False, label="MTUs a month (figure)"
    )
    change = forms.ChoiceField(choices=CHANGES, required=False, label="Proposed change")
    assume_card = forms.BooleanField(
        required=False,
        label="Assume a card is added today",
        help_text="For a workspace with no card on file: the proposal as if the customer added "
        "one today (a move from Free to Team needs one, T2; a trial with one goes on as paid "
        "Team, T4).",
    )

    def clean(self):
        data = super().clean()
        if data.get("mtus") == "given" and data.get("given_mtus") is None:
            self.add_error("given_mtus", "Type the MTUs a month to assume.")
        return data

    def mtus_assumption(self):
        data = self.cleaned_data
        return data["given_mtus"] if data["mtus"] == "given" else data["mtus"]


class OverageRateField(PlainDecimalField):
    """A price per MTU over the allowance, e.g. 0.01."""

    example = "0.01"


class _PlanForm(forms.ModelForm):
    effective_on = forms.DateField(
        label="New terms apply from",
        required=False,
        help_text="The first day the changed terms apply, after the billing clock's last "
        "processed day and at most two years after it. A month is billed at the terms in "
        "force on its first day; an annual term at those of the day it starts.",
    )

    class Meta:
        model = Plan
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        bounded_by_the_service(self, DATED_TERMS)  # update_plan: PLAN_TERMS' bounds
        latest = self.instance.terms.order_by("effective_on").last() if self.instance.pk else None
        for name in DATED_TERMS:
            if latest is not None:
                self.initial[name] = getattr(latest, name)

    def clean(self):
        cleaned = super().clean()
        terms_changed = set(self.changed_data) & set(DATED_TERMS)
        if terms_changed and not cleaned.get("effective_on"):
            self.add_error("effective_on", "Say from which day the new terms apply.")
        if not terms_changed and cleaned.get("effective_on"):
            # Saved with only a name change, the day was dropped and the page said "changed
            # successfully" whatever it was (0001-01-01 included).
            self.add_error(
                "effective_on", "No term changed: change a term this day is for, or leave it empty."
            )
        return cleaned


# A plan's name and its terms from a day on (P1, P2): the terms' fields are PlanTerms', filled
# in from the plan's latest terms; only what changes is handed to `update_plan`.
PlanTermsForm = type(
    "PlanTermsForm",
    (_PlanForm,),
    forms.fields_for_model(
        PlanTerms,
        fields=DATED_TERMS,
        labels={"included_mtus": "Included MTUs a month"},
        field_classes={
            "monthly_price": PlainDecimalField,
            "annual_price": PlainDecimalField,
            "overage_rate": OverageRateField,
        },
    ),
)
