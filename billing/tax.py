"""Tax rates by jurisdiction and date, and exemption certificates (SPEC X1–X4).

A `TaxTable` loads every rate once (the table is small: a few hundred rows), and the exemption
certificates once on first need, so a month close resolves thousands of invoices without a
query each.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django_countries import countries

from billing.audit import records_why, require_reason
from billing.clock import refuse_issued_already, refuse_processed, refuse_too_far_ahead
from billing.contact_details import hidden_character
from billing.errors import BillingError, refuse_problems
from billing.formatting import day as on
from billing.formatting import rate as rate_text
from billing.models import Invoice, TaxExemption, TaxRate, Workspace
from billing.months import day_problem
from billing.regions import TAX_REGIONS
from billing.turns import take_turns

# The notes on an invoice's `tax_note` that say tax was waived start with this (reports and
# the finance filters find exempt invoices by it).
EXEMPT_NOTE_PREFIX = "exempt: "
NOTE_MAX_LENGTH = 300


def region_codes_help() -> str:
    """Which codes a region is, where tax depends on it: for the forms that ask for one."""
    return "; ".join(
        f"in {country}, a {regions.code} code (e.g. {regions.example})"
        for country, regions in TAX_REGIONS.items()
    )


def check_business_region(country: str, region, problems: list[str]) -> str:
    """X1: a workspace's region as kept (trimmed, upper case), for its `country` (a code as
    kept). Where tax depends on it, one of the country's codes, required; elsewhere optional
    and free, within its column. What is wrong goes to `problems`."""
    region = str(region or "").strip().upper()
    regions = TAX_REGIONS.get(country)
    if regions is None:
        limit = Workspace._meta.get_field("business_region").max_length
        if len(region) > limit:
            problems.append(f"A region has at most {limit} characters, not “{region}”.")
    elif not region:
        problems.append(f"{regions.business} (e.g. {regions.example}): {regions.expected()}")
    elif region not in regions.names:
        problems.append(f"“{region}” is not a {regions.code} code: {regions.expected()}")
    return region


class RegionNotACode(BillingError):
    """X1: a workspace's region where tax depends on it is not one of the country's codes (a
    row kept before they were required: "ONT", "Narnia"). Its invoices are not issued: the
    country-wide rate (5 % GST for Ontario's 13 % HST) would be charged with no warning."""


def region_is_a_code(country: str, region: str) -> bool:
    """X1: whether a location as kept can be taxed: where tax depends on the region, it is one
    of the country's codes."""
    regions = TAX_REGIONS.get(country)
    return regions is None or region in regions.names


def refuse_region_not_a_code(country: str, region: str) -> None:
    """X1: refuse to tax a workspace at `country`/`region` (as kept) when tax depends on the
    region and it is none of the country's codes."""
    if region_is_a_code(country, region):
        return
    regions = TAX_REGIONS[country]
    what = f"“{region}” is not" if region else "An empty region is not"
    raise RegionNotACode(
        f"{what} a {regions.code} code: {regions.expected()} No invoice is issued at the "
        "country-wide rate: correct the workspace's business region first"
    )


def region_name(country: str, region: str) -> str:
    """The name of a region tax depends on (Ontario for CA-ON); any other region as it is."""
    regions = TAX_REGIONS.get(country)
    return regions.names.get(region, region) if regions else region


def rate_as_invoiced(invoice) -> str:
    """An invoice's tax rate as people read it: "7.25 %"; "exempt" where a certificate waived
    it (stored as a rate of 0, X4: the tax note names the certificate); "no rate (no tax)"."""
    if invoice.tax_rate is None:
        return "no rate (no tax)"
    if invoice.tax_note.startswith(EXEMPT_NOTE_PREFIX):
        return "exempt"
    return rate_text(invoice.tax_rate)


@dataclass(frozen=True)
class TaxDecision:
    country: str
    region: str
    rate: Decimal | None
    name: str = "Tax"
    note: str = ""

    @property
    def exempt(self) -> bool:
        return self.note.startswith(EXEMPT_NOTE_PREFIX)


@dataclass(frozen=True)
class Certificate:
    """What the tax decision needs of a `TaxExemption`, with its state on any past day."""

    pk: int
    region: str
    reason: str
    status: str
    submitted_on: date
    review_started_on: date | None
    decided_on: date | None
    valid_from: date
    valid_to: date | None

    def status_on(self, day: date) -> str | None:
        """The review status the certificate had on `day`; None before it was submitted."""
        if day < self.submitted_on:
            return None
        if self.decided_on is not None and self.decided_on <= day:
            return self.status
        if self.review_started_on is not None and self.review_started_on <= day:
            return TaxExemption.Status.IN_REVIEW
        return TaxExemption.Status.SUBMITTED

    def valid_on(self, day: date) -> bool:
        """X4: from its first day through its last, both included."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def validity(self) -> str:
        if self.valid_to is None:
            return f"valid from {on(self.valid_from)}"
        return f"valid {on(self.valid_from)} to {on(self.valid_to)}"


def _jurisdiction_label(country: str, region: str) -> str:
    if country == "US":
        return region or "US"
    return f"{country}-{region}" if region else country


def certificate_misses(certificate_region: str, country: str, region: str) -> str | None:
    """X1, X4: why a certificate for the US state `certificate_region` waives no tax of a
    workspace located in `country`/`region` ("covers HI, not CA"), or None when it covers it."""
    if country == "US" and certificate_region == region:
        return None
    return f"covers {certificate_region}, not {_jurisdiction_label(country, region)}"


def _shorten(note: str) -> str:
    return note if len(note) <= NOTE_MAX_LENGTH else note[: NOTE_MAX_LENGTH - 1] + "…"


class TaxTable:
    def __init__(self):
        self._rates = defaultdict(list)  # (country, region) → [(valid_from, rate, name)] sorted
        for rate in TaxRate.objects.order_by("valid_from"):
            self._rates[(str(rate.country), rate.region)].append(
                (rate.valid_from, rate.rate, rate.name)
            )
        self._certificates = None  # workspace id → [Certificate], loaded on first need
        # A month close decides thousands of invoices for a handful of jurisdictions and one
        # day: the decision of a workspace without certificates depends on those alone.
        self._plain = {}  # (country, region, day) → TaxDecision

    def _in_force(self, country: str, region: str, day: date):
        rates = self._rates.get((country, region), [])
        index = bisect_right([valid_from for valid_from, _, _ in rates], day)
        return rates[index - 1] if index else None

    def _certificates_of(self, workspace_id: int) -> list[Certificate]:
        if self._certificates is None:
            # One query for the whole table's life: a month close chunk prices 2,000 invoices.
            self._certificates = defaultdict(list)
            rows = TaxExemption.objects.order_by("pk").values_list(
                "workspace_id",
                "pk",
                "region",
                "reason",
                "status",
                "submitted_on",
                "review_started_on",
                "decided_on",
                "valid_from",
                "valid_to",
            )
            for workspace_id_, *fields in rows:
                self._certificates[workspace_id_].append(Certificate(*fields))
        return self._certificates.get(workspace_id, [])

    def decide(self, workspace: Workspace, day: date) -> TaxDecision:
        """X1, X2: the rate of the business location in force on `day`; none → no tax.

        A region's own rate wins; a country-wide rate (VAT, GST) applies where the region has
        none. X4: where a rate applies, an approved certificate for the invoice's state,
        approved on or before `day` and valid on it, waives the tax; the note says why the tax
        was waived, or why a certificate the workspace holds did not waive it.

        A region tax depends on that is not one of its country's codes is refused
        (`RegionNotACode`): taxing it at the country-wide rate would be wrong with no warning.
        """
        country, region = str(workspace.business_country), workspace.business_region
        key = (country, region, day)
        plain = self._plain.get(key)
        if plain is None:
            refuse_region_not_a_code(country, region)
            plain = self._plain[key] = self._decide(country, region, day, certificates=[])
        if not plain.rate:
            return plain  # no rate, or a 0 % one (how finance stops a tax): nothing to waive
        certificates = self._certificates_of(workspace.pk)
        return self._decide(country, region, day, certificates) if certificates else plain

    def _decide(self, country: str, region: str, day: date, certificates) -> TaxDecision:
        found = self._in_force(country, region, day) if region else None
        if found is None:
            found = self._in_force(country, "", day)
        if found is None:
            return TaxDecision(country, region, None)
        _, rate, name = found
        waiver, notes = self._exemption(certificates, country, region, day)
        if waiver is not None:
            note = f"{EXEMPT_NOTE_PREFIX}certificate #{waiver.pk} ({waiver.reason})"
            return TaxDecision(country, region, Decimal("0.000"), name, note)
        return TaxDecision(country, region, rate, name, _shorten("; ".join(notes)))

    def _exemption(self, certificates: list[Certificate], country: str, region: str, day: date):
        """X4: (the certificate that waives the tax or None, notes on the others). The notes on
        certificates for the invoice's own jurisdiction come first: they say why its tax was
        still charged, and a note too long to keep whole is cut from the end (`_shorten`)."""
        own, elsewhere = [], []
        for cert in certificates:
            status = cert.status_on(day)
            if status is None:
                continue  # submitted after the issue date: it did not exist yet
            if misses := certificate_misses(cert.region, country, region):
                if status != TaxExemption.Status.REJECTED:
                    elsewhere.append(f"certificate #{cert.pk} {misses}")
                continue
            if status == TaxExemption.Status.APPROVED:
                if cert.valid_on(day):
                    return cert, []
                own.append(f"certificate #{cert.pk} {cert.validity()}, not on {on(day)}")
            elif status == TaxExemption.Status.REJECTED:
                own.append(f"certificate #{cert.pk} rejected on {on(cert.decided_on)}")
            else:
                own.append(f"certificate #{cert.pk} still in review on {on(day)}")
        return None, own + elsewhere


def _jurisdiction(country, region, name) -> tuple[str, str, str]:
    """Where a rate applies, as workspaces name it (an ISO 3166-1 country; where tax depends on
    the region, one of its codes or none for a country-wide rate), and its name: else refused,
    every problem named. A rate for a place no workspace can be in would be stored and never
    charged."""
    country, region, name = (str(v or "").strip() for v in (country, region, name))
    country, region = country.upper(), region.upper()
    regions = TAX_REGIONS.get(country)
    problems = []
    if country not in countries:
        problems.append(f"“{country}” is not an ISO 3166-1 country code.")
    elif region and regions is None:
        problems.append(
            f"A rate in {countries.name(country)} is country-wide: leave the region empty "
            f"(rates by region are kept where workspaces name their region by code: "
            f"{', '.join(sorted(TAX_REGIONS))})."
        )
    elif region and region not in regions.names:
        problems.append(f"“{region}” is not a {regions.code} code: {regions.expected()}")
    elif not region and regions is not None and not regions.country_wide:
        problems.append(
            f"{countries.name(country)} has no {regions.tax} of its own: a rate names its "
            f"{regions.code} (e.g. {regions.example}). Without one it would tax every "
            f"workspace of a {regions.code} that has no rate of its own."
        )
    limit = TaxRate._meta.get_field("name").max_length
    if not name:
        problems.append("A tax rate needs a name (e.g. CA sales tax), shown on invoices.")
    elif len(name) > limit:
        problems.append(f"A tax rate's name has at most {limit} characters.")
    elif problem := hidden_character(name, "tax rate's name"):
        problems.append(problem)
    refuse_problems(problems)
    return country, region, name


def _percentage(value) -> Decimal:
    """A tax rate as typed: a percentage from 0 to 100 with at most three decimals (its
    column's), else refused with what was typed."""
    try:
        rate = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        rate = None
    if rate is None or not rate.is_finite():
        raise BillingError(f"A tax rate is a percentage between 0 and 100, not “{value}”.")
    if not Decimal(0) <= rate <= Decimal(100):
        raise BillingError(f"A tax rate is a percentage between 0 and 100, not {rate}.")
    if rate != rate.quantize(Decimal("0.001")):
        raise BillingError(f"A tax rate has at most three decimals (7.250), not “{value}”.")
    return rate


@records_why("Tax rate set")
@transaction.atomic
def set_tax_rate(country: str, *, region: str = "", rate, name: str, valid_from: date) -> TaxRate:
    """X2: a rate in force from `valid_from` until the jurisdiction's next one (replacing one
    that starts the same day). `rate` is in percent. R4: `reason` and `by` are kept."""
    if not isinstance(valid_from, date):
        raise BillingError("A tax rate needs the day it starts.")
    problem = day_problem(valid_from, "A tax rate's start")
    if problem:
        raise BillingError(f"{problem}.")
    refuse_too_far_ahead(valid_from, f"A tax rate from {on(valid_from)} is refused", things="rates")
    country, region, name = _jurisdiction(country, region, name)
    rate = _percentage(rate)
    _refuse_read_already(country, region, valid_from, "A tax rate")
    # The form sent twice, at once too (the second waits for the first's commit): the same
    # rate from the same day again changes nothing and keeps no second version (R4).
    take_turns("tax rate", f"{country}-{region} {valid_from}")
    same = TaxRate.objects.filter(
        country=country, region=region, valid_from=valid_from, rate=rate, name=name
    ).first()
    if same is not None:
        raise BillingError(f"{same} ({name}) is set already: nothing changes.")
    tax_rate, _ = TaxRate.objects.update_or_create(
        country=country,
        region=region,
        valid_from=valid_from,
        defaults={"rate": rate, "name": name},
    )
    return tax_rate


def _refuse_read_already(country: str, region: str, valid_from: date, what: str):
    """D2, D4: a rate from `valid_from` is set or withdrawn only while nothing has read it: no
    day from then processed by the clock, no invoice of its place issued from then on (a final
    or annual invoice ahead of the clock)."""
    refuse_processed(valid_from, what, past_a_close=True)
    invoices = Invoice.objects.filter(tax_country=country)
    refuse_issued_already(
        invoices.filter(tax_region=region) if region else invoices, valid_from, what
    )


def withdrawal_of_rate_refusal(tax_rate: TaxRate) -> str:
    """Why `tax_rate` cannot be withdrawn now, or "" (its page offers the button then)."""
    try:
        _refuse_read_already(
            str(tax_rate.country), tax_rate.region, tax_rate.valid_from, "Withdrawing a tax rate"
        )
    except BillingError as exc:
        return str(exc)
    return ""


@transaction.atomic
def withdraw_tax_rate(tax_rate: TaxRate, *, by, reason: str) -> None:
    """X2, R4: withdraw a rate nothing has read yet (a rate, a place or a day typed wrong):
    the rate before it applies on. Its history keeps it, with who withdrew it and why."""
    require_reason(reason, "Say why the rate is withdrawn: the reason is kept.")
    current = TaxRate.objects.select_for_update().filter(pk=tax_rate.pk).first()
    if current is None:
        raise BillingError(f"{tax_rate} was withdrawn already.")
    _refuse_read_already(
        str(current.country), current.region, current.valid_from, "Withdrawing a tax rate"
    )
    current._change_reason = f"Withdrawn: {reason.strip()}"
    current._history_user = by
    current.delete()
