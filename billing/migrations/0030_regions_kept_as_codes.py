"""X1, X2: regions kept before a region tax depends on had to be one of its country's codes
(US states, Canadian provinces: `billing.regions.TAX_REGIONS`) are kept as their codes: trimmed and
upper case ("ca " → CA), a name ("Ontario", "new york", "Québec") or a short form only one name
starts with ("ONT", "Calif.") by its code. An Ontario business kept as "ONT" matched no ON HST
rate (13 %) and was taxed at the GST's 5 %; a rate entered for "Ont." was never charged.

What cannot be told apart ("Narnia", "Miss." for Mississippi or Missouri, empty) stays as it was:
its invoices are not issued until someone corrects it (`tax.RegionNotACode`), and finance sees
how many there are (check_billing, the finance panel). Issued invoices are never edited (I3): one
issued with "ONT" keeps it, and its document says so (I5). Each change has a history row (R4);
a rate is left as it was where its jurisdiction has a rate that day already, or an invoice
issued since it started (as `set_tax_rate` refuses those)."""

import unicodedata

from django.db import migrations
from django.db.models import Q
from django.utils import timezone

# As `billing.tax` has them on the day of this migration.
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
REGIONS = {"US": US_STATES, "CA": CANADIAN_PROVINCES}
# Forms no name starts with that mean one place only: Canada's former codes and abbreviations.
OTHER_FORMS = {
    "US": {"WASHINGTONDC": "DC"},
    "CA": {"PQ": "QC", "NF": "NL", "NFLD": "NL", "LB": "NL", "PEI": "PE", "NWT": "NT",
           "ALTA": "AB", "YK": "YT"},
}  # fmt: skip
# A short form names a region when it is at least this long and one name alone starts with it.
SHORTEST_FORM = 3


def _letters(text: str) -> str:
    """Letters and digits only, upper case, accents folded: "Québec" → QUEBEC, "N.Y." → NY."""
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if c.isalnum() and not unicodedata.combining(c)).upper()


NAMES = {
    country: {_letters(name): code for code, name in names.items()}
    for country, names in REGIONS.items()
}


def code_for(country: str, region: str) -> str | None:
    """The code `region` (as kept) stands for in `country`, or None when it cannot be told."""
    codes = REGIONS[country]
    kept = region.strip().upper()
    if kept.startswith(f"{country}-"):  # ISO 3166-2 in full: CA-ON
        kept = kept[len(country) + 1 :].strip()
    letters = _letters(kept)
    for found in (kept, letters, OTHER_FORMS[country].get(letters), NAMES[country].get(letters)):
        if found in codes:
            return found
    if len(letters) >= SHORTEST_FORM:
        starts = {code for name, code in NAMES[country].items() if name.startswith(letters)}
        if len(starts) == 1:
            return starts.pop()
    return None


def _not_a_code(country_field: str, region_field: str) -> Q:
    no_code = Q(pk__in=[])
    for country, codes in REGIONS.items():
        no_code |= Q(**{country_field: country}) & ~Q(**{f"{region_field}__in": list(codes)})
    return no_code


def _reason(country: str, old: str, code: str) -> str:
    return f"Region kept as its code: “{old}” is {code} ({REGIONS[country][code]})"


def _history_rows(History, rows, reasons, when):
    """R4: a history row per changed row, a copy of it as it is now, with its reason."""
    copied = [f.attname for f in History._meta.concrete_fields if not f.name.startswith("history_")]
    return [
        History(
            **{name: getattr(row, name) for name in copied},
            history_date=when,
            history_type="~",
            history_user_id=None,
            history_change_reason=reasons[row.pk],
        )
        for row in rows
    ]


def _keep_workspace_regions(apps, when):
    Workspace = apps.get_model("billing", "Workspace")
    History = apps.get_model("billing", "HistoricalWorkspace")
    changed, reasons = [], {}
    kept = Workspace.objects.filter(_not_a_code("business_country", "business_region"))
    for workspace in kept.order_by("pk").iterator(chunk_size=2_000):
        country = str(workspace.business_country)
        code = code_for(country, workspace.business_region)
        if code is None:
            continue
        reasons[workspace.pk] = _reason(country, workspace.business_region, code)
        workspace.business_region = code
        changed.append(workspace)
    Workspace.objects.bulk_update(changed, ["business_region"], batch_size=2_000)
    History.objects.bulk_create(_history_rows(History, changed, reasons, when), batch_size=2_000)


def _keep_rate_regions(apps, when):
    TaxRate = apps.get_model("billing", "TaxRate")
    History = apps.get_model("billing", "HistoricalTaxRate")
    Invoice = apps.get_model("billing", "Invoice")
    taken = set(TaxRate.objects.values_list("country", "region", "valid_from"))
    changed, reasons = [], {}
    for rate in TaxRate.objects.filter(_not_a_code("country", "region")).exclude(region="").order_by("pk"):
        country = str(rate.country)
        code = code_for(country, rate.region)
        if code is None or (country, code, rate.valid_from) in taken:
            continue  # one rate a jurisdiction a day: the one kept as its code stays
        issued_since = Invoice.objects.filter(
            tax_country=country, tax_region=code, issue_date__gte=rate.valid_from
        ).exclude(status="void")
        if issued_since.exists():
            continue  # those invoices would have been taxed at it: never edited (I3)
        taken.add((country, code, rate.valid_from))
        reasons[rate.pk] = _reason(country, rate.region, code)
        rate.region = code
        changed.append(rate)
    TaxRate.objects.bulk_update(changed, ["region"])
    History.objects.bulk_create(_history_rows(History, changed, reasons, when))


def keep_regions_as_codes(apps, schema_editor):
    when = timezone.now()
    _keep_workspace_regions(apps, when)
    _keep_rate_regions(apps, when)


class Migration(migrations.Migration):
    dependencies = [("billing", "0029_search_trigram_indexes")]

    # Not undone: the words a region was kept as before are in each row's history, and codes
    # are what every form and service now require; turning them back into words would only
    # make those invoices fall back to the country-wide rate again.
    operations = [migrations.RunPython(keep_regions_as_codes, migrations.RunPython.noop)]
