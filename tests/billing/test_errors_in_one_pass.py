"""R4 with the rules' own refusals: a form whose only fault is its empty reason also says, in
the same pass, what the service would refuse once a reason is typed. The third staff walk:
finance typed a tax rate of 150 % and no reason, was told "Say why", typed one, and only then
learnt the rate itself was refused. The service runs in the forecast's sandbox with a stand-in
reason; nothing it would write is kept."""

from datetime import date
from html import unescape

from django.urls import reverse

from billing import services
from billing.models import OutboundEmail, Plan, TaxRate, Usage
from tests.billing.factories import team_terms_form, workspace

SAY_WHY = "Say why: the reason is kept in the history."


def page_text(response) -> str:
    return " ".join(unescape(response.content.decode()).split())


def test_r4_x2_an_empty_reason_and_a_refused_rate_are_said_together(client, finance, today):
    client.force_login(finance)
    rate = {"country": "US", "region": "or", "name": "Typo", "valid_from": "2026-04-01"}
    page = page_text(
        client.post(reverse("admin:billing_taxrate_add"), {**rate, "rate": "150", "reason": ""})
    )
    assert SAY_WHY in page
    assert "A tax rate is a percentage between 0 and 100, not 150." in page
    # A rate the service takes: only the reason is asked, and the sandbox kept nothing.
    page = page_text(
        client.post(reverse("admin:billing_taxrate_add"), {**rate, "rate": "1.5", "reason": " "})
    )
    assert SAY_WHY in page and "percentage" not in page
    assert not TaxRate.objects.filter(region="OR").exists()
    assert not TaxRate.history.filter(region="OR").exists()


def test_r4_p2_an_empty_reason_and_terms_outside_the_years_billed_are_said_together(
    client, finance, pin_today
):
    pin_today(date(2026, 12, 3))
    team = Plan.objects.get(code="team")
    client.force_login(finance)
    url = reverse("admin:billing_plan_change", args=[team.pk])
    form = team_terms_form(monthly_price="125.00", effective_on="1999-12-31", change_reason="")
    page = page_text(client.post(url, form))
    assert SAY_WHY in page
    assert (
        "A change of Team's terms dated 31 Dec 1999 is refused: it is outside the years this "
        "system bills (2000 to 2099)"
    ) in page
    assert team.terms.count() == 1


def test_r4_d2_u1_an_empty_reason_and_a_closed_month_are_said_together(client, support, today):
    """January 2026 closed on 1 February: a figure for it is refused (D2), said with the
    missing reason. A figure the service takes for February writes nothing without its reason:
    no usage row, no history row, no email."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=5_000)
    services.run_billing(as_of=date(2026, 2, 1))
    emails = OutboundEmail.objects.count()
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "usage"])
    page = page_text(client.post(url, {"month": "2026-01", "mtus": "900", "reason": ""}))
    assert SAY_WHY in page
    assert "January 2026 is closed (its invoices are issued)" in page
    page = page_text(client.post(url, {"month": "2026-02", "mtus": "900", "reason": ""}))
    assert SAY_WHY in page and "closed" not in page
    assert list(Usage.objects.filter(workspace=ws).values_list("month", "mtus")) == [
        (date(2026, 1, 1), 5_000)
    ]
    assert Usage.history.filter(workspace_id=ws.pk).count() == 1
    assert OutboundEmail.objects.count() == emails


def test_r4_w1_the_closure_page_states_the_refusal_beside_the_empty_reason(client, support, today):
    """A closure dated a day the clock has processed is refused (D2); the page said only "Say
    why" until a reason was typed. The workspace on the page is shown as it stands, not as the
    sandboxed closure left it in memory."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=today)
    client.force_login(support)
    url = reverse("admin:billing_workspace_close", args=[ws.pk])
    page = page_text(client.post(url, {"reason": ""}))
    assert SAY_WHY in page
    assert (
        "is refused: the billing clock has already processed every day through 10 Feb 2026. "
        "Date it 11 Feb 2026 or later."
    ) in page
    ws.refresh_from_db()
    assert ws.closed_on is None
