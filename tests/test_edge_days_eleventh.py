"""An eleventh set of edge days, on where the rules added late meet the older ones, each worked
by hand from SPEC (figures in each test's docstring and comments, none computed by the code
under test):

- W1 × K3, I5, X3: credit notes on a closed workspace's credited and taxed final invoice, up to
  what the customer paid (its total, not the credit drawn), tax given back in proportion, a cent
  more refused; the credit note's document.
- W1 × X4: a certificate approved on the closure day before the closure waives the final
  invoice dated that day; one still in review taxes it (the note says why); approving or
  submitting one for a closed workspace is refused, approving it after a reopening changes no
  issued invoice (I3); a certificate whose first or last day is the closure day, or the day
  after or before it.
- W1 × T1, M2, K1: reopenings on the 1st, on a month's last day and on 29 February 2028, then
  back on Team paid at once (it had Team) or left on Free; a workspace that never had Team
  reopened on 31 January gets its trial across the leap February (T3, M3).
- W1 × G1–G3: a notified workspace closed, the campaign's coupon refused while closed and left
  out of the audience by reason, reopened and back on Team, its redemption attributed and its
  discount counted, never emailed twice; a launch on a closure day leaves the closed workspace
  out, a launch after its reopening emails it once.
- W1 × CR2, CR3: closed on the first anniversary with year two confirmed before it (the final
  invoice credited by year two, which then lapses) and without (uncredited, confirmation
  refused while closed).
- X4 × M1, K2, X1: a certificate approved on the 1st waives that day's close invoice, one the
  2nd does not; valid from the issue date, ended the day before; one for another state beside
  one in review (both reasons in the note); an annual term and its overage invoices under a
  certificate that ends mid-term, on its last day and the day before.
- I5 × W1 × X2 × P2: a closed workspace's final invoice rendered after its state's rate and
  Team's price changed shows the stored figures.
- F7 × W1 × F4: a data stop lifted by a trial, the trial ended by a closure (which skips F7,
  README "Closing a workspace"); reopened: unlocked, data flowing, and Team again paid at once.
- F1, F2 × W1: a month over the Free limit closed mid-month or on the 1st still strikes (a
  close does not lock a closed workspace), and the strike counts after a reopening.
- D2, U1 × W1: changes dated the closure day after the closure, usage for the closure's month
  after a reopening (no return to Team: nothing more billed, no strike), a reopening dated a
  processed day.
- FC1 × W1: a closed workspace forecasts nothing and refuses a proposed change; one closed on
  the 1st forecasts only the month before; a closure proposed on a month's last day.
- K1, M3 × W1: a closure in the month a trial turned paid bills no overage; K4 × W1: closed the
  day after monthly → annual: no overage, no refund.

The multi-day scenarios run the billing clock day by day and in one catch-up run (D4), with
identical outcomes, as the other edge-day files do.
"""

from datetime import date
from decimal import Decimal as D

import pytest

from billing import services
from billing.errors import BillingError, DayAlreadyProcessed, WorkspaceClosed
from billing.forecast import forecast_invoices
from billing.invoice_documents import credit_note_document, invoice_document, render_pdf
from billing.models import Invoice, Plan, Strike, Subscription, TaxExemption
from coupons import services as coupons
from coupons.campaigns import campaign_audience, campaign_results, create_campaign, launch_campaign
from coupons.models import CreditGrant, Redemption
from startups import services as startups
from startups.models import RenewalReview
from tests.billing.factories import certificate
from tests.coupons.factories import coupon
from tests.scenarios.clock import both_ways, letters
from tests.scenarios.figures import (
    close,
    everything,
    forecast_figures,
    ledger,
    locks,
    short,
    status,
    taxes,
)
from tests.scenarios.workspaces import new, paid, ws_
from tests.startups.factories import application, confirm_year_two

NOT_LOCKED, LOCKED, STOPPED = "unlocked", "locked", "locked_data_stopped"


# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


M = "monthly"


# --- W1 × K3, I5: credit notes on a closed workspace's final invoice -----------------------------


def test_w1_k3_cr2_x3_i5_credit_notes_on_a_closed_workspaces_credited_final_invoice(
    db, support, finance
):
    """California, 7.25 %. `shut` paid monthly from 1 March 2027 with a 50.00 grant that day;
    12,000 MTUs for March reported on 15 March; closed on 16 March (W1): final invoice dated
    16 March for 1–15 March (K1): 120 × 15/31 = 58.0645… → 58.06, overage (12,000 − 10,000) ×
    0.01 = 20.00, subtotal 78.06; 50.00 credited (CR2: the grant valid that day); taxable
    28.06, tax 28.06 × 7.25 % = 2.03435 → 2.03 (X3); total 30.09. The closure lapses nothing
    (the grant is spent): balance 0.00.

    K3: what is left unrefunded is what the customer paid, 30.09 (the 50.00 of credit is not
    refundable): 30.10 is refused. 20.00 requested on 17 March and approved on 18 March gives
    back 20.00 × 2.03 / 30.09 = 1.3492… → 1.35 of tax; its document credits 18.65 before tax.
    10.09 more (exactly what is left), approved on 19 March: 30.09 × 2.03 / 30.09 = 2.03 less
    1.35 = 0.68. 1.35 + 0.68 = 2.03, the invoice's tax. Then 0.01 is refused (at most 0.00);
    so is a void (refunded already, I3). The invoice stays as issued: 30.09."""
    ws = paid("shut", date(2027, 3, 1), business_region="CA")
    coupons.grant_credits(ws, amount="50.00", as_of=date(2027, 3, 1), year=1, by=support)
    services.record_usage(ws, month=date(2027, 3, 1), mtus=12_000)
    closure = close(ws, support, date(2027, 3, 16))
    final = closure.final_invoice
    assert short("shut") == [
        (
            "final",
            date(2027, 3, 16),
            date(2027, 3, 1),
            date(2027, 3, 16),
            D("78.06"),
            D("0.00"),
            D("50.00"),
            D("2.03"),
            D("30.09"),
        )
    ]
    assert status("shut", date(2027, 3, 16), "credit_balance") == (D("0.00"),)

    def ask(amount, on):
        return services.request_credit_note(
            final, by=support, amount=amount, reason=f"Refund {amount}", as_of=on
        )

    with pytest.raises(BillingError, match=r"at most \$30\.09"):
        ask("30.10", date(2027, 3, 17))
    first = services.decide_credit_note(
        ask("20.00", date(2027, 3, 17)), by=finance, approve=True, as_of=date(2027, 3, 18)
    )
    second = services.decide_credit_note(
        ask("10.09", date(2027, 3, 18)), by=finance, approve=True, as_of=date(2027, 3, 19)
    )
    assert [(n.amount, n.tax) for n in (first, second)] == [
        (D("20.00"), D("1.35")),
        (D("10.09"), D("0.68")),
    ]
    assert services.refundable_amount(final) == D("0.00")
    with pytest.raises(BillingError, match=r"at most \$0\.00"):
        ask("0.01", date(2027, 3, 20))
    with pytest.raises(BillingError, match="refunded already"):
        services.void_invoice(final, by=finance, reason="Closed", as_of=date(2027, 3, 20))
    doc = credit_note_document(first)
    assert [line.amount for line in doc.lines] == ["$18.65"]
    assert doc.totals == [("Tax given back", "$1.35"), ("Total credited (USD)", "$20.00")]
    final.refresh_from_db()
    assert (final.status, final.total) == ("issued", D("30.09"))


