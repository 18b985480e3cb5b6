"""W1 and FC1 in the admin, through the test client with the real role groups: support closes
and reopens from the workspace page after a confirmation that says what will happen; the
forecast page shows today's state beside a proposed change and writes nothing."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.apps import apps
from django.urls import reverse

from billing import services
from billing.models import Invoice, Usage, WorkspaceClosure
from coupons import services as coupons
from tests.admin_pages import as_shown, messages_of
from tests.billing.factories import workspace
from tests.coupons.factories import (
    approved_proof,
    coupon,
    free_workspace,
    paid_annual,
    paid_monthly,
)

JAN = date(2026, 1, 1)
TODAY = date(2026, 1, 21)


@pytest.fixture(autouse=True)
def today(pin_today):
    return pin_today(TODAY)  # the admin acts on a fixed day, not the wall clock


def page(ws, name):
    return reverse(f"admin:billing_workspace_{name}", args=[ws.pk])


def change_page(ws):
    return reverse("admin:billing_workspace_change", args=[ws.pk])


@pytest.fixture
def customer(db, support):
    ws = paid_monthly(as_of=JAN, name="Acme")
    coupons.redeem_coupon(
        ws, coupon(code="TWENTY", percent_off="20", duration="forever").code, by=support, as_of=JAN
    )
    coupons.grant_credits(ws, amount="50.00", as_of=JAN, year=1, by=support)
    services.record_usage(ws, month=JAN, mtus=12_000)
    return ws


def test_w1_the_confirmation_says_what_closing_will_do(client, support, customer):
    client.force_login(support)
    body = client.get(page(customer, "close")).content.decode()
    # K1: 77.42 + 20.00 = 97.42; 20 % off = 19.48; then the $50.00 credit: 27.94.
    for text in (
        "Its data stops at once",
        "Monthly Team ends now with a final invoice of $27.94 dated 21 Jan 2026.",
        "The discount TWENTY (20% off, forever) ends after the final invoice.",
        "One email confirms the closure to",
        "Team monthly, January 2026: 20 of 31 days",
        "-$19.48",
    ):
        assert text in body, text
    assert "unused startup credit lapses" not in body  # the final invoice uses all of it
    assert not WorkspaceClosure.objects.exists()


@pytest.mark.parametrize("what", ["trial", "term"])
def test_w1_d4_the_confirmation_says_what_the_clock_owes_before_closing(
    client, support, pin_today, what
):
    """The clock has processed through 8 February; support closes on the 10th. A trial that
    ended on the 9th with a card on file turned paid (T4): closing bills its one paid day,
    120 × 1/28 = 4.29, where the page said "the trial ends now, uncharged". A term that ended
    on the 9th renewed (K2) with its 1,440.00 invoice, which the page did not mention."""
    if what == "trial":
        ws = workspace(as_of=date(2026, 1, 26), card=True, name="Trying")
        services.change_to_team(ws, as_of=date(2026, 1, 26))  # trial end 2026-02-09
    else:
        ws = paid_annual(as_of=date(2025, 2, 9), name="Yearly")  # term to 2026-02-09
    services.run_billing(as_of=date(2026, 2, 8))
    pin_today(date(2026, 2, 10))
    client.force_login(support)
    shown = client.get(page(ws, "close"))
    body, digest = shown.content.decode(), shown.context["shown_digest"]
    assert not Invoice.objects.filter(workspace=ws, issue_date=date(2026, 2, 9)).exists()
    if what == "trial":
        assert "Monthly Team ends now with a final invoice of $4.29 dated 10 Feb 2026." in body
        assert "uncharged" not in body
    else:
        assert (
            "First, the annual invoice of $1,440.00 dated 9 Feb 2026 that the billing clock "
            "still owes is issued." in body
        )
        # The term's days, the last one included (it read "to 9 Feb 2027", the exclusive end).
        assert "The annual term (9 February 2026 – 8 February 2027) ends now" in body
    client.post(
        page(ws, "close"), {"reason": "Customer asked for deletion, ticket 9", "shown": digest}
    )
    issued = Invoice.objects.filter(workspace=ws, issue_date__gte=date(2026, 2, 9))
    expected = [("final", D("4.29"))] if what == "trial" else [("annual", D("1440.00"))]
    assert list(issued.order_by("issue_date").values_list("kind", "total")) == expected


def test_w1_the_confirmation_states_the_decisions_made_on_closures(client, support, customer):
    """README "Closing a workspace": what support must be able to tell the customer."""
    annual = paid_annual(as_of=JAN, name="Yearly")
    trial = workspace(as_of=JAN, name="Trying", card=True)
    services.change_to_team(trial, as_of=date(2026, 1, 15))
    client.force_login(support)
    member = client.get(page(customer, "close")).content.decode()
    for text in (
        "It sits on Free and keeps its lock (unlocked): month closes no longer strike, lock or "
        "unlock it.",
        "No startup-program renewal review opens for it.",
        "finance can still void them and issue credit notes.",
    ):
        assert text in member, text
    assert "F7 does not apply" not in member
    assert (
        "it is not renewed, not refunded, and no overage of January 2026 is billed; a month "
        "that had already ended is invoiced at its month close."
    ) in (client.get(page(annual, "close")).content.decode())
    assert "a lock the trial lifted is not put back (F7 does not apply)" in (
        client.get(page(trial, "close")).content.decode()
    )


def test_w1_support_closes_with_a_reason_and_then_can_only_reopen(client, support, customer):
    client.force_login(support)
    refused = client.post(page(customer, "close"), {"reason": "  "})
    assert "Say why" in refused.content.decode()
    assert not WorkspaceClosure.objects.exists()

    url = page(customer, "close")
    response = client.post(url, as_shown(client, url, {"reason": "Deletion request, ticket 5"}))
    assert response.status_code == 302 and response.url == change_page(customer)
    closure = WorkspaceClosure.objects.get(workspace=customer)
    assert (closure.closed_by, closure.reason, closure.final_invoice.total) == (
        support,
        "Deletion request, ticket 5",
        D("27.94"),
    )
    workspace_page = client.get(change_page(customer))
    body = workspace_page.content.decode()
    assert "Closed on 21 Jan 2026" in body and "Data <strong>stopped</strong>" in body
    # Nothing but reopening changes it; its emails (the closure's among them) can be read.
    assert [label for label, _ in workspace_page.context["actions"]] == [
        "Reopen workspace",
        "Emails",
    ]
    # Its details are shown, not offered for editing: no field to type in, no Save (the
    # service refused every save with "Editing the details is refused").
    assert 'name="name"' not in body and 'name="_save"' not in body
    assert 'name="change_reason"' not in body
    edit = client.post(change_page(customer), {"name": "Renamed", "change_reason": "x"})
    assert edit.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Acme"
    # Every other page of the workspace says so and offers nothing to submit.
    plan_page = client.get(reverse("admin:billing_workspace_action", args=[customer.pk, "plan"]))
    assert "was closed on 21 Jan 2026: reopen it first." in plan_page.content.decode()
    refused = client.post(
        reverse("admin:billing_workspace_action", args=[customer.pk, "usage"]),
        {"month": "2026-01", "mtus": "1", "reason": "Ticket 9"},
    )
    assert "reopen it first" in refused.content.decode()
    assert Usage.objects.get(workspace=customer, month=JAN).mtus == 12_000

    url = page(customer, "reopen")
    reopened = client.post(
        url, as_shown(client, url, {"reason": "Came back, ticket 9"}), follow=True
    )
    assert "Acme reopened on Free: Came back, ticket 9" in messages_of(reopened)
    customer.refresh_from_db()
    assert (customer.closed_on, customer.data_flow) == (None, True)


def test_w1_closed_workspaces_are_a_list_filter(client, support, customer):
    other = paid_monthly(as_of=JAN, name="Other")
    services.close_workspace(customer, by=support, reason="Gone", as_of=TODAY)
    client.force_login(support)
    closed = client.get(reverse("admin:billing_workspace_changelist") + "?closed=yes")
    open_ = client.get(reverse("admin:billing_workspace_changelist") + "?closed=no")
    assert [w.name for w in closed.context["cl"].result_list] == ["Acme"]
    assert [w.name for w in open_.context["cl"].result_list] == [other.name]


@pytest.mark.parametrize("role", ["reviewer", "finance"])
def test_w1_r1_only_support_closes_or_reopens(client, request, role, customer):
    client.force_login(request.getfixturevalue(role))
    assert client.post(page(customer, "close"), {"reason": "x"}).status_code == 403
    assert client.post(page(customer, "reopen"), {"reason": "x"}).status_code == 403
    assert not WorkspaceClosure.objects.exists()


def _rows():
    return {m._meta.db_table: m._default_manager.count() for m in apps.get_models()}


def test_fc1_the_forecast_page_sets_today_beside_a_change_and_writes_nothing(
    client, finance, customer
):
    client.force_login(finance)
    before = _rows()
    response = client.get(
        page(customer, "forecast"),
        {"months": "3", "mtus": "given", "given_mtus": "13000", "change": "team:annual"},
    )
    assert response.status_code == 200
    totals = response.context["totals"]
    # Today: 150.00 a month, 20 % off, the $50 credit on the first: 70.00 + 120.00 + 120.00.
    assert totals["today"] == D("310.00")
    # Annual from today: final 77.42 + 20.00 = 97.42, −19.48 (20 %), −50.00 credit = 27.94;
    # the 1,440.00 term (credit is for monthly bills only; TWENTY covers annual: −288.00);
    # then overage only: 10.00, 30.00, 30.00, each −20 %: 8.00 + 24.00 + 24.00.
    assert [(i.kind, i.total) for row in response.context["rows"] for i in row["proposed"]] == [
        ("final", D("27.94")),
        ("annual", D("1152.00")),
        ("monthly", D("8.00")),
        ("monthly", D("24.00")),
        ("monthly", D("24.00")),
    ]
    body = response.content.decode()
    assert "Team, billed annually (upgrade or switch)" in body and "$1,235.94" in body
    # The annual line names its term as the period under it does (the last day included), not
    # in ISO dates up to the exclusive end ("Team annual, 2026-01-21 to 2027-01-21").
    term = "21 January 2026 – 20 January 2027"
    assert f"Team annual, {term}</td>" in body and f"For {term}" in body
    assert "2027-01-21" not in body
    assert _rows() == before
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    "change, proposed",
    [
        ("team:annual", [("annual", date(2026, 6, 10), D("1440.00"))]),
        (
            "team:monthly",
            [
                ("monthly", date(2026, 7, 1), D("84.00")),
                ("monthly", date(2026, 8, 1), D("120.00")),
                ("monthly", date(2026, 9, 1), D("120.00")),
            ],
        ),
    ],
)
def test_fc1_k2_k4_team_proposed_for_a_cancelled_annual_term_withdraws_the_cancellation(
    client, support, pin_today, change, proposed
):
    """FC1, K2, K4: an annual term from 10 Jun 2025, cancelled on 1 Mar 2026, ends on Free on
    10 Jun 2026; today (15 March) it forecasts nothing over six months at 10,000 MTUs. Team
    proposed is the plan change that withdraws the cancellation: billed annually, the term
    renews on 10 June (1,440.00); billed monthly, it moves to monthly then: June's 21 paid days,
    21/30 × 120.00 = 84.00, then 120.00 a month. Before, the page proposed an interval change:
    annually was refused ("already billed annually") and monthly forecast 0.00, the workspace
    going to Free under a proposal that said Team."""
    pin_today(date(2026, 3, 15))
    ws = paid_annual(date(2025, 6, 10))
    services.change_to_free(ws, as_of=date(2026, 3, 1))
    client.force_login(support)
    response = client.get(
        page(ws, "forecast"),
        {"months": "6", "mtus": "given", "given_mtus": "10000", "change": change},
    )
    assert response.status_code == 200 and not response.context.get("change_error")
    rows = response.context["rows"]
    assert [i for row in rows for i in row["today"]] == []
    assert [(i.kind, i.issue_date, i.total) for row in rows for i in row["proposed"]] == proposed
    assert ws.subscriptions.get(ended_on=None).cancel_at_term_end  # nothing kept


def test_fc1_a_coupon_and_a_refused_change_on_the_forecast_page(client, support, db):
    ws = paid_monthly(as_of=JAN, name="Plain")
    coupon(code="HALF", percent_off="50", duration="once")
    client.force_login(support)
    response = client.get(
        page(ws, "forecast"), {"months": "2", "mtus": "last", "change": "coupon", "coupon": "HALF"}
    )
    assert response.context["assumed_mtus"] == 0  # December reported nothing
    proposed = [i.total for row in response.context["rows"] for i in row["proposed"]]
    assert proposed == [D("60.00"), D("120.00")]  # once: half of January's 120.00
    assert not ws.coupon_redemptions.exists()

    free = free_workspace(as_of=JAN, name="Free")
    refused = client.get(
        page(free, "forecast"), {"months": "2", "mtus": "last", "change": "team:monthly"}
    )
    assert refused.context["change_error"] == (
        "A payment method is needed to move from Free to Team. Add one first."
    )
    assert "is refused: A payment method is needed" in refused.content.decode()
    assert "tick <em>Assume a card is added today</em>" in refused.content.decode()
    assert "tick <em>" not in response.content.decode()


def test_fc1_c2_the_forecast_offers_only_the_coupons_the_workspace_can_receive(
    client, support, db, settings, tmp_path
):
    """C2 on the forecast's picker. A walk: a workspace with a running discount was offered
    every coupon, and each was refused once chosen ("one discount at a time"). Now the picker
    offers, on 21 January 2026, only what the workspace can receive: not one it received,
    on monthly Team not an annual-only one, NONPROFIT not without an approved proof, and
    none while a discount runs, saying why."""
    settings.PRIVATE_MEDIA_ROOT = settings.MEDIA_ROOT = tmp_path  # the proof's document
    plain = paid_monthly(as_of=JAN, name="Plain")
    for code, intervals in (("HALF", ("monthly", "annual")), ("YEARLY", ("annual",))):
        coupon(code=code, percent_off="50", duration="once", intervals=intervals)
    coupon(code="TAKEN", percent_off="10", duration="once")
    coupon(code="TWENTY", percent_off="20", duration="repeating", duration_months=3)
    coupons.redeem_coupon(plain, "TAKEN", by=support, as_of=JAN)
    coupons.remove_discount(plain, by=support, reason="Ticket 7: applied by mistake", as_of=JAN)
    client.force_login(support)

    def offered(ws):
        response = client.get(page(ws, "forecast"))
        return response, [c.code for c in response.context["form"].fields["coupon"].queryset]

    assert offered(plain)[1] == ["HALF", "TWENTY"]
    assert offered(paid_annual(as_of=JAN, name="Yearly"))[1] == [
        "HALF",
        "TAKEN",
        "TWENTY",
        "YEARLY",
    ]
    proven = paid_monthly(as_of=JAN, name="Proven")
    approved_proof(proven, support, as_of=JAN)
    assert offered(proven)[1] == ["HALF", "NONPROFIT", "TAKEN", "TWENTY"]

    coupons.redeem_coupon(plain, "TWENTY", by=support, as_of=TODAY)
    response, codes = offered(plain)
    assert codes == []
    assert (
        "None: Plain has an active discount (TWENTY, from 21 Jan 2026), and a workspace has "
        "one at a time (C2). Remove it first to forecast another."
    ) in response.content.decode().replace("&#x27;", "'")


def _proposed(response):
    return [
        (i.kind, i.issue_date, i.total) for row in response.context["rows"] for i in row["proposed"]
    ]


def test_fc1_t2_a_free_workspace_without_a_card_is_quoted_team_with_one(client, support, db):
    """FC1, T1, T2: support quotes Team to a Free customer with no card on file (refused above
    without one). On 21 January 2026 a move to Team, a card assumed added that day: the 14-day
    trial (T1, T3: 21 January to 3 February), paid monthly Team from 4 February. With 15,000
    MTUs a month: February's invoice, 1 March, is 25 of 28 days of $120.00 = 107.14 and no
    overage, February having trial days (M2, M3); March's, 1 April, 120.00 + 5,000 MTUs over at
    $0.01 = 170.00. The same as a twin workspace whose customer did add a card that day. Nothing
    survives: no card, no plan change."""
    quoted = free_workspace(as_of=JAN, name="Quoted")
    twin = free_workspace(as_of=JAN, name="Twin")
    services.add_payment_method(twin, as_of=TODAY)
    client.force_login(support)
    asked = {"months": "3", "mtus": "given", "given_mtus": "15000", "change": "team:monthly"}
    before = _rows()
    response = client.get(page(quoted, "forecast"), {**asked, "assume_card": "on"})
    assert "change_error" not in response.context
    assert response.context["change_label"] == (
        "Team, billed monthly (upgrade or switch), a card added today"
    )
    expected = [
        ("monthly", date(2026, 3, 1), D("107.14")),
        ("monthly", date(2026, 4, 1), D("170.00")),
    ]
    assert _proposed(response) == expected
    assert _proposed(client.get(page(twin, "forecast"), asked)) == expected
    assert response.context["totals"]["today"] == D("0.00")  # Free: no invoice
    assert _rows() == before
    assert not quoted.payment_methods.exists() and quoted.subscriptions.get().plan.code == "free"
    # The twin has a card: the assumption adds none and the label does not claim one.
    with_card = client.get(page(twin, "forecast"), {**asked, "assume_card": "on"})
    assert with_card.context["change_label"] == "Team, billed monthly (upgrade or switch)"
    assert _proposed(with_card) == expected


def test_fc1_t4_the_card_alone_as_the_proposal_for_a_trial_without_one(client, support, db):
    """FC1, T4: a Team trial signed up on 10 January 2026 without a card ends on 24 January and
    goes back to Free (T5: nothing charged). "Assume a card is added today" (21 January) with no
    other change: it goes on as paid monthly Team from the 24th. January's invoice, 1 February,
    is 8 of 31 days of $120.00 = 30.97 (no usage); February's, 1 March, 120.00."""
    trial = workspace(as_of=date(2026, 1, 10), plan="team", card=False, name="Trial")
    client.force_login(support)
    response = client.get(
        page(trial, "forecast"), {"months": "2", "mtus": "last", "assume_card": "on"}
    )
    assert response.context["change_label"] == "A card added today"
    assert response.context["totals"]["today"] == D("0.00")
    assert _proposed(response) == [
        ("monthly", date(2026, 2, 1), D("30.97")),
        ("monthly", date(2026, 3, 1), D("120.00")),
    ]
    assert not trial.payment_methods.exists()


