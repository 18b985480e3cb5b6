"""X1, X2, I6: regions stored before a region tax depends on had to be one of its country's
codes (ac2ef82). An Ontario business kept as "ONT" matched no ON HST rate (13 %) and was taxed
at the CA GST's 5 % with no warning: 120.00 + 6.00, not + 15.60. Migration 0030 keeps what it
can map as its code; an invoice of a workspace whose region is still no code is not issued at
the country-wide rate: set aside by the close (I6), refused elsewhere, counted for finance."""

import importlib
import re
from datetime import date
from decimal import Decimal as D

import pytest

from billing import reports, services
from billing.errors import BillingError
from billing.models import Invoice, SetAsideInvoice, Subscription, TaxRate, Workspace

from .factories import paid_annual, paid_monthly, workspace
from .test_check_billing import check_billing

CANADIAN_CODES = "AB, BC, MB, NB, NL, NS, NT, NU, ON, PE, QC, SK, YT"
NARNIA = (
    f"“Narnia” is not a Canadian province or territory code: GST/HST depends on it. "
    f"Use one of {CANADIAN_CODES}."
)


def stored_before(ws, region, country=None):
    """The workspace as a row written before regions were checked holds it (no service
    writes such a region any more)."""
    fields = {"business_region": region}
    if country:
        fields["business_country"] = country
    Workspace.objects.filter(pk=ws.pk).update(**fields)
    ws.refresh_from_db()
    return ws


def canadian(as_of=date(2026, 1, 1), *, stored, make=paid_monthly, **kwargs):
    return stored_before(make(as_of, business_country="CA", business_region="QC", **kwargs), stored)


def correct_region(ws, region, *, by, as_of):
    return services.update_workspace(
        ws,
        by=by,
        reason="Region typed before codes were required",
        name=ws.name,
        business_country=str(ws.business_country),
        business_region=region,
        billing_email=ws.billing_email,
        as_of=as_of,
    )


def migrate():
    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0030_regions_kept_as_codes")
    migration.keep_regions_as_codes(apps, None)


def test_x1_x2_r4_regions_stored_before_are_kept_as_their_codes_once_migrated(db):
    """ "ONT", " on ", "Ontario", "ca-on" → ON; "new york" → NY, "Calif." → CA; "Narnia",
    and Germany's free words, stay as they were. Each change has its history row saying why.
    Then January's invoice of the "ONT" workspace is 120.00 + 15.60 ON HST = 135.60."""
    stored = {
        "ONT": ("CA", "ON"),
        " on ": ("CA", "ON"),
        "Ontario": ("CA", "ON"),
        "ca-on": ("CA", "ON"),
        "Québec": ("CA", "QC"),
        "Narnia": ("CA", "Narnia"),
    }
    rows = {region: canadian(stored=region) for region in stored}
    new_york = stored_before(paid_monthly(business_region="OR"), "new york")
    california = stored_before(paid_monthly(business_region="OR"), "Calif.")
    bavaria = stored_before(paid_monthly(business_country="DE", business_region=""), "Bayern")
    history_before = Workspace.history.count()

    migrate()

    for region, (_, code) in stored.items():
        assert Workspace.objects.get(pk=rows[region].pk).business_region == code, region
    assert Workspace.objects.get(pk=new_york.pk).business_region == "NY"
    assert Workspace.objects.get(pk=california.pk).business_region == "CA"
    assert Workspace.objects.get(pk=bavaria.pk).business_region == "Bayern"
    # R4: one history row for each of the seven changed, the workspace as it is now, and why.
    assert Workspace.history.count() == history_before + 7
    latest = Workspace.history.filter(id=rows["ONT"].pk).latest()
    assert (latest.business_region, latest.history_type, latest.history_user) == ("ON", "~", None)
    assert latest.history_change_reason == "Region kept as its code: “ONT” is ON (Ontario)"

    services.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=rows["ONT"])
    assert (january.tax_region, january.tax_rate) == ("ON", D("13.000"))
    assert (january.subtotal, january.tax, january.total) == (D("120.00"), D("15.60"), D("135.60"))

    # Run again (a second deploy, a restore): nothing left to change, no history row more.
    history_after = Workspace.history.count()
    migrate()
    assert Workspace.history.count() == history_after