# --- W1 × X4: certificates and the closure's final invoice --------------------------------------


def test_w1_x4_k1_a_certificate_approved_on_the_closure_day_waives_the_final_invoice(
    db, support, finance
):
    """California, 7.25 %. `first` and `second` paid monthly from 1 March 2027, each with a
    CA certificate submitted on 2 March (valid from 1 January 2027); `second`'s taken into
    review on 3 March.

    16 March: `first`'s approved, then `first` closed (X4: approved on or before the issue
    date, valid on it): final invoice for 1–15 March, 120 × 15/31 = 58.0645… → 58.06, no tax,
    total 58.06, the note naming the certificate. `second` closed that day with its certificate
    still in review: taxed, 58.06 × 7.25 % = 4.20935 → 4.21, total 62.27, the note saying it
    was still in review on 16 March.

    W1: a closed workspace accepts no change but reopening: approving `second`'s certificate
    dated 16 March (after the closure) or 17 March is refused, and so is a new certificate.
    Reopened on 18 March, the approval dated 18 March is accepted and changes no issued
    invoice (I3): the final invoice stays 62.27."""
    for slug in ("first", "second"):
        paid(slug, date(2027, 3, 1), business_region="CA")
    waived = certificate(ws_("first"), "CA", on=date(2027, 3, 2), valid_from=date(2027, 1, 1))
    waiting = certificate(ws_("second"), "CA", on=date(2027, 3, 2), valid_from=date(2027, 1, 1))
    services.start_exemption_review(waiting, by=finance, as_of=date(2027, 3, 3))
    day = date(2027, 3, 16)
    services.approve_exemption(waived, by=finance, as_of=day)
    close(ws_("first"), support, day)
    close(ws_("second"), support, day)
    for on in (day, date(2027, 3, 17)):
        with pytest.raises(WorkspaceClosed, match="closed on 16 Mar 2027"):
            services.approve_exemption(waiting, by=finance, as_of=on)
    with pytest.raises(WorkspaceClosed, match="closed on 16 Mar 2027"):
        certificate(ws_("second"), "NV", on=date(2027, 3, 17))
    assert taxes("first") == [(day, D("0.00"), D("58.06"), "exempt: certificate #N (nonprofit)")]
    assert taxes("second") == [
        (day, D("4.21"), D("62.27"), "certificate #N still in review on 16 Mar 2027")
    ]
    services.reopen_workspace(ws_("second"), by=support, reason="Back", as_of=date(2027, 3, 18))
    services.approve_exemption(waiting, by=finance, as_of=date(2027, 3, 18))
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_on) == ("approved", date(2027, 3, 18))
    assert taxes("second") == [
        (day, D("4.21"), D("62.27"), "certificate #N still in review on 16 Mar 2027")
    ]


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "tax", "note"),
    [
        (date(2027, 3, 16), None, D("0.00"), "exempt: certificate #N (nonprofit)"),
        (
            date(2027, 3, 17),
            None,
            D("4.21"),
            "certificate #N valid from 17 Mar 2027, not on 16 Mar 2027",
        ),
        (date(2027, 1, 1), date(2027, 3, 16), D("0.00"), "exempt: certificate #N (nonprofit)"),
        (
            date(2027, 1, 1),
            date(2027, 3, 15),
            D("4.21"),
            "certificate #N valid 1 Jan 2027 to 15 Mar 2027, not on 16 Mar 2027",
        ),
    ],
    ids=["from-the-closure-day", "from-the-day-after", "to-the-closure-day", "to-the-day-before"],
)
def test_x4_w1_k1_a_certificates_first_or_last_day_and_the_closure_day(
    db, support, finance, valid_from, valid_to, tax, note
):
    """California, 7.25 %. `shut` paid monthly from 1 March 2027, a CA certificate submitted
    and approved on 2 March; closed on 16 March: final invoice dated 16 March, 58.06 (120 ×
    15/31 = 58.0645…). X4: valid from its first day through its last, both included: one from
    16 March or to 16 March waives the tax; one from 17 March or to 15 March does not: 58.06 ×
    7.25 % = 4.20935 → 4.21, total 62.27, the note saying why."""
    ws = paid("shut", date(2027, 3, 1), business_region="CA")
    cert = certificate(ws, "CA", on=date(2027, 3, 2), valid_from=valid_from, valid_to=valid_to)
    services.approve_exemption(cert, by=finance, as_of=date(2027, 3, 2))
    close(ws, support, date(2027, 3, 16))
    assert taxes("shut") == [(date(2027, 3, 16), tax, D("58.06") + tax, note)]


# --- W1 × T1, M2, K1: reopenings on edge days ---------------------------------------------------


