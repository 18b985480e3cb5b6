"""Finance's startup-credit report: granted, used, lapsed and outstanding (CR1–CR3)."""

from datetime import date, timedelta
from decimal import Decimal as D

from django.urls import reverse
from django.utils import timezone

from billing import services as billing
from coupons import reports
from coupons.services import grant_credits
from tests.billing.factories import workspace


def _member(as_of):
    ws = workspace(as_of=as_of, card=True)
    grant_credits(ws, amount=D("25000.00"), as_of=as_of, year=1, by=None)
    billing.change_to_team(ws, as_of=as_of)
    billing.change_to_free(ws, as_of=as_of)
    billing.change_to_team(ws, as_of=as_of)  # paid at once, monthly
    return ws


def test_cr2_cr3_report_adds_up_grants_draws_lapses_and_what_is_left(db):
    _member(date(2026, 1, 1))
    # Eleven invoices draw 120.00; December's, dated 2027-01-01, is past the grant (CR2).
    billing.run_billing(as_of=date(2027, 1, 2))
    rows = {
        row["month"]: row
        for row in reports.credit_movements(start=date(2026, 1, 1), end=date(2027, 2, 1))
    }
    assert rows[date(2026, 1, 1)]["granted"] == D("25000.00")
    assert sum(row["drawn"] for row in rows.values()) == D("1320.00")
    assert rows[date(2027, 1, 1)]["lapsed"] == D("23680.00")
    assert reports.outstanding(as_of=date(2027, 1, 2))["outstanding"] == D("0.00")
    assert reports.outstanding(as_of=date(2026, 6, 15)) == {
        "grants": 1,
        "granted": D("25000.00"),
        "outstanding": D("25000.00") - 5 * D("120.00"),
    }


def test_credit_report_page_is_finance_only(client, db, support, finance):
    _member(timezone.now().date() - timedelta(days=40))
    url = reverse("credits:liability")
    client.force_login(support)
    assert client.get(url).status_code == 403
    client.force_login(finance)
    page = client.get(url).content.decode()
    assert "of credit still to be drawn (of $25,000.00 granted on them)" in page


def _sum(rows, key):
    return sum((row[key] for row in rows), D("0.00"))


def test_cr2_cr3_w1_a_closure_before_year_two_starts_lapses_it_as_it_starts(db, support, reviewer):
    """Approved 5 January 2026 (25,000.00); year two confirmed 10 December, valid from 5
    January 2027; the workspace closed 20 December. Year two's lapse was dated 20 December,
    before its own grant entry: 2026 showed 25,000.00 more lapsed than granted and left, and
    year two's ledger read -25,000.00 until January. It lapses on 5 January 2027 now: each
    year adds up (granted = drawn + lapsed + outstanding) and no balance is ever below 0."""
    from coupons.models import CreditGrant, CreditLedgerEntry
    from startups import services as startups
    from tests.billing.factories import paid_monthly
    from tests.startups.factories import application, confirm_year_two

    ws = paid_monthly(date(2026, 1, 1))
    app = application(workspace=ws, as_of=date(2026, 1, 5))
    startups.approve_application(app, by=reviewer, as_of=date(2026, 1, 5))
    billing.run_billing(as_of=date(2026, 12, 9))
    confirm_year_two(app, by=reviewer, as_of=date(2026, 12, 10))
    billing.run_billing(as_of=date(2026, 12, 19))
    billing.close_workspace(ws, by=support, reason="Customer asked", as_of=date(2026, 12, 20))

    for start, end in ((date(2026, 1, 1), date(2027, 1, 1)), (date(2027, 1, 1), date(2028, 1, 1))):
        rows = reports.credit_movements(start=start, end=end)
        outstanding = reports.outstanding(as_of=end - timedelta(days=1))["outstanding"]
        assert _sum(rows, "granted") == (
            _sum(rows, "drawn") + _sum(rows, "lapsed") + outstanding
        ), start
    year_two = CreditGrant.objects.get(workspace=ws, year=2)
    assert (year_two.remaining, year_two.lapsed_on) == (D("0.00"), date(2027, 1, 5))
    entries = list(CreditLedgerEntry.objects.filter(grant=year_two).values_list("on", "amount"))
    assert sorted(entries) == [
        (date(2027, 1, 5), D("-25000.00")),
        (date(2027, 1, 5), D("25000.00")),
    ]


