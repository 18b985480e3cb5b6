"""M1–M3, K1–K4, I1–I4: what each invoice bills, when, and exactly once."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing import services
from billing.errors import BillingError, ClockBehind
from billing.models import CreditNote, Invoice
from billing.months import next_month
from coupons import services as coupons

from .factories import invoice_totals, paid_annual, paid_monthly, workspace


def invoices(**filters):
    return list(Invoice.objects.filter(**filters).order_by("issue_date", "id"))


def totals(**filters):
    return [(i.kind, i.issue_date, i.total) for i in invoices(**filters)]


def test_m1_close_issues_one_invoice_dated_the_1st_whenever_it_runs(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 17))  # late: closes January and February
    assert totals(workspace=ws) == [
        ("monthly", date(2026, 2, 1), D("120.00")),
        ("monthly", date(2026, 3, 1), D("120.00")),
    ]
    jan = invoices(workspace=ws)[0]
    assert (jan.period_start, jan.period_end) == (date(2026, 1, 1), date(2026, 2, 1))


def test_m1_zero_invoice_is_still_issued(db, swap_invoice_adjustments):
    from billing.hooks import Adjustment, NoAdjustments
    from billing.pricing import Discount

    class FullDiscount(NoAdjustments):
        def adjustments_for(self, drafts):
            return [Adjustment(Discount("100% off", percent=D(100))) for _ in drafts]

    ws = paid_monthly(date(2026, 1, 1))
    swap_invoice_adjustments(FullDiscount())
    services.run_billing(as_of=date(2026, 2, 1))
    assert invoice_totals(ws, date(2026, 2, 1)) == (D("120.00"), D("120.00"), D("0.00"))


@pytest.mark.parametrize(
    "start, paid_days, amount",
    [
        (date(2026, 2, 15), 14, D("60.00")),  # 28-day February: 120 × 14/28
        (date(2028, 2, 15), 15, D("62.07")),  # 29-day February: 120 × 15/29 = 62.068…
        (date(2026, 4, 21), 10, D("40.00")),  # 30-day April
        (date(2026, 1, 24), 8, D("30.97")),  # 31-day January: 30.967… rounds half up
        (date(2026, 3, 31), 1, D("3.87")),  # last day of a month: 120/31 = 3.870…
    ],
)
def test_m2_prorated_base_for_each_month_length(db, start, paid_days, amount):
    ws = paid_monthly(start)
    services.run_billing(as_of=next_month(start))
    first = invoices(workspace=ws)[0]
    base = first.lines.get(kind="base")
    assert (base.quantity, base.amount) == (paid_days, amount)


def test_m2_a_full_month_is_exactly_the_list_price_in_every_month_length(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 6, 1))
    assert {i.total for i in invoices(workspace=ws)} == {D("120.00")}


def test_m3_overage_above_10000_at_a_cent(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=10_001)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=10_000)
    services.run_billing(as_of=date(2026, 3, 1))
    assert [i.total for i in invoices(workspace=ws)] == [D("120.01"), D("120.00")]
    overage = invoices(workspace=ws)[0].lines.get(kind="overage")
    # The rate as the plan page writes it (it read "$0.0100" here and "$0.01" there).
    assert overage.description == "Overage, January 2026: 1 MTU at $0.01"


def test_m3_no_overage_in_a_month_with_a_trial_day(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 18))  # trial ends 2026-02-01
    services.record_usage(ws, month=date(2026, 1, 1), mtus=90_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=90_000)
    services.run_billing(as_of=date(2026, 3, 1))
    # January: trial only, no paid day, no invoice. February: full month + overage.
    assert totals(workspace=ws) == [("monthly", date(2026, 3, 1), D("920.00"))]


def test_m3_trial_ending_on_the_last_day_of_a_month(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 17))  # end date 2026-01-31
    services.record_usage(ws, month=date(2026, 1, 1), mtus=20_000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert totals(workspace=ws) == [("monthly", date(2026, 2, 1), D("3.87"))]


def test_k1_cancel_mid_month_final_invoice_with_overage_so_far(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 3, 1), mtus=11_000)
    services.change_to_free(ws, as_of=date(2026, 3, 11))
    services.run_billing(as_of=date(2026, 5, 1))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.issue_date, final.period_start, final.period_end) == (
        date(2026, 3, 11),
        date(2026, 3, 1),
        date(2026, 3, 11),
    )
    assert final.total == D("38.71") + D("10.00")  # 120 × 10/31 = 38.709…
    assert not Invoice.objects.filter(workspace=ws, issue_date=date(2026, 4, 1)).exists()


def test_k1_cancel_on_the_1st_issues_no_final_invoice(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 3, 1))
    services.run_billing(as_of=date(2026, 4, 1))
    assert [i.kind for i in invoices(workspace=ws)] == ["monthly", "monthly"]  # Jan, Feb
    assert not Invoice.objects.filter(kind="final").exists()


def test_k1_return_in_the_same_month_bills_only_new_days_and_unbilled_overage(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 3, 1), mtus=12_000)
    services.change_to_free(ws, as_of=date(2026, 3, 11))  # final: 10 days + 2,000 MTUs
    services.record_usage(ws, month=date(2026, 3, 1), mtus=15_000)
    services.change_to_team(ws, as_of=date(2026, 3, 22))  # paid at once: 10 days
    services.run_billing(as_of=date(2026, 4, 1))
    final, march = invoices(workspace=ws, period_start__gte=date(2026, 3, 1))
    assert (final.kind, final.overage_mtus, final.total) == ("final", 2_000, D("58.71"))
    assert (march.kind, march.period_start, march.overage_mtus) == (
        "monthly",
        date(2026, 3, 22),
        3_000,
    )
    assert march.total == D("38.71") + D("30.00")


def test_k2_annual_invoice_on_first_paid_day_and_overage_only_months(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 10))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=50_000)  # trial month: none
    services.record_usage(ws, month=date(2026, 2, 1), mtus=9_000)  # no overage: nothing
    services.record_usage(ws, month=date(2026, 3, 1), mtus=10_500)
    services.run_billing(as_of=date(2026, 4, 1))
    assert totals(workspace=ws) == [
        ("annual", date(2026, 1, 24), D("1440.00")),
        ("monthly", date(2026, 4, 1), D("5.00")),
    ]
    assert Invoice.objects.get(kind="annual").period_end == date(2027, 1, 24)
    # The line names the term as its period does, the last day included (it read "Team
    # annual, 2026-01-24 to 2027-01-24"); the refusal of the same interval reads "annually".
    line = Invoice.objects.get(kind="annual").lines.get()
    assert line.description == "Team annual, 24 January 2026 – 23 January 2027"
    with pytest.raises(BillingError, match=r"is already billed annually\."):
        services.change_interval(ws, interval="annual", as_of=date(2026, 4, 2))


def test_k2_cancelled_annual_runs_to_term_end_then_free_and_crosses_a_year(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.change_interval(ws, interval="annual", as_of=date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 6, 1))
    services.record_usage(ws, month=date(2026, 12, 1), mtus=10_100)
    services.run_billing(as_of=date(2027, 3, 1))
    kinds = totals(workspace=ws)
    assert kinds[0] == ("annual", date(2026, 1, 1), D("1440.00"))
    assert ("monthly", date(2027, 1, 1), D("1.00")) in kinds
    assert [k for k in kinds if k[0] == "annual"] == [kinds[0]]  # no renewal
    assert ws.subscriptions.get(ended_on=None).plan.code == "free"


def test_k2_annual_renews_at_term_end(db):
    ws = workspace(as_of=date(2025, 3, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2025, 3, 1))
    services.run_billing(as_of=date(2026, 3, 20))
    annual = invoices(workspace=ws, kind="annual")
    assert [(i.issue_date, i.number) for i in annual] == [
        (date(2025, 3, 15), "INV-2025-000001"),
        (date(2026, 3, 15), "INV-2026-000001"),
    ]


def test_k4_monthly_to_annual_final_invoice_then_new_term(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.change_interval(ws, interval="annual", as_of=date(2026, 2, 15))
    services.run_billing(as_of=date(2026, 3, 1))
    assert totals(workspace=ws) == [
        ("monthly", date(2026, 2, 1), D("120.00")),
        ("final", date(2026, 2, 15), D("60.00")),
        ("annual", date(2026, 2, 15), D("1440.00")),
    ]


def test_k4_annual_to_monthly_at_the_end_of_the_term(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 1))  # trial first
    services.run_billing(as_of=date(2026, 1, 15))
    services.change_interval(ws, interval="monthly", as_of=date(2026, 2, 1))
    services.run_billing(as_of=date(2027, 3, 1))
    kinds = totals(workspace=ws)
    assert kinds[0] == ("annual", date(2026, 1, 15), D("1440.00"))
    assert ("monthly", date(2027, 2, 1), D("65.81")) in kinds  # Jan 15..31 2027: 120 × 17/31


BILLED = {"monthly": "billed monthly", "annual": "billed annually"}


@pytest.mark.parametrize("interval", ["monthly", "annual"])
def test_k2_k4_an_interval_change_on_a_cancelled_term_is_refused_and_says_how(db, interval):
    """K2, K4: an annual term from 10 Jun 2025 cancelled on 1 Mar 2026 ends on 10 Jun 2026 on
    Free. A move to monthly on 15 March was recorded ("Moves to monthly billing on 10 Jun
    2026") but never happened: the term's end reads the cancellation first, and the workspace
    went to Free. Now it is refused, naming the plan change that withdraws the cancellation,
    and nothing is written."""
    ws = paid_annual(date(2025, 6, 10), name="Orbit")
    services.change_to_free(ws, as_of=date(2026, 3, 1))
    term = ws.subscriptions.get(ended_on=None)
    versions = term.history.count()
    with pytest.raises(BillingError) as refused:
        services.change_interval(ws, interval=interval, as_of=date(2026, 3, 15))
    assert str(refused.value) == (
        "Orbit's annual term is cancelled: it ends on 10 Jun 2026 and the workspace moves to "
        f"Free. To stay on Team after it, {BILLED[interval]}, change the plan to Team with "
        "that interval: that withdraws the cancellation (K4)."
    )
    term.refresh_from_db()
    assert (term.cancel_at_term_end, term.switch_to_monthly_at_term_end) == (True, False)
    assert term.history.count() == versions


@pytest.mark.parametrize("interval", ["monthly", "annual"])
def test_k2_k4_a_cancelled_term_taken_back_keeps_the_interval_asked_for(db, interval):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 1))  # trial first
    services.run_billing(as_of=date(2026, 2, 28))
    services.change_to_free(ws, as_of=date(2026, 3, 1))
    services.run_billing(as_of=date(2026, 3, 31))
    services.change_to_team(ws, interval=interval, as_of=date(2026, 4, 1))  # withdrawn
    services.run_billing(as_of=date(2027, 2, 1))
    kinds = [k for k in totals(workspace=ws) if k[0] != "monthly" or k[2]]
    if interval == "monthly":  # K4 at the term's end: Jan 15..31 2027, 120 × 17/31
        assert kinds == [
            ("annual", date(2026, 1, 15), D("1440.00")),
            ("monthly", date(2027, 2, 1), D("65.81")),
        ]
    else:
        assert kinds == [
            ("annual", date(2026, 1, 15), D("1440.00")),
            ("annual", date(2027, 1, 15), D("1440.00")),
        ]


def test_k4_change_during_a_trial_only_sets_the_interval(db):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 1))
    services.change_interval(ws, interval="annual", as_of=date(2026, 1, 5))
    assert not Invoice.objects.exists()
    services.run_billing(as_of=date(2026, 1, 15))
    assert totals(workspace=ws) == [("annual", date(2026, 1, 15), D("1440.00"))]


def test_i1_d4_an_invoice_waits_while_the_clock_owes_an_annual_invoice_dated_before_it(db):
    """Day by day, the trial that ends on 15 January is billed 1,440.00 (K2) before the
    cancellation of 20 January bills 120 × 19/31 = 73.55 (K1): numbers 1 and 2. A lagging
    clock must not let the cancellation take number 1."""
    annual = workspace(as_of=date(2026, 1, 1), plan="team", interval="annual", card=True)
    monthly = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 1))
    with pytest.raises(ClockBehind, match="yet to bill .*annual Team due on 15 Jan 2026"):
        services.change_to_free(monthly, as_of=date(2026, 1, 20))
    assert not Invoice.objects.exists()
    assert monthly.subscriptions.get(ended_on=None).plan.code == "team"
    services.run_billing(as_of=date(2026, 1, 19))
    services.change_to_free(monthly, as_of=date(2026, 1, 20))
    assert [(i.workspace, i.kind, i.issue_date, i.total, i.number) for i in invoices()] == [
        (annual, "annual", date(2026, 1, 15), D("1440.00"), "INV-2026-000001"),
        (monthly, "final", date(2026, 1, 20), D("73.55"), "INV-2026-000002"),
    ]


def test_i1_numbers_are_sequential_per_year_without_gaps(db):
    for _ in range(3):
        paid_monthly(date(2026, 11, 1))
    services.run_billing(as_of=date(2027, 2, 1))
    numbers = [i.number for i in Invoice.objects.order_by("number")]
    assert numbers == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"] + [
        f"INV-2027-{n:06d}" for n in range(1, 7)
    ]


def test_i1_lines_add_up_to_the_total_and_plan_is_kept(db):
    ws = paid_monthly(date(2026, 1, 1), business_country="US", business_region="CA")
    services.set_tax_rate(
        "US", region="CA", rate="7.25", name="CA sales tax", valid_from=date(2025, 1, 1)
    )
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_345)
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert sum(line.amount for line in invoice.lines.all()) == invoice.total
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("143.45"), D("10.40"), D("153.85"))
    assert (invoice.plan_code, invoice.interval, invoice.tax_country, invoice.tax_region) == (
        "team",
        "monthly",
        "US",
        "CA",
    )


def test_i2_total_never_below_zero_constraint(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(workspace=ws).update(discount=D("200.00"), total=D("-80.00"))


def test_c4_cr2_the_database_refuses_a_discount_or_credit_beyond_the_subtotal(db):
    """C4: a discount is at most the subtotal; CR2: credit at most what the discount left.
    A discount of 15.00 on 10.00 (5.00 tax making the total 0) and 200.00 of credit on 120.00
    added up under I2's check and were taken (the constraint audit); 100.00 off and 20.00 of
    credit on 120.00 is the most there is."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.filter(workspace=ws)
    too_much = [
        {"subtotal": D("10.00"), "discount": D("15.00"), "credits": 0, "tax": D("5.00")},
        {"subtotal": D("120.00"), "discount": 0, "credits": D("200.00"), "tax": D("80.00")},
    ]
    for figures in too_much:
        with pytest.raises(IntegrityError), transaction.atomic():
            invoice.update(**figures, total=D("0.00"))
    invoice.update(subtotal=D("120.00"), discount=D("100.00"), credits=D("20.00"), tax=0, total=0)


def test_i4_closing_twice_issues_each_invoice_once(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 2))
    from billing import invoicing

    with transaction.atomic():
        assert invoicing.issue(invoicing.month_close_drafts(date(2026, 1, 1))) == []
    assert Invoice.objects.filter(workspace=ws).count() == 1