@pytest.mark.parametrize(
    ("closed_on", "reopened_on", "team", "expected"),
    [
        (
            date(2028, 1, 31),
            date(2028, 2, 1),
            True,
            [
                ("final", date(2028, 1, 31), date(2028, 1, 1), date(2028, 1, 31), D("116.13")),
                (M, date(2028, 3, 1), date(2028, 2, 1), date(2028, 3, 1), D("120.00")),
            ],
        ),
        (
            date(2028, 1, 15),
            date(2028, 1, 31),
            True,
            [
                ("final", date(2028, 1, 15), date(2028, 1, 1), date(2028, 1, 15), D("54.19")),
                (M, date(2028, 2, 1), date(2028, 1, 31), date(2028, 2, 1), D("3.87")),
                (M, date(2028, 3, 1), date(2028, 2, 1), date(2028, 3, 1), D("120.00")),
            ],
        ),
        (
            date(2028, 2, 10),
            date(2028, 2, 29),
            True,
            [
                (M, date(2028, 2, 1), date(2028, 1, 1), date(2028, 2, 1), D("120.00")),
                ("final", date(2028, 2, 10), date(2028, 2, 1), date(2028, 2, 10), D("37.24")),
                (M, date(2028, 3, 1), date(2028, 2, 29), date(2028, 3, 1), D("4.14")),
            ],
        ),
        (
            date(2028, 1, 15),
            date(2028, 1, 31),
            False,
            [("final", date(2028, 1, 15), date(2028, 1, 1), date(2028, 1, 15), D("54.19"))],
        ),
    ],
    ids=["reopened-on-the-1st", "on-31-january", "on-29-february-2028", "left-on-free"],
)
def test_w1_t1_m2_k1_reopened_on_the_1st_a_months_last_day_and_29_february_then_team(
    db, django_capture_on_commit_callbacks, support, closed_on, reopened_on, team, expected
):
    """`up` paid monthly from 1 January 2028, closed (W1, final invoice K1), reopened (Free,
    unlocked) and, but in the last case, back on Team the same day: paid at once, no trial
    (T1: it had Team). Through 1 March 2028:

    - closed 31 January: final invoice for 1–30 January, 120 × 30/31 = 116.129… → 116.13;
      January's close (1 February) issues nothing more for it (M1: billed by its final
      invoice); reopened and on Team 1 February: February, 120.00 (1 March).
    - closed 15 January: 1–14 January, 120 × 14/31 = 54.1935… → 54.19; reopened and on Team
      31 January: January's close bills only the paid day after the return (K1): 120 × 1/31 =
      3.8709… → 3.87 for 31 January; February 120.00.
    - closed 10 February: January 120.00 (1 February); final for 1–9 February of a 29-day
      month, 120 × 9/29 = 37.241… → 37.24; reopened and on Team 29 February: 120 × 1/29 =
      4.1379… → 4.14 (1 March).
    - closed 15 January, reopened 31 January and left on Free: nothing after the final invoice.

    One closure email each. Both runs alike."""

    def actions(day):
        if day == date(2028, 1, 1):
            paid("up", day)
        if day == closed_on:
            close(ws_("up"), support, day)
        if day == reopened_on:
            services.reopen_workspace(ws_("up"), by=support, reason="Came back", as_of=day)
            if team:
                services.change_to_team(ws_("up"), as_of=day)

    def read():
        return {
            "bills": [b[:4] + b[8:] for b in short("up")],
            "status": status("up", reopened_on, "plan", "trialing", "lock", "data_flow"),
            "trials": list(
                Subscription.objects.filter(workspace__slug="up", started_on=reopened_on)
                .exclude(trial_end=None)
                .values_list("trial_end", flat=True)
            ),
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2028, 1, 1), date(2028, 3, 1), actions, read
    )
    assert outcome["bills"] == expected
    assert outcome["status"] == ("team" if team else "free", False, NOT_LOCKED, True)
    assert outcome["trials"] == []
    assert outcome["letters"].count(("up@example.com", "Up is closed")) == 1


def test_w1_t1_t3_m3_never_on_team_reopened_on_31_january_trials_across_the_leap_february(
    db, django_capture_on_commit_callbacks, support
):
    """`free` signs up on Free with a card on 3 January 2028, is closed on 10 January and
    reopened on 31 January (W1: Free, unlocked; "no trial if it ever had Team": it never had,
    so T1 gives the trial). Moved to Team that day: trial 31 January – 13 February, end date
    14 February (T3), paid from then (T4, card on file). January: no paid day, no invoice.
    February 2028, 12,000 MTUs: 16 paid days (14–29) of 29: 120 × 16/29 = 66.2068… → 66.21,
    no overage (trial days in February, M3), issued 1 March for 14 February – 1 March. No
    strike for January (F1: 500 MTUs). Both runs alike."""

    def actions(day):
        if day == date(2028, 1, 3):
            new("free", day, card=True)
            services.record_usage(ws_("free"), month=date(2028, 1, 1), mtus=500)
        if day == date(2028, 1, 10):
            close(ws_("free"), support, day)
        if day == date(2028, 1, 31):
            services.reopen_workspace(ws_("free"), by=support, reason="Came back", as_of=day)
            services.change_to_team(ws_("free"), as_of=day)
        if day == date(2028, 2, 29):
            services.record_usage(ws_("free"), month=date(2028, 2, 1), mtus=12_000)

    def read():
        return {
            "bills": short("free"),
            "trial": status("free", date(2028, 2, 13), "plan", "trialing", "trial_end"),
            "strikes": Strike.objects.count(),
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2028, 1, 3), date(2028, 3, 1), actions, read
    )
    assert outcome["bills"] == [
        (
            M,
            date(2028, 3, 1),
            date(2028, 2, 14),
            date(2028, 3, 1),
            D("66.21"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("66.21"),
        )
    ]
    assert outcome["trial"] == ("team", True, date(2028, 2, 14))
    assert outcome["strikes"] == 0


# --- W1 × G1–G3: a notified workspace closed and reopened ---------------------------------------


def test_g1_g2_g3_w1_notified_then_closed_refused_reopened_then_attributed(
    db, django_capture_on_commit_callbacks, support
):
    """`BACK20`: 20 % off `once`, monthly bills. `a` and `b` paid monthly from 1 March 2027.
    A campaign with no filter is launched on 10 March: both emailed (G2). `b` is closed on
    15 March (final invoice for 1–14 March: 120 × 14/31 = 54.1935… → 54.19, no discount):
    that day the audience leaves `b` out, counted as closed (G1), and redeeming BACK20 for it
    is refused (W1). `a` redeems on 15 March: attributed (G3).

    `b` reopened on 20 March and back on Team that day (paid at once, T1), then redeems:
    attributed (it was notified). Launched again on 21 March: nobody new (G2: once per
    workspace per campaign). March's close (1 April): `a` 120.00 − 24.00 = 96.00; `b` only
    the paid days after the return (K1), 20–31 March, 120 × 12/31 = 46.4516… → 46.45, 20 % =
    9.29 off, 37.16. Campaign: notified 2, redeemed 2, discount given 24.00 + 9.29 = 33.29."""
    coupon(code="BACK20", percent_off="20", duration="once", intervals=("monthly",))
    for slug in "ab":
        paid(slug, date(2027, 3, 1))
    campaign = create_campaign("Back", "BACK20", "20 % off", "20 % off your next bill.", {})
    services.run_billing(as_of=date(2027, 3, 9))
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 10)) == 2
    services.run_billing(as_of=date(2027, 3, 14))
    ides = date(2027, 3, 15)
    close(ws_("b"), support, ides)
    ids, refused = campaign_audience(campaign, ides)
    assert (list(ids), refused) == ([ws_("a").pk], {"workspace_closed": 1})
    with pytest.raises(WorkspaceClosed, match="closed on 15 Mar 2027"):
        coupons.redeem_coupon(ws_("b"), "BACK20", by=support, as_of=ides)
    coupons.redeem_coupon(ws_("a"), "BACK20", by=support, as_of=ides)
    services.run_billing(as_of=date(2027, 3, 19))
    back = date(2027, 3, 20)
    services.reopen_workspace(ws_("b"), by=support, reason="Came back", as_of=back)
    services.change_to_team(ws_("b"), as_of=back)
    coupons.redeem_coupon(ws_("b"), "BACK20", by=support, as_of=back)
    services.run_billing(as_of=back)
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 21)) == 0
    services.run_billing(as_of=date(2027, 4, 1))
    assert [m for m in letters() if m[1] == "20 % off"] == [
        ("a@example.com", "20 % off"),
        ("b@example.com", "20 % off"),
    ]
    assert dict(Redemption.objects.values_list("workspace__slug", "campaign_id")) == {
        "a": campaign.pk,
        "b": campaign.pk,
    }
    assert [b[:2] + b[4:6] + b[8:] for b in short("a")] == [
        (M, date(2027, 4, 1), D("120.00"), D("24.00"), D("96.00"))
    ]
    assert [b[:2] + b[4:6] + b[8:] for b in short("b")] == [
        ("final", ides, D("54.19"), D("0.00"), D("54.19")),
        (M, date(2027, 4, 1), D("46.45"), D("9.29"), D("37.16")),
    ]
    results = campaign_results(campaign)
    assert (results["notified"], results["redeemed"], results["discount"]) == (2, 2, D("33.29"))


