"""Tax rates by jurisdiction and date (SPEC X1–X3).

A `TaxTable` loads every rate once (the table is small: a few hundred rows) so a month close
resolves thousands of invoices without a query each.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction

from billing.errors import BillingError
from billing.models import TaxRate, Workspace


@dataclass(frozen=True)
class TaxDecision:
    country: str
    region: str
    rate: Decimal | None
    name: str = "Tax"
    note: str = ""


class TaxTable:
    def __init__(self):
        self._rates = defaultdict(list)  # (country, region) → [(valid_from, rate, name)] sorted
        for rate in TaxRate.objects.order_by("valid_from"):
            self._rates[(str(rate.country), rate.region)].append(
                (rate.valid_from, rate.rate, rate.name)
            )

    def _in_force(self, country: str, region: str, day: date):
        rates = self._rates.get((country, region), [])
        index = bisect_right([valid_from for valid_from, _, _ in rates], day)
        return rates[index - 1] if index else None

    def decide(self, workspace: Workspace, day: date) -> TaxDecision:
        """X1, X2: the rate of the business location in force on `day`; none → no tax.

        A region's own rate wins; a country-wide rate (VAT, GST) applies where the region has
        none.
        """
        country, region = str(workspace.business_country), workspace.business_region
        found = self._in_force(country, region, day) if region else None
        if found is None:
            found = self._in_force(country, "", day)
        if found is None:
            return TaxDecision(country, region, None)
        _, rate, name = found
        return TaxDecision(country, region, rate, name)


@transaction.atomic
def set_tax_rate(country: str, *, region: str = "", rate, name: str, valid_from: date) -> TaxRate:
    """X2: a rate in force from `valid_from` until the jurisdiction's next one (replacing one
    that starts the same day). `rate` is in percent."""
    rate = Decimal(str(rate))
    if not Decimal(0) <= rate <= Decimal(100):
        raise BillingError(f"A tax rate is a percentage between 0 and 100, not {rate}.")
    tax_rate, _ = TaxRate.objects.update_or_create(
        country=country.upper(),
        region=region.upper(),
        valid_from=valid_from,
        defaults={"rate": rate, "name": name},
    )
    return tax_rate