def test_i4_database_refuses_a_second_invoice_for_the_same_period(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    invoice.pk, invoice.number = None, "INV-2026-999999"
    with pytest.raises(IntegrityError), transaction.atomic():
        invoice.save()


def test_preview_invoice_shows_what_the_close_would_issue_without_writing(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_500)
    preview = services.preview_invoice(ws, month=date(2026, 1, 1), as_of=date(2026, 1, 20))
    assert (preview.total, preview.issue_date, preview.kind) == (
        D("145.00"),
        date(2026, 2, 1),
        "monthly",
    )
    assert [line.amount for line in preview.lines] == [D("120.00"), D("25.00")]
    assert not Invoice.objects.exists()


def test_d1_m3_k2_k4_t4_the_preview_applies_the_trial_and_term_ends_before_the_close(db, support):
    """D1: March 2026's preview, asked on 15 March (the clock run through 14 March, 15,000 MTUs
    reported for March, 5,000 over the 10,000 included at 0.01), is what the close of 1 April
    issues, after the trial and term ends dated before it:
    - an annual term from 25 Mar 2025 moving to monthly at its end: 7/31 × 120.00 = 27.10 and
      50.00 of overage, 77.10 for 25 March–1 April (before: 50.00 of overage alone, 1 March–
      1 April);
    - an annual term cancelled, ending 25 March: 50.00 of overage for 1–25 March (before: to
      1 April);
    - a 50 % coupon (once) received on 10 March by an annual term renewing on 25 March: the
      renewal's invoice takes it, and March's overage is 50.00 (before: 25.00 off);
    - a monthly trial from 6 March without a card ends on 20 March: back to Free, no invoice
      (before: 46.45, the invoice it would have with a card);
    - the same trial with a card: Team from 20 March, 12/31 × 120.00 = 46.45 and no overage
      (M3: March had trial days).
    Nothing the preview applies is kept."""
    from tests.coupons.factories import coupon

    switching, cancelled, renewing = (paid_annual(date(2025, 3, 25)) for _ in range(3))
    services.change_interval(switching, interval="monthly", as_of=date(2026, 3, 10))
    services.change_to_free(cancelled, as_of=date(2026, 3, 10))
    coupons.redeem_coupon(
        renewing,
        coupon(percent_off="50", duration="once").code,
        by=support,
        as_of=date(2026, 3, 10),
    )
    no_card = workspace(plan="team", as_of=date(2026, 3, 6))
    card = workspace(plan="team", card=True, as_of=date(2026, 3, 6))
    cases = {"switching": switching, "cancelled": cancelled, "renewing": renewing}
    cases |= {"no card": no_card, "card": card}
    for ws in cases.values():
        services.record_usage(ws, month=date(2026, 3, 1), mtus=15_000)
    services.run_billing(as_of=date(2026, 3, 14))
    before = set(Invoice.objects.values_list("pk", flat=True))

    def figures(invoice):
        return invoice and (
            invoice.period_start,
            invoice.period_end,
            invoice.discount,
            invoice.total,
        )

    previews = {
        name: figures(services.preview_invoice(ws, month=date(2026, 3, 1), as_of=date(2026, 3, 15)))
        for name, ws in cases.items()
    }
    assert set(Invoice.objects.values_list("pk", flat=True)) == before
    assert switching.subscriptions.get(ended_on=None).interval == "annual"
    assert previews == {
        "switching": (date(2026, 3, 25), date(2026, 4, 1), D("0.00"), D("77.10")),
        "cancelled": (date(2026, 3, 1), date(2026, 3, 25), D("0.00"), D("50.00")),
        "renewing": (date(2026, 3, 1), date(2026, 4, 1), D("0.00"), D("50.00")),
        "no card": None,
        "card": (date(2026, 3, 20), date(2026, 4, 1), D("0.00"), D("46.45")),
    }
    services.run_billing(as_of=date(2026, 4, 1))
    for name, ws in cases.items():
        closed = Invoice.objects.filter(workspace=ws, issue_date=date(2026, 4, 1), kind="monthly")
        assert previews[name] == figures(closed.first()), name


def test_i3_finance_voids_with_a_reason_and_the_invoice_is_otherwise_untouched(db, finance):
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    with pytest.raises(BillingError, match="Say why"):
        services.void_invoice(invoice, by=finance, reason="", as_of=date(2026, 2, 3))
    services.void_invoice(invoice, by=finance, reason="Duplicate account", as_of=date(2026, 2, 3))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total, invoice.void_reason) == (
        "void",
        D("120.00"),
        "Duplicate account",
    )
    record = invoice.history.first()
    assert (record.history_user, record.history_change_reason) == (
        finance,
        "Voided: Duplicate account",
    )
    # R4: the month close writes its invoices without a version (issue 12); the void keeps
    # the one it was issued as first, by the system.
    first = invoice.history.earliest("history_id")
    assert (first.history_type, first.history_user, first.history_change_reason) == (
        "+",
        None,
        "Issued on 1 Feb 2026",
    )
    with pytest.raises(BillingError, match="already void"):
        services.void_invoice(invoice, by=finance, reason="again", as_of=date(2026, 2, 3))


