"""X1–X3: tax follows the business location; rates are dated, editable data seeded by a
migration; tax is computed on the amount after discounts and credits."""

import re
from datetime import date
from decimal import Decimal as D

import pytest

from billing import reports, services
from billing.errors import BillingError, ClockBehind, DayAlreadyProcessed
from billing.hooks import Adjustment, NoAdjustments
from billing.models import Invoice, TaxRate, Workspace
from billing.pricing import Discount
from billing.regions import US_STATES
from billing.tax import TaxTable

from .factories import certificate, move_business, paid_monthly, workspace

NO_SALES_TAX = {"AK", "DE", "MT", "NH", "OR"}


def decide(country, region, day):
    return TaxTable().decide(Workspace(business_country=country, business_region=region), day)


def move_to_oregon(ws, by, day):
    move_business(ws, "OR", by=by, as_of=day, reason="Moved to Portland")


def test_x1_d2_d4_a_new_business_location_is_a_dated_change(db, support):
    """California 7.25 %: January's invoice, dated 1 February, is 120.00 + 8.70 = 128.70
    when the business moves to Oregon on 10 February, whether the clock ran every day or
    lags; a lagging clock makes the move wait rather than tax January in Oregon."""
    services.set_tax_rate("US", region="CA", rate="7.25", name="CA", valid_from=date(2026, 1, 1))
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    services.run_billing(as_of=date(2026, 1, 1))

    def move(day):
        move_to_oregon(ws, support, day)

    with pytest.raises(ClockBehind, match="A change of business location dated 10 Feb 2026"):
        move(date(2026, 2, 10))
    assert Workspace.objects.get(pk=ws.pk).business_region == "CA"
    services.run_billing(as_of=date(2026, 2, 9))
    with pytest.raises(DayAlreadyProcessed, match="through 9 Feb 2026"):
        move(date(2026, 2, 9))
    move(date(2026, 2, 10))
    january = Invoice.objects.get(workspace=ws)
    assert (january.issue_date, january.tax_region, january.tax, january.total) == (
        date(2026, 2, 1),
        "CA",
        D("8.70"),
        D("128.70"),
    )
    # Details other than the location are no dated fact: edited whatever the day.
    services.update_workspace(
        ws,
        by=support,
        reason="Typo",
        name="Renamed",
        business_country="US",
        business_region="OR",
        billing_email=ws.billing_email,
        as_of=date(2026, 1, 5),
    )


def test_x1_d4_an_annual_invoice_a_lagging_clock_owes_is_taxed_where_the_business_was(db, support):
    """Annual Team in California (7.25 %) from a trial started 1 January: the annual invoice
    is dated 15 January, 1,440.00 + 104.40 = 1,544.40. With the clock at 1 January, a move to
    Oregon dated 20 January first issues what the clock owes before that day, as a daily clock
    had: the catch-up taxed it in Oregon (1,440.00, no tax)."""
    ws = workspace(
        as_of=date(2026, 1, 1), plan="team", interval="annual", card=True, business_region="CA"
    )
    services.run_billing(as_of=date(2026, 1, 1))
    move_to_oregon(ws, support, date(2026, 1, 20))
    services.run_billing(as_of=date(2026, 1, 25))

    annual = Invoice.objects.get(workspace=ws, kind="annual")
    assert (annual.issue_date, annual.tax_region, annual.tax, annual.total) == (
        date(2026, 1, 15),
        "CA",
        D("104.40"),
        D("1544.40"),
    )


def test_x1_d4_a_move_dated_before_an_issued_final_invoice_is_refused(db, support):
    """Monthly Team in California cancelled on 25 January: its final invoice, 120 × 24/31 =
    92.90 + 6.74 tax = 99.64, is issued at once. A move to Oregon dated 20 January would have
    made it 92.90 untaxed had it come first; an issued invoice is never edited (I3), so the
    move is refused, as a tax rate dated before it is, and accepted from the 26th."""
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    services.run_billing(as_of=date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 1, 25))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.tax_region, final.total) == ("CA", D("99.64"))

    with pytest.raises(BillingError, match=rf"{final.number}, dated 25 Jan 2026.*26 Jan 2026"):
        move_to_oregon(ws, support, date(2026, 1, 20))
    assert Workspace.objects.get(pk=ws.pk).business_region == "CA"
    move_to_oregon(ws, support, date(2026, 1, 26))