def test_g2_g1_w1_a_launch_on_the_closure_day_skips_it_and_a_relaunch_after_reopening_emails_it(
    db, django_capture_on_commit_callbacks, support
):
    """`SPRING`: 10 % off `once`. `a` and `b` paid monthly from 1 March 2027; `b` closed on
    15 March. A campaign with no filter launched that day, after the closure: `a` emailed,
    `b` left out (G1: closed, counted by reason), not notified. `b` reopened on 20 March (W1:
    Free, open); launched again on 21 March: `b` alone newly emailed (G2: each workspace in
    the audience once; it never was). Two campaign emails in all, one each."""
    coupon(code="SPRING", percent_off="10", duration="once")
    for slug in "ab":
        paid(slug, date(2027, 3, 1))
    campaign = create_campaign("Spring", "SPRING", "Spring offer", "10 % off.", {})
    services.run_billing(as_of=date(2027, 3, 14))
    close(ws_("b"), support, date(2027, 3, 15))
    assert campaign_audience(campaign, date(2027, 3, 15))[1] == {"workspace_closed": 1}
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 15)) == 1
    assert [m for m in letters() if m[1] == "Spring offer"] == [("a@example.com", "Spring offer")]
    services.run_billing(as_of=date(2027, 3, 19))
    services.reopen_workspace(ws_("b"), by=support, reason="Came back", as_of=date(2027, 3, 20))
    services.run_billing(as_of=date(2027, 3, 20))
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 21)) == 1
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 21)) == 0
    assert [m for m in letters() if m[1] == "Spring offer"] == [
        ("a@example.com", "Spring offer"),
        ("b@example.com", "Spring offer"),
    ]
    assert campaign_results(campaign)["notified"] == 2


# --- W1 × CR2, CR3: closed on the first anniversary ---------------------------------------------


def _member_from_21_january_2027(reviewer):
    """`anniv` paid monthly from 1 January 2027, accepted on 21 January 2027: year one valid
    21 January 2027 up to, not including, 21 January 2028 (CR1); each invoice from 1 February
    2027 through 1 January 2028 (12 × 120.00 = 1,440.00) credited in full (CR2)."""
    ws = paid("anniv", date(2027, 1, 1))
    app = application(workspace=ws, as_of=date(2027, 1, 1))
    return startups.approve_application(app, by=reviewer, as_of=date(2027, 1, 21))


def test_cr3_w1_cr2_closed_on_the_anniversary_after_year_two_was_confirmed(db, reviewer, support):
    """The renewal review opens on 22 December 2027, 30 days before the anniversary (CR3).
    Year two confirmed on 10 January 2028: valid from the later of the anniversary and the
    confirmation, 21 January 2028, to 21 January 2029. On 20 January 2028: a member with
    25,000.00 − 1,440.00 = 23,560.00 of year one left.

    Closed on 21 January 2028, the anniversary (W1): final invoice for 1–20 January, 120 ×
    20/31 = 77.419… → 77.42, credited by year two, the grant valid on that day (year one is
    not): total 0.00. Year one's 23,560.00 lapses at its year's end, 21 January (CR3); year
    two's unused 25,000.00 − 77.42 = 24,922.58 lapses with the closure (W1). On 21 January:
    not a member, balance 0.00. No monthly invoice for January (billed by the final one)."""
    app = _member_from_21_january_2027(reviewer)
    services.run_billing(as_of=date(2027, 12, 21))
    assert not RenewalReview.objects.filter(application=app).exists()
    services.run_billing(as_of=date(2027, 12, 22))
    review = RenewalReview.objects.get(application=app)
    assert (review.year, review.due_on, review.status) == (2, date(2028, 1, 21), "pending")
    services.run_billing(as_of=date(2028, 1, 9))
    confirm_year_two(app, by=reviewer, as_of=date(2028, 1, 10))
    services.run_billing(as_of=date(2028, 1, 20))
    assert status("anniv", date(2028, 1, 20), "startup_member", "credit_balance") == (
        True,
        D("23560.00"),
    )
    anniversary = date(2028, 1, 21)
    close(ws_("anniv"), support, anniversary)
    services.run_billing(as_of=date(2028, 2, 1))
    assert [b for b in short("anniv") if b[1] >= date(2028, 1, 2)] == [
        (
            "final",
            anniversary,
            date(2028, 1, 1),
            anniversary,
            D("77.42"),
            D("0.00"),
            D("77.42"),
            D("0.00"),
            D("0.00"),
        )
    ]
    year_one = CreditGrant.objects.get(workspace__slug="anniv", year=1)
    year_two = CreditGrant.objects.get(workspace__slug="anniv", year=2)
    assert ledger(year_one)[-1] == ("lapse", anniversary, D("-23560.00"))
    assert [e for e in ledger(year_two) if e[0] != "grant"] == [
        ("draw", anniversary, D("-77.42")),
        ("lapse", anniversary, D("-24922.58")),
    ]
    assert status("anniv", anniversary, "startup_member", "credit_balance") == (False, D("0.00"))