def test_i3_cr2_a_voided_invoice_gives_its_credit_back_to_a_grant_still_valid(client, db, finance):
    """A member from 1 January 2026 with 25,000.00 of credit (CR1) on paid monthly Team:
    January's invoice, issued 1 February, draws 120.00 (CR2), leaving 24,880.00. Voided on 10
    February (I3), it gives the 120.00 back (a ledger entry dated that day): 25,000.00 left,
    and February's invoice draws again. The report shows it given back; the void page said
    nothing of credit, and the grant kept 24,880.00 (walk 5)."""
    from billing.models import Invoice
    from coupons.models import CreditGrant, CreditLedgerEntry

    ws = _member(date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    grant = CreditGrant.objects.get(workspace=ws)
    assert (january.credits, january.total) == (D("120.00"), D("0.00"))
    assert grant.remaining == D("24880.00")
    client.force_login(finance)
    page = reverse("admin:billing_invoice_void", args=[january.pk])
    assert "$120.00 of startup credit goes back to its year-1 grant, valid to 31 Dec 2026" in (
        client.get(page).content.decode()
    )
    billing.void_invoice(january, by=finance, reason="Issued in error", as_of=date(2026, 2, 10))
    grant.refresh_from_db()
    assert grant.remaining == D("25000.00")
    assert list(grant.entries.order_by("id").values_list("kind", "amount", "on")) == [
        (CreditLedgerEntry.Kind.GRANT, D("25000.00"), date(2026, 1, 1)),
        (CreditLedgerEntry.Kind.DRAW, D("-120.00"), date(2026, 2, 1)),
        (CreditLedgerEntry.Kind.RETURN, D("120.00"), date(2026, 2, 10)),
    ]
    # D3: the balance as it stood: before the void 24,880.00, from its day 25,000.00.
    from billing.selectors import workspace_status

    assert workspace_status(ws, as_of=date(2026, 2, 9))["credit_balance"] == D("24880.00")
    assert workspace_status(ws, as_of=date(2026, 2, 10))["credit_balance"] == D("25000.00")
    (february,) = reports.credit_movements(start=date(2026, 2, 1), end=date(2026, 3, 1))
    assert (february["drawn"], february["returned"]) == (D("120.00"), D("120.00"))
    billing.run_billing(as_of=date(2026, 3, 1))
    grant.refresh_from_db()
    assert grant.remaining == D("24880.00")  # February's invoice drew 120.00


def test_i3_cr3_a_void_after_the_grant_ended_gives_nothing_back(client, db, finance):
    """A 100.00 grant from 1 January 2026 (valid to 31 December 2026): January's invoice drew
    100.00 of its 120.00. Voided on 5 January 2027, after the grant's year ended (CR3: unused
    credit lapses), nothing goes back, and the page says so before finance confirms."""
    from billing.models import Invoice
    from coupons.models import CreditGrant

    ws = workspace(as_of=date(2026, 1, 1), card=True)
    grant_credits(ws, amount=D("100.00"), as_of=date(2026, 1, 1), year=1, by=None)
    billing.change_to_team(ws, as_of=date(2026, 1, 1))
    billing.change_to_free(ws, as_of=date(2026, 1, 1))
    billing.change_to_team(ws, as_of=date(2026, 1, 1))
    billing.run_billing(as_of=date(2027, 1, 4))
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    assert january.credits == D("100.00")
    effects = billing.void_effects(january, date(2027, 1, 5))
    assert effects[-1] == (
        "The $100.00 of startup credit it drew from the year-1 grant is not given back: it "
        "lapsed on 1 Jan 2027 (CR3)."
    )
    billing.void_invoice(january, by=finance, reason="Issued in error", as_of=date(2027, 1, 5))
    grant = CreditGrant.objects.get(workspace=ws)
    assert grant.remaining == D("0.00")
    assert not grant.entries.filter(kind="return").exists()


def test_i3_a_credit_is_given_back_once(db, finance):
    """The ledger holds one return per grant and invoice (a constraint), as one draw."""
    import pytest
    from django.db import IntegrityError, transaction

    from billing.models import Invoice
    from coupons.models import CreditGrant, CreditLedgerEntry

    ws = _member(date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    billing.void_invoice(january, by=finance, reason="Issued in error", as_of=date(2026, 2, 10))
    grant = CreditGrant.objects.get(workspace=ws)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLedgerEntry.objects.create(
            grant=grant, invoice=january, kind="return", amount=D("120.00"), on=date(2026, 2, 11)
        )


def test_r3_each_figure_of_the_credit_report_opens_the_ledger_entries_it_adds_up(
    client, db, finance, pin_today
):
    """R3, CR1, CR2, I3: a member since 1 January 2026 (25,000.00 granted) whose monthly
    invoices of 1 February to 1 November drew 120.00 each (10 × 120.00 = 1,200.00); the
    November invoice voided on 20 November gives its 120.00 back, and December's draws 120.00.
    Each non-zero figure links to the credit ledger's entries of its kind and month (or of the
    twelve months, for the totals), and those entries add up to it; a 0.00 links nowhere.
    Before, no figure linked anywhere."""
    import html
    import re

    from billing.models import Invoice

    ws = _member(date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 11, 19))
    november = Invoice.objects.get(workspace=ws, issue_date=date(2026, 11, 1))
    billing.void_invoice(november, by=finance, reason="Billed twice", as_of=date(2026, 11, 20))
    billing.run_billing(as_of=date(2026, 12, 4))
    pin_today(date(2026, 12, 5))  # the report's twelve months: January to December 2026
    client.force_login(finance)
    page = client.get(reverse("credits:liability")).content.decode()
    links = re.findall(r'<td class="num"><a href="([^"]+)">([^<]+)</a></td>', page)
    opened = []
    for url, figure in links:
        listed = client.get(html.unescape(url)).context["cl"].result_list
        kinds = {entry.kind for entry in listed}
        assert len(kinds) == 1
        total = sum((abs(entry.amount) for entry in listed), D("0.00"))
        assert f"${total:,}" == html.unescape(figure), url
        opened.append((kinds.pop(), f"{total:,}", len(listed)))
    assert sorted(opened) == sorted(
        [
            ("grant", "25,000.00", 1),  # January
            *[("draw", "120.00", 1)] * 11,  # each month, February to December
            ("return", "120.00", 1),  # November's, given back
            ("grant", "25,000.00", 1),  # the totals: granted, drawn, given back
            ("draw", "1,320.00", 11),
            ("return", "120.00", 1),
        ]
    )
    assert "$0.00</a>" not in page