def test_x1_i6_a_move_waits_for_the_invoice_a_close_set_aside(db, support):
    """January's invoice (dated 1 February, California) is set aside by the close; issued after
    a move to Oregon on 10 February it would be taxed in Oregon. The move waits for it."""
    from billing.models import Usage

    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 9))
    with pytest.raises(BillingError, match="invoice for January 2026 was set aside"):
        move_to_oregon(ws, support, date(2026, 2, 10))

    Usage.objects.filter(workspace=ws).update(mtus=10_000)  # the cause fixed
    services.run_billing(as_of=date(2026, 2, 9))
    move_to_oregon(ws, support, date(2026, 2, 10))
    january = Invoice.objects.get(workspace=ws)
    assert (january.tax_region, january.total) == ("CA", D("128.70"))


def test_x1_tax_follows_the_business_location_not_the_billing_address(db):
    # Billed at a California address, but the business is in Texas: Texas sales tax.
    ws = paid_monthly(
        date(2026, 1, 1),
        business_country="US",
        business_region="TX",
        billing_email="accounts-payable@ca-office.example.com",
    )
    services.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=ws)
    assert (january.tax_country, january.tax_region, january.tax_rate) == ("US", "TX", D("6.250"))
    assert (january.subtotal, january.tax, january.total) == (D("120.00"), D("7.50"), D("127.50"))

    # The business moves to California: invoices from then on follow it; issued ones keep theirs.
    Workspace.objects.filter(pk=ws.pk).update(business_region="CA")
    services.run_billing(as_of=date(2026, 3, 1))
    february = Invoice.objects.get(workspace=ws, issue_date=date(2026, 3, 1))
    assert (february.tax_region, february.tax_rate, february.tax) == ("CA", D("7.250"), D("8.70"))
    january.refresh_from_db()
    assert (january.tax_region, january.tax) == ("TX", D("7.50"))


def test_x1_x2_an_ontario_business_typed_in_lower_case_pays_ontario_hst(db):
    """ON HST 13 % wins over CA GST 5 %: January's 120.00 is taxed 15.60 (135.60). The region
    typed " on " was kept as " ON ", matched no rate and the invoice fell back to GST (6.00,
    126.00) with no warning."""
    ws = paid_monthly(date(2026, 1, 1), business_country="ca", business_region=" on ")
    assert (str(ws.business_country), ws.business_region) == ("CA", "ON")
    services.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=ws)
    assert (january.tax_country, january.tax_region, january.tax_rate) == ("CA", "ON", D("13.000"))
    assert (january.subtotal, january.tax, january.total) == (D("120.00"), D("15.60"), D("135.60"))


CANADIAN_CODES = "AB, BC, MB, NB, NL, NS, NT, NU, ON, PE, QC, SK, YT"


@pytest.mark.parametrize(
    "country, region, problem",
    [
        (
            "CA",
            "ONT",
            "“ONT” is not a Canadian province or territory code: GST/HST depends on it. "
            f"Use one of {CANADIAN_CODES}.",
        ),
        ("CA", "Ontario", "“ONTARIO” is not a Canadian province or territory code"),
        ("CA", " ", "A Canadian business needs its province or territory (e.g. ON)"),
        ("US", "Cal", "“CAL” is not a US state code: sales tax depends on it. Use one of AK, AL,"),
        ("US", "", "A US business needs its state (e.g. CA): sales tax depends on it."),
        # Elsewhere the region is the customer's own words (tax there is country-wide), kept
        # within its column.
        ("DE", "Baden-Württemberg", "A region has at most 10 characters"),
    ],
)
def test_x1_a_region_tax_depends_on_is_one_of_its_country_codes(
    db, support, country, region, problem
):
    """X1: an Ontario business entered as "ONT" matched no HST rate (13 %): its invoices were
    taxed at the GST's 5 %. A location tax depends on is refused unless it is a code of the
    country, at sign-up and on an edit, saying which codes are expected."""
    with pytest.raises(BillingError, match=re.escape(problem)):
        workspace(slug="refused", business_country=country, business_region=region)
    assert not Workspace.objects.filter(slug="refused").exists()
    ws = workspace(business_country="CA", business_region="QC")
    with pytest.raises(BillingError, match=re.escape(problem)):
        services.update_workspace(
            ws,
            by=support,
            reason="Moved",
            name=ws.name,
            business_country=country,
            business_region=region,
            billing_email=ws.billing_email,
            as_of=date(2026, 1, 1),
        )
    ws.refresh_from_db()
    assert (str(ws.business_country), ws.business_region) == ("CA", "QC")


