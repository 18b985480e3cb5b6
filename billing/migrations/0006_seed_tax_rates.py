"""X2: seed the tax rates as editable data (finance changes them in the admin).

US state sales tax at each state's base (state-wide) rate; AK, DE, MT, NH and OR have no state
sales tax and get no rate, so invoices there carry no tax. A few VAT and GST countries with a
country-wide rate; Canada's HST provinces have their own rate, which wins over the federal GST
(see billing.tax.TaxTable). Every rate is in force from 2020-01-01 or from the day it changed,
until the jurisdiction's next rate starts. Local (county, city) rates are not modelled.
"""

from datetime import date
from decimal import Decimal

from django.db import migrations
from django.utils import timezone

START = date(2020, 1, 1)

US_STATE_RATES = {
    # state: rate in percent, or [(valid_from, rate), ...] where it changed since 2020
    "AL": "4.00", "AZ": "5.60", "AR": "6.50", "CA": "7.25", "CO": "2.90", "CT": "6.35",
    "DC": "6.00", "FL": "6.00", "GA": "4.00", "HI": "4.00", "ID": "6.00", "IL": "6.25",
    "IN": "7.00", "IA": "6.00", "KS": "6.50", "KY": "6.00",
    "LA": [(START, "4.45"), (date(2025, 1, 1), "5.00")],
    "ME": "5.50", "MD": "6.00", "MA": "6.25", "MI": "6.00", "MN": "6.875", "MS": "7.00",
    "MO": "4.225", "NE": "5.50", "NV": "6.85", "NJ": "6.625",
    "NM": [(START, "5.125"), (date(2022, 7, 1), "5.00"), (date(2023, 7, 1), "4.875")],
    "NY": "4.00", "NC": "4.75", "ND": "5.00", "OH": "5.75", "OK": "4.50", "PA": "6.00",
    "RI": "7.00", "SC": "6.00",
    "SD": [(START, "4.50"), (date(2023, 7, 1), "4.20")],
    "TN": "7.00", "TX": "6.25", "UT": "6.10", "VT": "6.00", "VA": "5.30", "WA": "6.50",
    "WV": "6.00", "WI": "5.00", "WY": "4.00",
}

OTHER_RATES = [
    # (country, region, name, [(valid_from, rate), ...])
    # The 2020 cut: 16 % from July to December.
    ("DE", "", "VAT", [(START, "19.00"), (date(2020, 7, 1), "16.00"), (date(2021, 1, 1), "19.00")]),
    ("GB", "", "VAT", [(START, "20.00")]),
    ("FR", "", "VAT", [(START, "20.00")]),
    ("NL", "", "VAT", [(START, "21.00")]),
    ("IE", "", "VAT", [(START, "23.00"), (date(2020, 9, 1), "21.00"), (date(2021, 3, 1), "23.00")]),
    ("AU", "", "GST", [(START, "10.00")]),
    ("NZ", "", "GST", [(START, "15.00")]),
    ("IN", "", "GST", [(START, "18.00")]),
    ("CA", "", "GST", [(START, "5.00")]),
    ("CA", "ON", "HST", [(START, "13.00")]),
    ("CA", "NB", "HST", [(START, "15.00")]),
    ("CA", "NL", "HST", [(START, "15.00")]),
    ("CA", "PE", "HST", [(START, "15.00")]),
    ("CA", "NS", "HST", [(START, "15.00"), (date(2025, 4, 1), "14.00")]),
]


def seeded_rates():
    """(country, region, name, valid_from, rate) for every seeded rate."""
    for state, rates in US_STATE_RATES.items():
        if isinstance(rates, str):
            rates = [(START, rates)]
        for valid_from, rate in rates:
            yield "US", state, f"{state} sales tax", valid_from, Decimal(rate)
    for country, region, name, rates in OTHER_RATES:
        for valid_from, rate in rates:
            yield country, region, name, valid_from, Decimal(rate)


def seed(apps, schema_editor):
    TaxRate = apps.get_model("billing", "TaxRate")
    HistoricalTaxRate = apps.get_model("billing", "HistoricalTaxRate")
    now = timezone.now()
    for country, region, name, valid_from, rate in seeded_rates():
        tax_rate, created = TaxRate.objects.get_or_create(
            country=country,
            region=region,
            valid_from=valid_from,
            defaults={"rate": rate, "name": name},
        )
        if created:  # R4: the rate's history starts with where it came from
            HistoricalTaxRate.objects.create(
                id=tax_rate.pk,
                country=country,
                region=region,
                rate=rate,
                name=name,
                valid_from=valid_from,
                history_date=now,
                history_type="+",
                history_change_reason="Seeded (migration 0006_seed_tax_rates)",
            )


def unseed(apps, schema_editor):
    """Remove the seeded rates that nobody has changed since."""
    TaxRate = apps.get_model("billing", "TaxRate")
    for country, region, name, valid_from, rate in seeded_rates():
        TaxRate.objects.filter(
            country=country, region=region, valid_from=valid_from, rate=rate, name=name
        ).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_tax_exemption_certificates")]
    operations = [migrations.RunPython(seed, unseed)]
