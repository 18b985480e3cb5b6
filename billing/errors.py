from billing.formatting import day

# A value quoted back in a refusal is cut here: a file's 100,000-character field is named, not
# repeated.
QUOTED_CHARACTERS = 40


def typed(value) -> str:
    """`value` as the person or file gave it, in quotes, cut short when long: “acme”,
    “aaaaaaaa…” (100,000 characters)."""
    text = str(value)
    if len(text) <= QUOTED_CHARACTERS:
        return f"“{text}”"
    return f"“{text[:QUOTED_CHARACTERS]}…” ({len(text):,} characters)"


class BillingError(Exception):
    """A refusal by a service; its message is written to be shown to a person as it is."""


class PaymentMethodRequired(BillingError):
    pass


class InvalidPlanChange(BillingError):
    pass


class InvalidDocument(BillingError):
    """X5, C6: an upload that is not a PDF, PNG or JPEG by its content, is empty or is over
    10 MB (`billing.documents.document_type`)."""


class UsageImportError(BillingError):
    """A usage file was refused whole; `errors` names the bad lines with their reasons and
    `bad_lines` counts them. When only the first of many are named, the last entry says so."""

    def __init__(self, errors, *, bad_lines: int | None = None):
        self.errors = list(errors)
        self.bad_lines = bad_lines if bad_lines is not None else len(self.errors)
        if self.bad_lines > len(self.errors):
            self.errors.append(
                f"… and {self.bad_lines - len(self.errors):,} more bad line(s): only the first "
                f"{len(self.errors):,} are listed."
            )
        shown = self.errors if len(self.errors) <= 20 else [*self.errors[:20], "…"]
        super().__init__(
            f"The usage file was not imported: {self.bad_lines:,} bad line(s). " + " ".join(shown)
        )


class DayAlreadyProcessed(BillingError):
    """D2: a change dated on or before the last day the billing clock processed."""


class ClockBehind(BillingError):
    """D4: a change dated past a month close the billing clock has not yet run."""


class WorkspaceClosed(BillingError):
    """W1: a change to a closed workspace; only reopening is accepted."""


def refuse_dated_before(as_of, earlier, what: str, event: str, error=BillingError):
    """A step dated before what it acts on came to be (a refund before its invoice, a decision
    before its request) is refused, naming both days: the books would show it first."""
    if as_of < earlier:
        raise error(f"{what} dated {day(as_of)} is before {event} ({day(earlier)}).")


def refuse_problems(problems, error=BillingError):
    """Refuse with every problem of the input named at once (a person mends them in one go),
    as `error`; nothing to refuse when `problems` is empty."""
    if problems:
        raise error(" ".join(problems))