def test_k3_credit_note_requested_by_support_approved_by_finance_never_above_what_is_left(
    db, support, finance
):
    """$120.00 invoiced. A request counts the requests still waiting: with $100.00 waiting, a
    second request can be at most $20.00, so finance is never handed asks that cannot all be
    approved. Approval checks again against what is approved (a row from before this rule)."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    # Two places and a dollar sign, never "100.0000000000000" (SQLite sums as floats).
    with pytest.raises(
        BillingError, match=r"at most \$120\.00 \(what is left unrefunded\), not \$120\.01\."
    ):
        services.request_credit_note(
            invoice, by=support, amount="120.01", reason="x", as_of=date(2026, 2, 2)
        )
    first = services.request_credit_note(
        invoice, by=support, amount="100.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    with pytest.raises(BillingError) as refused:
        services.request_credit_note(
            invoice, by=support, amount="30.00", reason="Goodwill", as_of=date(2026, 2, 2)
        )
    assert str(refused.value) == (
        f"A credit note on {invoice.number} can be at most $20.00 now: $100.00 of what is left "
        "unrefunded is requested already and waiting for finance. Not $30.00."
    )
    # Over the whole invoice too, the refusal names the $20.00 that fits, not the $120.00 left
    # (which it then refused in turn).
    with pytest.raises(BillingError) as refused:
        services.request_credit_note(
            invoice, by=support, amount="200.00", reason="Goodwill", as_of=date(2026, 2, 2)
        )
    assert str(refused.value) == (
        f"A credit note on {invoice.number} can be at most $20.00 now: $100.00 of what is left "
        "unrefunded is requested already and waiting for finance. Not $200.00."
    )
    assert invoice.credit_notes.count() == 1
    fits = services.request_credit_note(
        invoice, by=support, amount="20.00", reason="Goodwill", as_of=date(2026, 2, 2)
    )
    # A request waiting from before requests counted each other: approval still caps it.
    older = CreditNote.objects.create(
        invoice=invoice,
        amount=D("30.00"),
        reason="Older ask",
        requested_by=support,
        requested_on=date(2026, 2, 1),
    )
    services.decide_credit_note(first, by=finance, approve=True, as_of=date(2026, 2, 3))
    services.decide_credit_note(fits, by=finance, approve=True, as_of=date(2026, 2, 3))
    assert services.refundable_amount(invoice) == D("0.00")
    with pytest.raises(BillingError, match=r"at most \$0\.00 .*, not \$30\.00\."):
        services.decide_credit_note(older, by=finance, approve=True, as_of=date(2026, 2, 3))
    services.decide_credit_note(
        older, by=finance, approve=False, as_of=date(2026, 2, 3), note_text="Too much"
    )
    older.refresh_from_db()
    assert older.status == "rejected"
    assert older.history.first().history_change_reason == "Rejected: Too much"
    with pytest.raises(BillingError, match="already approved"):
        services.decide_credit_note(first, by=finance, approve=True, as_of=date(2026, 2, 4))


def test_k3_i3_an_invoice_refunded_in_part_or_waiting_for_a_refund_is_not_voided(
    db, client, support, finance
):
    """128.70 (120.00 + CA tax) with 30.00 refunded: voided, the customer owed nothing and kept
    the 30.00, and the invoice's refunds panel said 98.70 was left to refund. The void is
    refused while a credit note on the invoice is approved or waiting; a void invoice has
    nothing left to refund."""
    from billing import selectors

    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    other = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert invoice.total == D("128.70")
    note = services.request_credit_note(
        invoice, by=support, amount="30.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    with pytest.raises(BillingError, match="waits for a decision"):
        services.void_invoice(invoice, by=finance, reason="Wrong plan", as_of=date(2026, 2, 3))
    # The void page says so and leads to the request waiting (walk 5: only "Back").
    client.force_login(finance)
    page = client.get(reverse("admin:billing_invoice_void", args=[invoice.pk])).content.decode()
    waiting = reverse("admin:billing_creditnote_changelist") + f"?invoice={invoice.pk}"
    assert f'<a href="{waiting}&amp;status=requested" class="button">Credit notes waiting</a>' in (
        page
    )
    assert client.get(f"{waiting}&status=requested").context["cl"].result_count == 1
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    with pytest.raises(BillingError, match=r"\$30\.00 of it was refunded already"):
        services.void_invoice(invoice, by=finance, reason="Wrong plan", as_of=date(2026, 2, 4))
    assert selectors.refund_summary(invoice).left == D("98.70")

    services.run_billing(as_of=date(2026, 3, 1))
    march = Invoice.objects.get(workspace=other, issue_date=date(2026, 3, 1))
    rejected = services.request_credit_note(
        march, by=support, amount="5.00", reason="Asked", as_of=date(2026, 3, 2)
    )
    services.decide_credit_note(
        rejected, by=finance, approve=False, as_of=date(2026, 3, 2), note_text="No outage"
    )
    services.void_invoice(march, by=finance, reason="Duplicate", as_of=date(2026, 3, 3))
    march.refresh_from_db()
    assert selectors.refund_summary(march).left == D("0.00")


def test_k3_refunds_are_not_automatic(db):
    ws = paid_monthly(date(2026, 1, 1))
    services.change_interval(ws, interval="annual", as_of=date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 1, 2))
    assert not Invoice.objects.filter(workspace=ws).exclude(kind="annual").exists()
    assert not ws.invoices.get().credit_notes.exists()