def test_x1_elsewhere_the_region_is_free_text_and_tax_is_the_country_s(db):
    """Germany's VAT is country-wide (19 %): a region typed there is kept as typed (trimmed,
    upper case, as codes are) and changes nothing on the invoice (120.00 + 22.80)."""
    ws = paid_monthly(date(2026, 1, 1), business_country="DE", business_region=" Bayern ")
    assert ws.business_region == "BAYERN"
    services.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=ws)
    assert (january.tax_rate, january.tax, january.total) == (D("19.000"), D("22.80"), D("142.80"))


def test_x2_seeded_rates_cover_every_state_with_a_sales_tax(db):
    seeded = set(TaxRate.objects.filter(country="US").values_list("region", flat=True))
    assert seeded == set(US_STATES) - NO_SALES_TAX
    on = date(2026, 6, 1)
    assert decide("US", "CA", on).rate == D("7.250")
    assert decide("US", "NY", on).rate == D("4.000")
    assert decide("US", "TX", on).rate == D("6.250")
    assert decide("US", "MN", on).rate == D("6.875")
    for state in NO_SALES_TAX:
        assert decide("US", state, on).rate is None, state
    assert (decide("GB", "", on).rate, decide("GB", "", on).name) == (D("20.000"), "VAT")
    assert (decide("AU", "", on).rate, decide("AU", "", on).name) == (D("10.000"), "GST")
    assert decide("NZ", "", on).rate == D("15.000")
    assert decide("IN", "", on).rate == D("18.000")
    assert decide("BR", "", on).rate is None  # no rate → no tax


def test_x2_a_rate_is_in_force_from_its_start_until_the_next_one_starts(db):
    assert decide("US", "LA", date(2024, 12, 31)).rate == D("4.450")
    assert decide("US", "LA", date(2025, 1, 1)).rate == D("5.000")
    assert [decide("US", "NM", day).rate for day in (date(2022, 6, 30), date(2022, 7, 1))] == [
        D("5.125"),
        D("5.000"),
    ]
    assert decide("US", "NM", date(2023, 7, 1)).rate == D("4.875")
    # Ireland's temporary VAT cut, September 2020 to February 2021.
    assert [decide("IE", "", date(y, m, 1)).rate for y, m in [(2020, 8), (2020, 9), (2021, 3)]] == [
        D("23.000"),
        D("21.000"),
        D("23.000"),
    ]
    assert decide("US", "CA", date(2019, 12, 31)).rate is None  # before any rate


def test_x2_a_region_rate_wins_over_the_country_rate(db):
    on = date(2026, 1, 1)
    assert (decide("CA", "ON", on).rate, decide("CA", "ON", on).name) == (D("13.000"), "HST")
    assert (decide("CA", "QC", on).rate, decide("CA", "QC", on).name) == (D("5.000"), "GST")
    assert decide("CA", "NS", date(2025, 3, 31)).rate == D("15.000")
    assert decide("CA", "NS", date(2025, 4, 1)).rate == D("14.000")


def test_x2_no_rate_means_no_tax(db):
    ws = paid_monthly(date(2026, 1, 1), business_country="US", business_region="OR")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert (invoice.tax, invoice.total, invoice.tax_rate, invoice.tax_note) == (
        D("0.00"),
        D("120.00"),
        None,
        "",
    )
    assert not invoice.lines.filter(kind="tax").exists()


def test_x2_rates_are_editable_data_a_new_rate_starts_on_its_day(db):
    ws = paid_monthly(date(2026, 1, 1), business_country="US", business_region="TX")
    services.set_tax_rate(
        "US", region="tx", rate="7", name="TX sales tax", valid_from=date(2026, 3, 1)
    )
    # Set twice on the same day: the second replaces the first.
    services.set_tax_rate(
        "US", region="TX", rate="6.5", name="TX sales tax", valid_from=date(2026, 3, 1)
    )
    services.run_billing(as_of=date(2026, 4, 1))
    assert list(
        Invoice.objects.filter(workspace=ws).order_by("issue_date").values_list("issue_date", "tax")
    ) == [
        (date(2026, 2, 1), D("7.50")),  # 6.25 % of 120.00
        (date(2026, 3, 1), D("7.80")),  # 6.50 % from March 1st, the issue date
        (date(2026, 4, 1), D("7.80")),
    ]
    assert (
        TaxRate.objects.filter(country="US", region="TX", valid_from=date(2026, 3, 1)).count() == 1
    )
    history = TaxRate.objects.get(country="US", region="CA").history.earliest()
    assert history.history_change_reason.startswith("Seeded")


