"""S2: the five eligibility checks, each a pass or fail with a reason a reviewer can read."""

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal

from django_countries import countries

from billing.formatting import day, money
from billing.months import years_before
from startups.models import EligibleTerritory, StartupApplication

FUNDING_LIMIT = Decimal("5000000.00")
# E5: words that only say what kind of company it is, dropped from the end of a name.
LEGAL_SUFFIXES = frozenset(
    ("inc", "llc", "ltd", "gmbh", "sas", "sa", "bv", "co", "corp", "corporation", "limited")
)
# Marks inside a word ("O'Reilly", "S.A."): dropped, not read as a space between words.
IN_WORD_MARKS = re.compile(r"[.'’]")
KEY_LENGTH = 200  # the column's; a name's key can outgrow it ("ß" folds to "ss")


@dataclass(frozen=True)
class Check:
    id: str
    passed: bool
    reason: str

    def as_dict(self):
        return asdict(self)


def company_key(name: str) -> str:
    """E5 compares companies by name without case, accents, punctuation or a legal suffix at
    its end, in any script ("Café Labs, Inc." is "cafe labs"; "Acme S.A." is "Acme SA" is
    "acme"; "Limited Run Games" keeps its first word; "Яндекс Облако" is "яндекс облако"). A
    name that is nothing but a suffix keeps it; one with no letter or digit has no key.
    Invisible format characters (a soft hyphen, a zero-width joiner) are dropped, not read as
    a space: "Ac\u00adme" is "acme"."""
    folded = unicodedata.normalize("NFKD", name).casefold()
    seen = (c for c in folded if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    folded = IN_WORD_MARKS.sub("", "".join(seen))
    words = re.sub(r"[\W_]+", " ", folded).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)[:KEY_LENGTH]


def check_incorporation(incorporated: date, applied: date) -> Check:
    """E1: incorporated less than two years before the application date."""
    limit = years_before(applied, 2)
    if incorporated > limit:
        return Check(
            "E1",
            True,
            f"Incorporated {day(incorporated)}, less than two years before the "
            f"application date {day(applied)}",
        )
    return Check(
        "E1",
        False,
        f"Incorporated {day(incorporated)}, two years or more before the application date "
        f"{day(applied)}",
    )


def check_funding(total_funding: Decimal) -> Check:
    """E2: total funding raised at most $5,000,000.00."""
    if total_funding <= FUNDING_LIMIT:
        return Check(
            "E2", True, f"Raised {money(total_funding)}, within the {money(FUNDING_LIMIT)} limit"
        )
    return Check(
        "E2", False, f"Raised {money(total_funding)}, more than the {money(FUNDING_LIMIT)} limit"
    )


def check_territory(country: str) -> Check:
    """E3: the country is an eligible territory (a list staff can edit)."""
    name = dict(countries).get(str(country), str(country))
    if EligibleTerritory.objects.filter(country=country, active=True).exists():
        return Check("E3", True, f"{name} is an eligible territory")
    return Check("E3", False, f"{name} is not an eligible territory")


def check_no_prior_discount(workspace, received_any) -> Check:
    """E4: the workspace never received any coupon or credit. `received_any(workspace)` is
    asked of the coupons app: what it received first ("SPRING on 25 Jan 2026"), or ""."""
    if workspace is None:
        return Check("E4", False, "No workspace linked yet: link the applicant's workspace")
    if received := received_any(workspace):
        return Check(
            "E4", False, f"Workspace {workspace.slug} has received a coupon or credit: {received}"
        )
    return Check("E4", True, f"Workspace {workspace.slug} never received a coupon or credit")


def check_no_other_open_application(application: StartupApplication) -> Check:
    """E5: no other open application for the same workspace or company."""
    others = StartupApplication.objects.open().exclude(pk=application.pk)
    key = company_key(application.company_name)
    same_company = others.filter(company_key=key)
    if key and same_company.exists():
        other = same_company.first()
        return Check("E5", False, f"Application #{other.pk} for {other.company_name} is still open")
    if application.workspace_id and others.filter(workspace_id=application.workspace_id).exists():
        other = others.filter(workspace_id=application.workspace_id).first()
        return Check("E5", False, f"Application #{other.pk} for the same workspace is still open")
    return Check("E5", True, "No other open application for this company or workspace")


def evaluate(application: StartupApplication, received_any) -> list[Check]:
    """Every check, in order, for the application as it stands."""
    return [
        check_incorporation(application.incorporation_date, application.submitted_on),
        check_funding(application.total_funding),
        check_territory(application.country),
        check_no_prior_discount(application.workspace, received_any),
        check_no_other_open_application(application),
    ]