def test_x2_r4_a_rate_stored_for_a_region_typed_another_way_is_kept_as_its_code(db):
    """A rate entered for "Ont." (13.5 % from 1 March 2026) was stored and never charged; now
    it is ON's. One for "ontario" on the day ON's seeded rate starts stays as it was: two
    rates of one jurisdiction on one day cannot both be kept."""
    seeded_on = TaxRate.objects.get(country="CA", region="ON")
    typed = TaxRate.objects.create(
        country="CA", region="Ont.", rate="13.500", name="HST", valid_from=date(2026, 3, 1)
    )
    clash = TaxRate.objects.create(
        country="CA", region="ontario", rate="13.000", name="HST", valid_from=seeded_on.valid_from
    )

    migrate()

    typed.refresh_from_db()
    clash.refresh_from_db()
    assert (typed.region, clash.region) == ("ON", "ontario")
    latest = TaxRate.history.filter(id=typed.pk).latest()
    assert (latest.region, latest.history_change_reason) == (
        "ON",
        "Region kept as its code: “Ont.” is ON (Ontario)",
    )
    ws = paid_monthly(date(2026, 3, 1), business_country="CA", business_region="ON")
    services.run_billing(as_of=date(2026, 4, 1))
    march = Invoice.objects.get(workspace=ws)
    assert (march.tax_rate, march.tax, march.total) == (D("13.500"), D("16.20"), D("136.20"))


def test_i6_x1_a_region_that_is_no_code_is_set_aside_by_the_close_and_billed_once_corrected(
    db, support
):
    """ "Narnia" (left by the migration) was taxed at CA GST: 120.00 + 6.00 = 126.00. Now
    January's invoice is set aside by the close with the error naming the region and the
    codes; the other workspaces are billed (Ontario 135.60). Support corrects the region while
    the invoice is set aside (a move would wait for it), and the next run bills January at ON
    HST: 135.60."""
    ontario = paid_monthly(business_country="CA", business_region="ON")
    narnia = canadian(stored="Narnia")
    oregon = paid_monthly()

    services.run_billing(as_of=date(2026, 2, 1))

    assert not Invoice.objects.filter(workspace=narnia).exists()
    entry = SetAsideInvoice.objects.get()
    assert (entry.workspace, entry.resolved_on) == (narnia, None)
    assert NARNIA in entry.error
    assert Invoice.objects.get(workspace=ontario).total == D("135.60")
    assert Invoice.objects.get(workspace=oregon).total == D("120.00")

    correct_region(narnia, "on", by=support, as_of=date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 2, 2))

    january = Invoice.objects.get(workspace=narnia)
    assert (january.issue_date, january.tax_region, january.tax, january.total) == (
        date(2026, 2, 1),
        "ON",
        D("15.60"),
        D("135.60"),
    )
    entry.refresh_from_db()
    assert entry.resolved_on == date(2026, 2, 2)


def test_x1_final_annual_and_preview_invoices_refuse_a_region_that_is_no_code(db):
    """A cancellation on 20 January would have issued a final invoice of 120 × 19/31 = 73.55
    + 3.68 GST, a move to annual that and the annual one (1,440.00 + 72.00 GST), and the
    preview of January showed GST too. Each is refused now, naming the region and the codes,
    and nothing is issued."""
    narnia = canadian(stored="Narnia")

    with pytest.raises(BillingError, match=re.escape(NARNIA)):
        services.change_to_free(narnia, as_of=date(2026, 1, 20))
    with pytest.raises(BillingError, match=re.escape(NARNIA)):
        services.change_interval(narnia, interval="annual", as_of=date(2026, 1, 20))
    with pytest.raises(BillingError, match=re.escape(NARNIA)):
        services.preview_invoice(narnia, month=date(2026, 1, 1), as_of=date(2026, 1, 20))
    assert not Invoice.objects.filter(workspace=narnia).exists()
    assert Subscription.objects.get(workspace=narnia, ended_on=None).interval == "monthly"