@pytest.mark.parametrize(
    "rate, problem",
    [
        ("-1", "between 0 and 100, not -1"),
        ("100.5", "between 0 and 100, not 100.5"),
        ("NaN", "between 0 and 100, not “NaN”"),
        ("Infinity", "between 0 and 100, not “Infinity”"),
        ("", "between 0 and 100, not “”"),
        ("seven", "between 0 and 100, not “seven”"),
        ("1e999999", "between 0 and 100"),
        ("7.2505", "at most three decimals"),
    ],
)
def test_x2_a_rate_is_a_percentage(db, rate, problem):
    with pytest.raises(BillingError, match=problem):
        services.set_tax_rate("US", region="TX", rate=rate, name="TX", valid_from=date(2026, 1, 1))
    assert not TaxRate.objects.filter(region="TX", valid_from=date(2026, 1, 1)).exists()


@pytest.mark.parametrize(
    "country, region, name, problem",
    [
        ("US", "California", "CA sales tax", "“CALIFORNIA” is not a US state code"),
        ("US", "XX", "Sales tax", "“XX” is not a US state code"),
        ("ZZ", "", "Sales tax", "“ZZ” is not an ISO 3166-1 country code"),
        # X2: "ONT" (for ON) would never be charged: Ontario would go on paying GST's 5 %.
        ("CA", "ONT", "HST", "“ONT” is not a Canadian province or territory code"),
        ("CA", "ONT", "HST", f"Use one of {CANADIAN_CODES}."),
        # Tax there is country-wide: no workspace's region is a code a rate could match.
        ("DE", "BY", "VAT", "A rate in Germany is country-wide: leave the region empty"),
        ("US", "CA", "  ", "needs a name"),
        ("US", "CA", "x" * 101, "at most 100 characters"),
    ],
)
def test_x2_a_rate_for_a_place_no_workspace_can_be_in_is_refused(
    db, country, region, name, problem
):
    """A rate stored for "California" (not CA) would never be charged: CA invoices would go on
    at the old rate, and a state with no earlier rate untaxed, with no warning."""
    with pytest.raises(BillingError, match=problem):
        services.set_tax_rate(
            country, region=region, rate="8", name=name, valid_from=date(2026, 1, 1)
        )
    assert not TaxRate.objects.filter(valid_from=date(2026, 1, 1)).exists()


def test_x2_a_rate_is_stored_for_the_codes_as_workspaces_name_them(db):
    rate = services.set_tax_rate(
        " us ", region=" ca ", rate="8", name=" CA sales tax ", valid_from=date(2026, 1, 1)
    )
    assert (str(rate.country), rate.region, rate.name) == ("US", "CA", "CA sales tax")
    vat = services.set_tax_rate("DE", rate="19", name="VAT", valid_from=date(2026, 1, 1))
    assert (str(vat.country), vat.region) == ("DE", "")
    qst = services.set_tax_rate(
        "ca", region=" qc ", rate="5", name="GST", valid_from=date(2026, 1, 1)
    )
    assert (str(qst.country), qst.region) == ("CA", "QC")


def test_x3_tax_on_the_amount_after_discounts_and_credits_rounded_per_invoice(
    db, swap_invoice_adjustments
):
    class TenPercentAndCredit(NoAdjustments):
        def adjustments_for(self, drafts):
            return [Adjustment(Discount("10% off", percent=D(10)), D("30.00")) for _ in drafts]

    ws = paid_monthly(date(2026, 1, 1), business_country="US", business_region="CA")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_500)
    swap_invoice_adjustments(TenPercentAndCredit())
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    # 145.00 − 14.50 − 30.00 = 100.50; 7.25 % of it = 7.28625 → 7.29
    assert (invoice.subtotal, invoice.discount, invoice.credits, invoice.tax, invoice.total) == (
        D("145.00"),
        D("14.50"),
        D("30.00"),
        D("7.29"),
        D("107.79"),
    )
    assert sum(line.amount for line in invoice.lines.all()) == invoice.total