def test_cr3_w1_closed_on_the_anniversary_before_year_two_was_confirmed(db, reviewer, support):
    """The review opened on 22 December 2027 and is still pending when `anniv` is closed on
    21 January 2028, the anniversary: year one is no longer valid that day and year two was
    never confirmed, so the final invoice for 1–20 January, 77.42 (120 × 20/31), is not
    credited (CR2: grants valid on the invoice date): 77.42 to pay. Year one's 23,560.00
    lapses that day (CR3). Confirming year two on 22 January, while closed, is refused (W1:
    a closed workspace accepts no change); no year-two grant; the review stays pending."""
    app = _member_from_21_january_2027(reviewer)
    services.run_billing(as_of=date(2028, 1, 20))
    review = RenewalReview.objects.get(application=app)
    anniversary = date(2028, 1, 21)
    close(ws_("anniv"), support, anniversary)
    services.run_billing(as_of=anniversary)
    with pytest.raises(BillingError, match="closed on 21 Jan 2028"):
        confirm_year_two(app, by=reviewer, as_of=date(2028, 1, 22))
    review.refresh_from_db()
    assert review.status == "pending"
    assert not CreditGrant.objects.filter(workspace__slug="anniv", year=2).exists()
    final = Invoice.objects.get(workspace__slug="anniv", kind="final")
    assert (final.subtotal, final.credits, final.total) == (D("77.42"), D("0.00"), D("77.42"))
    year_one = CreditGrant.objects.get(workspace__slug="anniv", year=1)
    assert ledger(year_one)[-1] == ("lapse", anniversary, D("-23560.00"))


# --- X4 × M1, K2, X1 ----------------------------------------------------------------------------


def test_x4_m1_x1_certificates_approved_on_the_1st_or_the_2nd_and_their_close_invoice(
    db, django_capture_on_commit_callbacks, finance
):
    """California, 7.25 %. Five workspaces paid monthly from 1 January 2027, each with one
    certificate submitted on 5 January. January's invoice is dated 1 February whenever the
    close runs (M1), after the changes dated that day (D1):

    - `early`: CA, valid from 1 January, approved 1 February (the issue date): exempt, 120.00.
    - `late`: the same, approved 2 February: January taxed, 120.00 × 7.25 % = 8.70, 128.70,
      the note "still in review on 1 Feb 2027"; February's (1 March) exempt, 120.00.
    - `fresh`: CA, valid from 1 February (the issue date, its first day), approved 5 January:
      exempt.
    - `ended`: CA, valid 1 January to 31 January (ended the day before), approved 5 January:
      taxed 8.70, the note naming its dates.
    - `two`: an approved NV certificate (another state, X4) and a CA one in review: taxed 8.70,
      the note giving both reasons.
    Both runs alike."""

    def actions(day):
        if day == date(2027, 1, 1):
            for slug in ("early", "late", "fresh", "ended", "two"):
                paid(slug, day, business_region="CA")
        if day == date(2027, 1, 5):
            for slug, start, end in (
                ("early", date(2027, 1, 1), None),
                ("late", date(2027, 1, 1), None),
                ("fresh", date(2027, 2, 1), None),
                ("ended", date(2027, 1, 1), date(2027, 1, 31)),
            ):
                cert = certificate(ws_(slug), "CA", on=day, valid_from=start, valid_to=end)
                if slug in ("fresh", "ended"):
                    services.approve_exemption(cert, by=finance, as_of=day)
            nevada = certificate(ws_("two"), "NV", on=day, valid_from=date(2027, 1, 1))
            services.approve_exemption(nevada, by=finance, as_of=day)
            certificate(ws_("two"), "CA", on=day, valid_from=date(2027, 1, 1))
        for slug, on in (("early", date(2027, 2, 1)), ("late", date(2027, 2, 2))):
            if day == on:
                cert = TaxExemption.objects.get(workspace__slug=slug)
                services.approve_exemption(cert, by=finance, as_of=day)

    def read():
        return {slug: taxes(slug)[0] for slug in ("early", "late", "fresh", "ended", "two")} | {
            "late_february": taxes("late")[1]
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    feb1 = date(2027, 2, 1)
    exempt = "exempt: certificate #N (nonprofit)"
    assert outcome["early"] == (feb1, D("0.00"), D("120.00"), exempt)
    assert outcome["late"] == (
        feb1,
        D("8.70"),
        D("128.70"),
        "certificate #N still in review on 1 Feb 2027",
    )
    assert outcome["late_february"] == (date(2027, 3, 1), D("0.00"), D("120.00"), exempt)
    assert outcome["fresh"] == (feb1, D("0.00"), D("120.00"), exempt)
    assert outcome["ended"] == (
        feb1,
        D("8.70"),
        D("128.70"),
        "certificate #N valid 1 Jan 2027 to 31 Jan 2027, not on 1 Feb 2027",
    )
    issued, tax, total, note = outcome["two"]
    assert (issued, tax, total) == (feb1, D("8.70"), D("128.70"))
    assert "covers NV, not CA" in note and "still in review on 1 Feb 2027" in note


@pytest.mark.parametrize(
    ("valid_to", "august_tax", "august_note"),
    [
        (
            date(2027, 7, 31),
            D("1.45"),
            "certificate #N valid 1 Mar 2027 to 31 Jul 2027, not on 1 Aug 2027",
        ),
        (date(2027, 8, 1), D("0.00"), "exempt: certificate #N (nonprofit)"),
    ],
    ids=["ends-31-july", "ends-on-1-august"],
)
def test_x4_k2_an_annual_term_and_its_overage_invoices_under_a_certificate_ending_mid_term(
    db, django_capture_on_commit_callbacks, finance, valid_to, august_tax, august_note
):
    """California, 7.25 %. `ann` (Free with a card from 1 February 2027) holds a CA
    certificate valid from 1 March 2027, approved 3 February. Annual Team from 1 March 2027
    (no trial: Team, Free, Team that day): the annual invoice, 1,440.00, dated 1 March, the
    certificate's first day: exempt (X4). 12,000 MTUs every month: each close bills overage
    only (K2), (12,000 − 10,000) × 0.01 = 20.00, dated 1 April … 1 August, exempt while the
    certificate is valid on the issue date. Ending 31 July, July's overage invoice (1 August)
    is taxed: 20.00 × 7.25 % = 1.45, total 21.45, the note naming its dates; ending on 1 August
    (its last day, included), it is exempt. Both runs alike."""

    def actions(day):
        if day == date(2027, 2, 1):
            new("ann", day, card=True, business_region="CA")
        if day == date(2027, 2, 3):
            cert = certificate(
                ws_("ann"),
                "CA",
                on=day,
                valid_from=date(2027, 3, 1),
                valid_to=valid_to,
            )
            services.approve_exemption(cert, by=finance, as_of=day)
        if day == date(2027, 3, 1):
            services.change_to_team(ws_("ann"), as_of=day)
            services.change_to_free(ws_("ann"), as_of=day)
            services.change_to_team(ws_("ann"), interval="annual", as_of=day)
        if day.day == 1 and date(2027, 3, 1) <= day <= date(2027, 7, 1):
            services.record_usage(ws_("ann"), month=day, mtus=12_000)

    def read():
        return {"bills": [b[:2] + b[4:5] for b in short("ann")], "taxes": taxes("ann")}

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 2, 1), date(2027, 8, 1), actions, read
    )
    exempt = "exempt: certificate #N (nonprofit)"
    months = [date(2027, m, 1) for m in (4, 5, 6, 7)]
    assert outcome["bills"] == [("annual", date(2027, 3, 1), D("1440.00"))] + [
        (M, m, D("20.00")) for m in months + [date(2027, 8, 1)]
    ]
    assert outcome["taxes"] == (
        [(date(2027, 3, 1), D("0.00"), D("1440.00"), exempt)]
        + [(m, D("0.00"), D("20.00"), exempt) for m in months]
        + [(date(2027, 8, 1), august_tax, D("20.00") + august_tax, august_note)]
    )