def test_x1_d1_the_daily_run_skips_a_term_end_it_cannot_tax_and_bills_the_others(db, support):
    """Two annual terms renew on 1 January 2027, another trial ends on 15 January. The
    "Narnia" renewal is skipped (it would have been 1,440.00 + 72.00 GST) while the others are
    billed (Ontario 1,440.00 + 187.20 = 1,627.20); once its region is corrected, its renewal
    is issued, dated 1 January, at ON HST: 1,627.20."""
    narnia = canadian(date(2026, 1, 1), stored="Narnia", make=paid_annual)
    ontario = paid_annual(date(2026, 1, 1), business_country="CA", business_region="ON")
    trial = workspace(
        as_of=date(2027, 1, 1), plan="team", interval="annual", card=True, business_region="OR"
    )

    services.run_billing(as_of=date(2027, 1, 20))

    renewals = dict(
        Invoice.objects.filter(kind="annual", issue_date__year=2027).values_list(
            "workspace__slug", "total"
        )
    )
    assert renewals == {ontario.slug: D("1627.20"), trial.slug: D("1440.00")}
    narnia_sub = Subscription.objects.get(workspace=narnia, ended_on=None)
    assert narnia_sub.term_end == date(2027, 1, 1)  # not renewed yet

    correct_region(narnia, "ON", by=support, as_of=date(2027, 1, 21))

    renewal = Invoice.objects.get(workspace=narnia, kind="annual", issue_date__year=2027)
    assert (renewal.issue_date, renewal.tax_region, renewal.tax, renewal.total) == (
        date(2027, 1, 1),
        "ON",
        D("187.20"),
        D("1627.20"),
    )
    assert Subscription.objects.get(pk=narnia_sub.pk).term_end == date(2028, 1, 1)


def test_x1_w1_the_close_page_says_why_when_the_renewal_owed_cannot_be_taxed(
    client, support, today
):
    """The annual term of a "Narnia" workspace ended on 1 February 2026 and the clock (through
    the 5th) skipped its renewal. Closing it on 10 February first issues what the clock owes:
    the close page answered 500. It now says why the closure is refused, and nothing is
    written."""
    from django.urls import reverse

    from billing.models import WorkspaceClosure

    narnia = canadian(date(2025, 2, 1), stored="Narnia", make=paid_annual)
    services.run_billing(as_of=date(2026, 2, 5))
    client.force_login(support)
    url = reverse("admin:billing_workspace_close", args=[narnia.pk])

    page = client.get(url)

    assert page.status_code == 200
    text = page.content.decode()
    assert "“Narnia” is not a Canadian province or territory code" in text
    assert "Closing is refused until the cause is fixed" in text
    response = client.post(url, {"reason": "Customer asked to delete"})
    assert response.status_code == 200
    assert "“Narnia” is not a Canadian province or territory code" in response.content.decode()
    assert not WorkspaceClosure.objects.exists()


def test_x1_check_billing_and_the_finance_panel_count_regions_that_are_no_code(db, client, finance):
    """One Canadian workspace stored "Narnia" (and a US one with no state), a German one with
    its own words: finance is told of 2; check_billing exits 1."""
    canadian(stored="Narnia")
    stored_before(workspace(business_region="OR"), "")
    stored_before(workspace(business_country="DE", business_region=""), "Bayern")
    workspace(business_country="CA", business_region="ON")

    code, out = check_billing()

    assert code == 1
    assert "Workspaces whose region is not a code tax depends on: 2" in out
    assert "2 workspace(s) with a business region that is not a code tax depends on" in out

    client.force_login(finance)
    page = client.get("/admin/").content.decode()
    assert re.search(r"not a code tax depends on</a></th>\s*<td><strong>2</strong>", page)
    listed = client.get("/admin/billing/workspace/?region_not_a_code=yes")
    assert listed.context["cl"].result_count == 2
    # The list's filter says what its choices mean to support, who corrects them (it read
    # "Not a code tax depends on" and "Taxable as kept").
    page = client.get("/admin/billing/workspace/").content.decode()
    choices = re.findall(r'<a href="\?region_not_a_code=(yes|no)">\s*([^<]+?)\s*</a>', page)
    assert choices == [("yes", "Needs a state or province code"), ("no", "Fine as kept")]


def test_x1_x2_the_tax_report_splits_by_region_only_where_tax_depends_on_it(db):
    """Germany's VAT is one jurisdiction: invoices of workspaces that wrote "Bayern" and
    "Berlin" are one row DE (2 invoices, 45.60 tax), not two. Canada splits by province:
    CA-ON 15.60 and CA-QC 6.00."""
    for region in ("BAYERN", "BERLIN"):
        paid_monthly(business_country="DE", business_region=region)
    for region in ("ON", "QC"):
        paid_monthly(business_country="CA", business_region=region)
    services.run_billing(as_of=date(2026, 2, 1))

    rows = reports.tax_report()

    assert [(r["jurisdiction"], r["invoices"], r["tax_total"]) for r in rows] == [
        ("CA-ON", 1, D("15.60")),
        ("CA-QC", 1, D("6.00")),
        ("DE", 2, D("45.60")),
    ]