def test_x4_x2_a_zero_rate_has_nothing_to_waive_no_note_and_nothing_exempt_in_the_report(
    db, finance
):
    """X2, X4: Texas repeals its sales tax from 15 January 2026 and finance enters a 0 % rate
    (a rate is never deleted). January's invoices (120.00, tax 0.00) said "exempt:
    certificate #1" for a workspace with an approved certificate (the tax report counted
    120.00 exempt where nothing was taxable) and "certificate #2 still in review", X4's note
    for tax still charged, where none was. As with no rate: no note, nothing exempt."""
    services.set_tax_rate(
        "US", region="TX", rate="0", name="TX sales tax", valid_from=date(2026, 1, 15)
    )
    approved = paid_monthly(date(2026, 1, 1), business_region="TX")
    in_review = paid_monthly(date(2026, 1, 1), business_region="TX")
    services.approve_exemption(
        certificate(approved, "TX", on=date(2026, 1, 2)), by=finance, as_of=date(2026, 1, 3)
    )
    certificate(in_review, "TX", on=date(2026, 1, 2))
    services.run_billing(as_of=date(2026, 2, 1))

    for ws in (approved, in_review):
        invoice = Invoice.objects.get(workspace=ws)
        assert (invoice.tax, invoice.total) == (D("0.00"), D("120.00"))
        assert invoice.tax_note == "", invoice.tax_note

    (row,) = reports.tax_report()
    assert (row["taxable"], row["tax_total"], row["exempt"]) == (D("0.00"), D("0.00"), D("0.00"))


@pytest.mark.parametrize("day", [date(1999, 12, 31), date(2100, 1, 1), date(9999, 12, 31)])
def test_x2_i6_a_rate_starts_within_the_years_billed(db, day):
    """A rate's start is a date a person types: like every other, it falls within the years
    this system bills (2000 to 2099). A rate from 9999-12-31 was taken."""
    with pytest.raises(BillingError, match=r"outside the years this system bills \(2000 to 2099\)"):
        services.set_tax_rate("US", region="TX", rate="7", name="TX sales tax", valid_from=day)
    assert not TaxRate.objects.filter(valid_from=day).exists()


def test_x2_d2_a_rate_starts_at_most_two_years_past_the_clocks_next_day(db):
    """Walk 10: a rate from 31 Dec 2099 (2029 typed wrong) was taken, and would have waited
    seventy years unseen; plan terms are refused past two years ahead, and a rate is dated as
    they are. The clock has processed through 10 March 2026: its next day is 11 March, and a
    rate may start on 11 March 2028 at the latest."""
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 10))
    for day in (date(2099, 12, 31), date(2028, 3, 12)):
        with pytest.raises(BillingError, match="date it 11 Mar 2028 at the latest"):
            services.set_tax_rate("US", region="TX", rate="7", name="TX sales tax", valid_from=day)
    rate = services.set_tax_rate(
        "US", region="TX", rate="7", name="TX sales tax", valid_from=date(2028, 3, 11)
    )
    assert (rate.valid_from, rate.rate) == (date(2028, 3, 11), D("7.000"))


def test_x4_a_shortened_note_keeps_why_the_invoices_own_state_was_still_taxed(db, finance):
    """A Californian workspace holds sixteen certificates for other states, then one for
    California still in review on 1 February 2026. The note listed them by id, "certificate #1
    covers AL, not CA; …", and was cut at 300 characters before the one reason that matters:
    California's certificate was still in review. That note comes first; the others follow,
    cut where the note is full."""
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    elsewhere = ["AL", "AZ", "AR", "CO", "CT", "FL", "GA", "HI"]
    elsewhere += ["ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME"]
    for state in elsewhere:
        certificate(ws, state, on=date(2026, 1, 5))
    california = certificate(ws, "CA", on=date(2026, 1, 10))
    services.start_exemption_review(california, by=finance, as_of=date(2026, 1, 15))
    services.run_billing(as_of=date(2026, 2, 1))

    invoice = Invoice.objects.get(workspace=ws)
    assert (invoice.tax, invoice.total) == (D("8.70"), D("128.70"))
    assert invoice.tax_note.startswith(
        f"certificate #{california.pk} still in review on 1 Feb 2026; certificate #"
    )
    assert len(invoice.tax_note) == 300 and invoice.tax_note.endswith("…")