# --- I5 × W1 × X2 × P2: the document shows what was stored --------------------------------------


def test_i5_w1_x2_p2_a_closed_workspaces_final_invoice_document_after_rate_and_price_changed(
    db, support, finance
):
    """California, 7.25 %. `shut` paid monthly from 1 March 2027, closed on 16 March: final
    invoice for 1–15 March, 120 × 15/31 = 58.0645… → 58.06, tax 58.06 × 7.25 % = 4.20935 →
    4.21, total 62.27. On 17 March California's rate becomes 8.00 % from 1 April (X2) and
    Team's price 150.00 from 1 April (P2). The document (I5), page and PDF, is built from the
    stored row: 15 days at $58.06, subtotal $58.06, tax $4.21 at 7.25 %, total $62.27, the
    customer in California; nothing at 8 % (58.06 × 8 % = 4.64, 62.70) or at 150.00 (150 ×
    15/31 = 72.58)."""
    ws = paid("shut", date(2027, 3, 1), business_region="CA")
    final = close(ws, support, date(2027, 3, 16)).final_invoice
    services.set_tax_rate(
        "US", region="CA", rate="8.00", name="CA sales tax", valid_from=date(2027, 4, 1)
    )
    services.update_plan(
        Plan.objects.get(code="team"),
        by=finance,
        reason="New prices",
        effective_on=date(2027, 4, 1),
        monthly_price="150.00",
    )
    final.refresh_from_db()
    doc = invoice_document(final)
    facts = dict(doc.facts)
    assert (facts["Issue date"], facts["Tax rate"], facts["Kind"]) == (
        "16 Mar 2027",
        "7.25 %",
        "Final invoice",
    )
    assert [(line.quantity, line.amount) for line in doc.lines] == [("15 days", "$58.06")]
    assert doc.totals[0] == ("Subtotal", "$58.06")
    assert doc.totals[-1] == ("Total (USD)", "$62.27")
    assert [amount for _, amount in doc.totals] == ["$58.06", "$4.21", "$62.27"]
    assert (doc.customer_name, doc.customer_location) == (
        "Shut",
        "California, United States of America",
    )
    pdf = render_pdf(doc, issued=final.issue_date)
    assert b"$62.27" in pdf and b"$4.21" in pdf and b"$58.06" in pdf
    for recomputed in (b"$62.70", b"$4.64", b"$72.58"):
        assert recomputed not in pdf


# --- F7 × W1 × F4: a trial that lifted a data stop, ended by a closure --------------------------


def _stopped_then_trial(support, closed_on, reopened_on, team_again=False):
    """`up` Free with a card from 1 December 2026, 2,000 MTUs in December and January: strikes
    at both closes, `locked` on 1 January and `locked_data_stopped` on 1 February 2027 (F1,
    F2). Team on 2 February: a trial (T1, card on file: T2) that lifts the lock (F4); closed
    on `closed_on`, reopened on `reopened_on` (then Team again when `team_again`)."""

    def actions(day):
        if day == date(2026, 12, 1):
            new("up", day, card=True)
        if day in (date(2026, 12, 31), date(2027, 1, 31)):
            services.record_usage(ws_("up"), month=day.replace(day=1), mtus=2_000)
        if day == date(2027, 2, 2):
            services.change_to_team(ws_("up"), as_of=day)
        if day == closed_on:
            close(ws_("up"), support, day)
        if day == reopened_on:
            services.reopen_workspace(ws_("up"), by=support, reason="Came back", as_of=day)
            if team_again:
                services.change_to_team(ws_("up"), as_of=day)

    return actions


