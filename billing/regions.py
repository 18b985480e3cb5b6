"""X1, X2: the countries whose tax depends on a region, and the codes a region there is (ISO
3166-2 without the country's prefix). Apart from `billing.tax`, which taxes by them, so that the
models can index the workspaces whose region is no code (`Workspace.Meta`) without importing it.
"""

import operator
from dataclasses import dataclass
from functools import reduce

from django.db.models import Q

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip

CANADIAN_PROVINCES = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories",
    "NU": "Nunavut", "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec",
    "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip


@dataclass(frozen=True)
class TaxRegions:
    """The subdivisions of a country whose tax depends on them: ISO 3166-2 codes without the
    country's prefix (CA, not US-CA) → names, and how messages call them."""

    names: dict[str, str]
    code: str  # "US state": what one code is
    business: str  # "A US business needs its state": a workspace there without one
    example: str
    tax: str  # the tax that depends on it
    # Whether the country also levies a tax of its own (Canada's GST): without one (US sales
    # tax is the states'), a rate without a region would tax every workspace of a state that
    # has no rate of its own.
    country_wide: bool = True

    def expected(self) -> str:
        return f"{self.tax} depends on it. Use one of {', '.join(sorted(self.names))}."


# X1, X2: where tax depends on the region, a region is one of these codes, on a workspace and on
# a rate alike: a region typed another way ("ONT" for ON) would match no rate, and the invoice
# would fall back to the country-wide one (5 % GST for Ontario's 13 % HST) with no warning.
# Elsewhere tax is country-wide (VAT, GST): a workspace's region there is the customer's own
# words, shown on documents, and a rate has no region, since nothing makes a workspace's words
# match it. A country whose tax comes to differ by region is added here, with its codes, first.
TAX_REGIONS = {
    "US": TaxRegions(
        US_STATES,
        "US state",
        "A US business needs its state",
        "CA",
        "sales tax",
        country_wide=False,
    ),
    "CA": TaxRegions(
        CANADIAN_PROVINCES,
        "Canadian province or territory",
        "A Canadian business needs its province or territory",
        "ON",
        "GST/HST",
    ),
}


def region_not_a_code(prefix: str = "") -> Q:
    """X1: the workspaces (through `prefix`, e.g. "workspace__") whose region is not one of
    their country's codes where tax depends on it."""
    return reduce(
        operator.or_,
        (
            Q(**{f"{prefix}business_country": country})
            & ~Q(**{f"{prefix}business_region__in": list(regions.names)})
            for country, regions in TAX_REGIONS.items()
        ),
    )