def test_fc1_r2_reviewers_cannot_forecast(client, reviewer, customer):
    client.force_login(reviewer)
    assert client.get(page(customer, "forecast")).status_code == 403


def test_fc1_the_preview_says_it_counts_the_usage_so_far(client, support, pin_today):
    """FC1: the workspace page's preview of this month's invoice counts the usage recorded so
    far, and the forecast a whole month's (last month's by default): the same invoice showed
    two totals, $143.00 and $174.77, with nothing to say why. The preview says what it counts."""
    pin_today(date(2026, 1, 20))
    ws = paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_500)
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert "From the usage recorded so far this month" in page
    assert "$145.00" in page  # 120.00 + 2,500 MTUs over the 10,000 included, at $0.0100


def test_t4_the_preview_of_a_monthly_trial_without_a_card_says_it_needs_one(
    client, support, pin_today
):
    """T3, T4, M2: a monthly Team trial from 10 January with no card on file ends on 24 January;
    without a card that day the workspace goes back to Free and nothing is billed, so the
    preview shows no invoice and says what a card would change; with one on file, January's
    invoice bills 24–31 January, 8/31 × 120.00 = $30.97. Walk 6: the page showed the $30.97
    invoice alone, which the clock never issued; then it showed it beside a warning (the
    preview did not apply the trial's end before the close)."""
    pin_today(date(2026, 1, 15))
    ws = workspace(plan="team", card=False, as_of=date(2026, 1, 10), name="Acme")
    client.force_login(support)
    body = " ".join(client.get(change_page(ws)).content.decode().split())
    assert "$30.97" not in body
    assert (
        "No invoice would be issued for this month. No card is on file: the trial ends on "
        "24 Jan 2026 and the workspace goes back to Free that day (T4). With a card on file by "
        "then (that day included), Team starts that day and its paid days are billed at their "
        "month's close: "
    ) in body
    services.add_payment_method(ws, as_of=date(2026, 1, 15))
    body = " ".join(client.get(change_page(ws)).content.decode().split())
    assert "$30.97" in body and "No card is on file" not in body