def test_w1_t1_t5_f4_reopened_after_a_trial_ended_by_closure_then_team_paid_at_once(
    db, django_capture_on_commit_callbacks, support
):
    """As above: `up`'s data stopped on 1 February 2027, its trial from 2 February ended by a
    closure on 5 February, uncharged (W1, T5: no invoice for 2–4 February). Reopened on
    10 February (W1: Free, unlocked, data flowing) and moved to Team that day: paid at once,
    no trial (T1: it had a Team trial). February: 19 paid days (10–28) of 28: 120 × 19/28 =
    81.428… → 81.43, no overage (no usage reported), dated 1 March for 10 February – 1 March.
    No strike for February (F1: trial and paid days in it). Status on 12 February: Team, not
    trialing, unlocked, data flowing. Both runs alike."""
    actions = _stopped_then_trial(support, date(2027, 2, 5), date(2027, 2, 10), team_again=True)

    def read():
        return {
            "bills": short("up"),
            "status": status(
                "up", date(2027, 2, 12), "plan", "trialing", "trial_end", "lock", "data_flow"
            ),
            "strikes": sorted(Strike.objects.values_list("month", flat=True)),
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2026, 12, 1), date(2027, 3, 1), actions, read
    )
    assert outcome["bills"] == [
        (
            M,
            date(2027, 3, 1),
            date(2027, 2, 10),
            date(2027, 3, 1),
            D("81.43"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("81.43"),
        )
    ]
    assert outcome["status"] == ("team", False, None, NOT_LOCKED, True)
    assert outcome["strikes"] == [date(2026, 12, 1), date(2027, 1, 1)]


# --- F1, F2 × W1: a month over the Free limit and its closure -----------------------------------


@pytest.mark.parametrize(
    ("closed_on", "reopened_on", "expected_locks"),
    [
        (
            date(2027, 1, 15),
            date(2027, 1, 20),
            [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 3, 1), LOCKED, STOPPED, "free_limit"),
            ],
        ),
        (
            date(2027, 2, 1),
            date(2027, 2, 2),
            [(date(2027, 3, 1), NOT_LOCKED, STOPPED, "free_limit")],
        ),
    ],
    ids=["closed-mid-january", "closed-on-1-february"],
)
def test_f1_f2_w1_a_month_over_the_free_limit_strikes_though_closed_and_counts_after_reopening(
    db, django_capture_on_commit_callbacks, support, closed_on, reopened_on, expected_locks
):
    """`free` on Free from 1 January 2027 reports 2,000 MTUs for January on 10 January,
    before any closure, and 2,000 for February on 28 February.

    F1: January's close (1 February) strikes a workspace on Free on every day of January on
    which it existed that reported more than 1,000 MTUs: a closure (W1: Free from then) does
    not make January any less a Free month. F2: one strike → `locked` on 1 February.
    - Closed 15 January, reopened 20 January (open again at January's close): locked on
      1 February; February's strike → two in six months → `locked_data_stopped` on 1 March.
    - Closed on 1 February (January's close runs after the day's changes, D1): January's
      strike is recorded (F1 reads January, open all month), but a close neither locks nor
      unlocks a closed workspace (README "Closing a workspace": its data has stopped, and W1
      sends one email, the closure's); reopened on 2 February (W1: Free, unlocked); strikes
      stay counted (F2): February's makes two → `locked_data_stopped` on 1 March.
    Both runs alike."""

    def actions(day):
        if day == date(2027, 1, 1):
            new("free", day)
        if day == date(2027, 1, 10):
            services.record_usage(ws_("free"), month=date(2027, 1, 1), mtus=2_000)
        if day == closed_on:
            close(ws_("free"), support, day)
        if day == reopened_on:
            services.reopen_workspace(ws_("free"), by=support, reason="Came back", as_of=day)
        if day == date(2027, 2, 28):
            services.record_usage(ws_("free"), month=date(2027, 2, 1), mtus=2_000)

    def read():
        return {
            "strikes": sorted(Strike.objects.values_list("month", flat=True)),
            "locks": locks("free"),
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    assert outcome["strikes"] == [date(2027, 1, 1), date(2027, 2, 1)]
    assert outcome["locks"] == expected_locks


# --- D2, U1 × W1: the closure's day and month ----------------------------------------------------


def test_d2_u1_w1_k1_changes_on_the_closure_day_and_usage_for_the_closures_month(db, support):
    """`shut` paid monthly from 1 March 2027 with a card; 12,000 MTUs for March reported on
    10 March. Closed on 16 March (W1): final invoice for 1–15 March, 120 × 15/31 = 58.0645… →
    58.06 + (12,000 − 10,000) × 0.01 = 20.00 → 78.06 (K1: the overage reported so far).

    The same day, after the closure: usage, a card, a move to Team and a coupon are refused
    (W1: a closed workspace accepts no change but reopening). The clock through 16 March: a
    reopening dated 16 March is refused, naming the last processed day (D2); dated 17 March it
    is accepted. 15,000 MTUs for March reported on 20 March (a new figure replaces the old,
    U1): March's close (1 April) bills nothing more (it did not return to Team: monthly Team
    ended with its final invoice, K1) and strikes nothing (F1: March had paid Team days)."""
    ws = paid("shut", date(2027, 3, 1))
    services.record_usage(ws, month=date(2027, 3, 1), mtus=12_000)
    day = date(2027, 3, 16)
    close(ws, support, day)
    promo = coupon(percent_off="10", duration="once")
    for change in (
        lambda: services.record_usage(ws_("shut"), month=date(2027, 3, 1), mtus=15_000),
        lambda: services.add_payment_method(ws_("shut"), as_of=day, brand="visa", last4="4242"),
        lambda: services.change_to_team(ws_("shut"), as_of=day),
        lambda: coupons.redeem_coupon(ws_("shut"), promo.code, by=support, as_of=day),
    ):
        with pytest.raises(WorkspaceClosed, match="closed on 16 Mar 2027"):
            change()
    services.run_billing(as_of=day)
    with pytest.raises(DayAlreadyProcessed, match="through 16 Mar 2027"):
        services.reopen_workspace(ws_("shut"), by=support, reason="Back", as_of=day)
    services.reopen_workspace(ws_("shut"), by=support, reason="Back", as_of=date(2027, 3, 17))
    services.record_usage(ws_("shut"), month=date(2027, 3, 1), mtus=15_000)
    services.run_billing(as_of=date(2027, 4, 1))
    assert short("shut") == [
        (
            "final",
            day,
            date(2027, 3, 1),
            day,
            D("78.06"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("78.06"),
        )
    ]
    assert not Strike.objects.exists()
    assert status("shut", date(2027, 4, 1), "plan", "lock", "data_flow") == (
        "free",
        NOT_LOCKED,
        True,
    )


# --- FC1 × W1 -----------------------------------------------------------------------------------


def test_fc1_w1_a_closed_workspace_forecasts_only_what_its_closure_left_and_refuses_a_change(
    db, django_capture_on_commit_callbacks, support
):
    """`first` and `gone` paid monthly from 1 January 2027. The clock through 31 January;
    `first` closed on 1 February. On 1 February, a forecast of 3 months for `first` (FC1):
    January's invoice, dated 1 February, 120.00 (M1: paid Team every day of January; its close
    runs that day after the closure, D1), then nothing (W1: closed, its data stopped).

    The clock through 9 February (it issues that January invoice, as forecast, field by field
    and line by line); `gone` closed on 10 February: final invoice for 1–9 February, 120 ×
    9/28 = 38.571… → 38.57 (K1). A forecast of 3 months for `gone` that day: nothing (January
    was billed on 1 February, February by the final invoice, nothing after).

    A proposed coupon for either is refused (W1: a closed workspace accepts no change).
    Nothing written, no email, by any forecast."""
    for slug in ("first", "gone"):
        paid(slug, date(2027, 1, 1))
    promo = coupon(percent_off="10", duration="once")

    def redeem(ws, as_of):
        coupons.redeem_coupon(ws, promo.code, by=support, as_of=as_of)

    def forecasts(slug, on):
        before = everything()
        with django_capture_on_commit_callbacks(execute=True):
            forecast = forecast_invoices(ws_(slug), as_of=on, months=3)
            with pytest.raises(WorkspaceClosed, match="closed on"):
                forecast_invoices(ws_(slug), as_of=on, months=3, changes=[redeem])
        assert everything() == before
        return forecast

    services.run_billing(as_of=date(2027, 1, 31))
    on = date(2027, 2, 1)
    close(ws_("first"), support, on)
    first = forecasts("first", on)
    assert [(i.kind, i.issue_date, i.period_start, i.period_end, i.total) for i in first] == [
        (M, on, date(2027, 1, 1), on, D("120.00"))
    ]
    services.run_billing(as_of=date(2027, 2, 9))
    issued = list(Invoice.objects.filter(workspace__slug="first"))
    assert forecast_figures(first) == forecast_figures(issued)
    close(ws_("gone"), support, date(2027, 2, 10))
    assert forecasts("gone", date(2027, 2, 10)) == []
    services.run_billing(as_of=date(2027, 5, 1))
    assert forecast_figures(first) == forecast_figures(
        Invoice.objects.filter(workspace__slug="first")
    )
    assert [b[:2] + b[8:] for b in short("gone")] == [
        (M, on, D("120.00")),
        ("final", date(2027, 2, 10), D("38.57")),
    ]


def test_fc1_w1_k1_a_forecast_under_a_closure_proposed_on_a_months_last_day(
    db, django_capture_on_commit_callbacks, support
):
    """`shut` paid monthly from 1 January 2027; 11,000 MTUs for February, 12,500 for March
    reported by 30 March; the clock through 30 March. On 31 March, forecasts of 2 months
    (MTUs as last month's, February's 11,000, but March at least what it reported):

    - today's state: March (1 April) 120.00 + 25.00 = 145.00; April (1 May) 120.00 + 10.00 =
      130.00;
    - under a closure proposed on 31 March (W1): its final invoice, dated 31 March, for 1–30
      March: 120 × 30/31 = 116.129… → 116.13 + the 2,500 MTUs over reported so far, 25.00
      (K1) → 141.13; nothing after (closed: no usage assumed, nothing billed).
    Nothing written, no email (FC1). The closure then made on 31 March and the clock run to
    1 May issue exactly that final invoice, field by field and line by line."""
    paid("shut", date(2027, 1, 1))
    services.record_usage(ws_("shut"), month=date(2027, 2, 1), mtus=11_000)
    services.record_usage(ws_("shut"), month=date(2027, 3, 1), mtus=12_500)
    services.run_billing(as_of=date(2027, 3, 30))
    on = date(2027, 3, 31)
    before = everything()

    def closure(ws, as_of):
        close(ws, support, as_of)

    with django_capture_on_commit_callbacks(execute=True):
        today = forecast_invoices(ws_("shut"), as_of=on, months=2)
        proposed = forecast_invoices(ws_("shut"), as_of=on, months=2, changes=[closure])
    assert everything() == before
    assert [(i.kind, i.issue_date, i.total) for i in today] == [
        (M, date(2027, 4, 1), D("145.00")),
        (M, date(2027, 5, 1), D("130.00")),
    ]
    assert [(i.kind, i.issue_date, i.period_start, i.period_end, i.total) for i in proposed] == [
        ("final", on, date(2027, 3, 1), on, D("141.13"))
    ]
    close(ws_("shut"), support, on)
    services.run_billing(as_of=date(2027, 5, 1))
    issued = list(Invoice.objects.filter(workspace__slug="shut", issue_date__gte=on))
    assert forecast_figures(proposed) == forecast_figures(issued)


# --- K1, M3, K4, K2 × W1 ------------------------------------------------------------------------


def test_w1_k1_m3_closed_in_the_month_its_trial_turned_paid_bills_no_overage(
    db, django_capture_on_commit_callbacks, support
):
    """`up` signs up straight into Team with a card on 1 February 2027: trial 1–14 February,
    end date 15 February, paid from then (T3, T4). 15,000 MTUs for February reported on
    18 February; closed on 20 February (W1): final invoice for the paid days before the
    closure, 15–19 February, 120 × 5/28 = 21.428… → 21.43; February had trial days, so no
    overage (M3, which K1 applies to a final invoice too): 21.43. February's close (1 March)
    issues nothing more. Both runs alike."""

    def actions(day):
        if day == date(2027, 2, 1):
            new("up", day, plan="team", card=True)
        if day == date(2027, 2, 18):
            services.record_usage(ws_("up"), month=date(2027, 2, 1), mtus=15_000)
        if day == date(2027, 2, 20):
            close(ws_("up"), support, day)

    outcome = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 2, 1),
        date(2027, 3, 1),
        actions,
        lambda: {"bills": short("up")},
    )
    assert outcome["bills"] == [
        (
            "final",
            date(2027, 2, 20),
            date(2027, 2, 15),
            date(2027, 2, 20),
            D("21.43"),
            D("0.00"),
            D("0.00"),
            D("0.00"),
            D("21.43"),
        )
    ]


def test_w1_k4_k2_closed_the_day_after_monthly_to_annual_no_overage_no_refund(
    db, django_capture_on_commit_callbacks, support
):
    """`up` paid monthly from 1 March 2027; 15,000 MTUs for March reported on 10 March. Moved
    to annual on 15 March (K4): final invoice for the monthly part, 1–14 March, 120 × 14/31 =
    54.1935… → 54.19 + (15,000 − 10,000) × 0.01 = 50.00 → 104.19, and the annual invoice,
    1,440.00, dated 15 March. Closed on 16 March (W1): the annual term is not renewed, not
    refunded and bills no further overage: 20,000 MTUs reported for March by then change
    nothing, March's close (1 April) issues no overage invoice. Two invoices in all, through
    1 April 2027. Both runs alike."""

    def actions(day):
        if day == date(2027, 3, 1):
            paid("up", day)
        if day == date(2027, 3, 10):
            services.record_usage(ws_("up"), month=date(2027, 3, 1), mtus=15_000)
        if day == date(2027, 3, 15):
            services.change_interval(ws_("up"), interval="annual", as_of=day)
            services.record_usage(ws_("up"), month=date(2027, 3, 1), mtus=20_000)
        if day == date(2027, 3, 16):
            close(ws_("up"), support, day)

    outcome = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 3, 1),
        date(2027, 4, 1),
        actions,
        lambda: {"bills": [b[:4] + b[8:] for b in short("up")]},
    )
    assert outcome["bills"] == [
        ("final", date(2027, 3, 15), date(2027, 3, 1), date(2027, 3, 15), D("104.19")),
        ("annual", date(2027, 3, 15), date(2027, 3, 15), date(2028, 3, 15), D("1440.00")),
    ]