def test_t4_k2_the_preview_of_an_annual_trial_names_the_invoice_at_its_end(
    client, support, reviewer
):
    """T3, T4, K2: Acme started an annual Team trial on 10 January (card on file): it ends on
    24 January, when the annual invoice is issued. The month close bills it nothing, and the
    page said only "No invoice would be issued for this month". Without a card it would go
    back to Free that day."""
    ws = workspace(as_of=date(2026, 1, 10), name="Acme", card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 10))
    client.force_login(support)
    body = client.get(change_page(ws)).content.decode()
    assert "No invoice would be issued for this month." in body
    assert (
        "The trial ends on 24 Jan 2026: that day Team billed annually starts, with its annual "
        f'invoice (T4, K2). <a href="{page(ws, "forecast")}">The forecast</a> shows its figures.'
    ) in body
    services.remove_payment_method(ws, as_of=date(2026, 1, 21))
    body = client.get(change_page(ws)).content.decode()
    assert "The trial ends on 24 Jan 2026: without a card on file by then, the workspace goes " in (
        body
    )
    client.force_login(reviewer)  # R2: no forecast, so no link to it
    body = client.get(change_page(ws)).content.decode()
    assert "The trial ends on 24 Jan 2026" in body and "The forecast</a>" not in body
    monthly = paid_monthly(as_of=JAN, name="Monthly")
    assert "The trial ends" not in client.get(change_page(monthly)).content.decode()


def test_t3_k2_the_page_names_a_trial_s_and_a_term_s_days_one_way(client, support, pin_today):
    """T3: a trial from 10 January ends on 24 January, the first paid day; its last trial day is
    23 January. K2: an annual term from 1 January 2026 runs to 31 December 2026. Walk 6: the
    panel said "Trial ends 24 Jan 2026" and the change page "the trial runs 10 – 23 January",
    and the panel "Annual term to 31 Dec 2026" above a table whose "Term end" read 1 Jan 2027:
    agents quoted the wrong last day."""
    pin_today(date(2026, 1, 15))
    trial = workspace(plan="team", card=True, as_of=date(2026, 1, 10), name="Trial Co")
    client.force_login(support)
    body = " ".join(client.get(change_page(trial)).content.decode().split())
    assert "Trial ends 24 Jan 2026 (last trial day 23 Jan 2026)" in body
    assert "10–23 Jan 2026" in body  # the subscription's row
    annual = paid_annual(as_of=JAN, name="Annual Co")
    body = " ".join(client.get(change_page(annual)).content.decode().split())
    assert "Annual term to 31 Dec 2026" in body
    assert "Jan 2026 – Dec 2026" in body  # the subscription's row: the term, both ends included
    assert "1 Jan 2027" not in body
