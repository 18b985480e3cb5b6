"""Staff pages answer what a person can send them with a page or a clear refusal, never a 500:
ids that are not numbers, a NUL character in the address, a workspace whose invoice cannot be
made. Found by trying the pages as an attacker would (each answered 500 before)."""

import html
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.models import Plan, WorkspaceClosure
from coupons import services as coupons
from coupons.models import CreditGrant
from tests.billing.factories import team_terms_form, workspace
from tests.coupons.factories import PDF, paid_monthly

FEB = date(2026, 2, 1)


@pytest.mark.parametrize(
    "model_url",
    [
        "billing/workspace",
        "billing/invoice",
        "billing/plan",
        "billing/taxexemption",
        "coupons/coupon",
        "startups/startupapplication",
    ],
)
def test_r5_a_history_list_for_an_id_that_is_not_a_number_is_not_found(client, db, model_url):
    """/admin/<app>/<model>/abc/history/: simple_history filtered by the raw id (ValueError)."""
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-for-tests"))
    client.raise_request_exception = False
    assert client.get(f"/admin/{model_url}/abc/history/").status_code == 404


@pytest.mark.parametrize("value", ["abc", "1.5", "9" * 23])
def test_c2_the_apply_coupon_page_ignores_a_workspace_in_its_address_that_is_no_id(
    client, support, today, value
):
    """The workspace page links the page as ?workspace=<id>; anything else was put into the
    form's workspace box unchecked, whose drawing then failed."""
    client.force_login(support)
    client.raise_request_exception = False
    response = client.get(reverse("admin:coupons_redemption_apply"), {"workspace": value})
    assert response.status_code == 200
    assert response.context["form"].initial["workspace"] is None


@pytest.mark.parametrize(
    "address",
    [
        "/admin/search/?q=a%00b",
        "/admin/billing/workspace/?business_country=a%00",
        "/admin/billing/outboundemail/?kind=a%00",
        "/admin/billing/workspace/?lock__exact=a%00",
        "/admin/billing/workspace/?lock__exact=a%00&lock__exact=locked",
    ],
)
def test_r1_r3_a_nul_character_in_the_address_is_refused(client, support, address):
    """PostgreSQL text cannot hold NUL: the site search, our list filters and Django's own
    passed it to the database and answered 500 there."""
    paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    client.force_login(support)
    client.raise_request_exception = False
    response = client.get(address)
    assert (response.status_code, response.content) == (
        400,
        b"The address holds a NUL character (%00), which no field takes.",
    )
    if connection.vendor == "postgresql":  # the same address without the NUL still works
        assert client.get(address.replace("%00", "")).status_code == 200


@pytest.fixture
def too_big_to_invoice(finance):
    """Team's overage at $2.0000 per MTU (within its bounds) and 10,000,000,000 MTUs for
    February (the most input takes): February's invoice would be 120.00 + 9,999,990,000 × 2
    = $19,999,980,120.00, beyond the $9,999,999,999.99 an invoice holds (I6)."""
    services.update_plan(
        Plan.objects.get(code="team"),
        by=finance,
        reason="Audit",
        overage_rate="2.0000",
        effective_on=date(2026, 1, 1),
    )
    ws = paid_monthly(as_of=date(2026, 1, 1), name="Big")
    services.record_usage(ws, month=FEB, mtus=10_000_000_000)
    return ws


def test_i6_the_workspace_page_opens_when_this_months_invoice_cannot_be_made(
    client, support, today, too_big_to_invoice
):
    """The page support corrects the usage from computed the month's preview unguarded."""
    client.force_login(support)
    response = client.get(reverse("admin:billing_workspace_change", args=[too_big_to_invoice.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This month's invoice cannot be made: the invoice&#x27;s subtotal of" in page
    assert "$19,999,980,120.00 is beyond what an invoice can hold" in page
    assert "for the month. The month close will set it aside (I6)" in page


def test_i6_w1_the_close_page_says_why_a_closure_is_refused_for_now(
    client, support, today, too_big_to_invoice
):
    """The final invoice a closure on 10 February would issue has a subtotal of
    $19,999,980,038.57: the close page answered 500 to GET and POST. It now says why, and
    the closure is refused with that reason, nothing written."""
    client.force_login(support)
    url = reverse("admin:billing_workspace_close", args=[too_big_to_invoice.pk])
    page = client.get(url).content.decode()
    assert "Its final invoice cannot be made: the invoice&#x27;s subtotal of" in page
    assert "$19,999,980,038.57" in page and "Closing is refused until the cause is fixed" in page

    response = client.post(url, {"reason": "Customer asked to delete"})
    assert response.status_code == 200
    assert "beyond what an invoice can hold" in response.content.decode()
    assert not WorkspaceClosure.objects.exists()


@pytest.mark.parametrize(
    "role,address",
    [
        ("finance", "/admin/billing/invoice/?issue_date__year=9999"),
        ("finance", "/admin/billing/invoice/?issue_date__year=9999&issue_date__month=12"),
        ("finance", "/admin/billing/invoice/?issue_date__year=99999999999999999999"),
        ("support", "/admin/billing/usage/?month__year=9999&month__month=12&month__day=31"),
        ("support", "/admin/coupons/redemption/?redeemed_on__year=9999&redeemed_on__month=12"),
        (
            "reviewer",
            "/admin/startups/startupapplication/?submitted_on__year=9999&submitted_on__month=12",
        ),
    ],
)
def test_r1_r3_a_date_drill_down_at_year_9999_is_an_invalid_filter_not_a_500(
    request, db, client, today, role, address
):
    """A year at the calendar's end (9999) or beyond what Python reads as a year in the date
    drill-down's address answered 500 (OverflowError, ValueError in Django's drill-down); a
    month 13 there already gave the "invalid filter" notice (?e=1). Now so does this."""
    client.force_login(request.getfixturevalue(role))
    client.raise_request_exception = False
    response = client.get(address)
    assert response.status_code != 500, address
    # as Django answers a month 13 there: the list without the filter, flagged invalid
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    ("role", "address", "named"),
    [
        ("finance", "/admin/billing/invoice/?issue_date__gte=notadate", "issue_date__gte=notadate"),
        ("support", "/admin/billing/usage/?month=2026-13", "month=2026-13"),
        ("support", "/admin/billing/strike/?month=junk&o=1", "month=junk, o=1"),
    ],
)
def test_r1_r3_a_list_asked_for_a_filter_it_cannot_take_says_so(
    request, db, client, today, role, address, named
):
    """An audit: a filter with a value a list cannot take (a date that is no date, month 13)
    sent the list without it (Django's "?e=1") and said nothing, so staff read every row (491
    invoices) as the filtered ones. The page now says which filter it could not take."""
    client.force_login(request.getfixturevalue(role))
    response = client.get(address, follow=True)
    assert response.redirect_chain[-1][0].endswith("?e=1")
    assert (
        f"The list could not be shown with {named}: a filter, page or order it cannot take. "
        "Every row is listed below, from the first page"
    ) in html.unescape(response.content.decode())


@pytest.mark.parametrize("amount", [None, ""])
def test_cr1_a_credit_grant_without_an_amount_is_refused(db, support, amount):
    """DESIGN: services refuse bad input, an empty one included, with a BillingError fit to
    show a person. A missing grant amount reached the database (IntegrityError), as did a tax
    rate's or a certificate's missing first day (ValueError, IntegrityError)."""
    ws = workspace(as_of=date(2026, 1, 1))
    with pytest.raises(BillingError, match="needs an amount"):
        coupons.grant_credits(ws, amount=amount, as_of=date(2026, 1, 3), year=1, by=support)
    assert not CreditGrant.objects.exists()


def test_x2_a_tax_rate_without_a_start_date_is_refused(db):
    with pytest.raises(BillingError, match="needs the day it starts"):
        services.set_tax_rate("US", region="WA", rate="6.5", name="WA", valid_from=None)


def test_x4_a_certificate_without_a_first_valid_day_is_refused(db):
    ws = workspace(as_of=date(2026, 1, 1), business_region="NH")
    with pytest.raises(
        BillingError
    ):  # got IntegrityError: NOT NULL billing_taxexemption.valid_from
        services.submit_exemption(
            ws,
            region="NH",
            reason="other",
            document=ContentFile(PDF, name="c.pdf"),
            valid_from=None,
            as_of=date(2026, 1, 2),
        )


def _workspace_form(ws, **changed):
    """The workspace page's form as the browser posts it, its read-only rows' counts too."""
    data = {
        "name": ws.name,
        "billing_email": ws.billing_email,
        "business_country": ws.business_country,
        "business_region": ws.business_region,
        "change_reason": "",
    }
    for rows in ("subscriptions", "payment_methods", "coupon_redemptions", "credit_grants"):
        data |= {f"{rows}-TOTAL_FORMS": "0", f"{rows}-INITIAL_FORMS": "0"}
    return data | changed


@pytest.mark.parametrize("added_by_hand", [True, False])
def test_r5_a_read_only_row_tampered_with_on_the_workspace_form_is_not_drawn(
    client, support, today, added_by_hand
):
    """The workspace page's startup credit grants are read-only rows; its form posts their
    count and ids back. Posted with one row more than there are, or without the one grant's
    id, the page was drawn again (the form was refused: no reason) with an empty grant, whose
    last valid day (the day before its end, None) raised TypeError: a 500. The page now shows
    the grant as stored and the refusal, and nothing is written."""
    ws = paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    grant = coupons.grant_credits(ws, amount="100.00", as_of=date(2026, 1, 2), year=1, by=support)
    rows = {"credit_grants-TOTAL_FORMS": "1", "credit_grants-INITIAL_FORMS": "1"}
    if added_by_hand:
        rows |= {"credit_grants-TOTAL_FORMS": "2", "credit_grants-0-id": str(grant.pk)}
    client.force_login(support)
    client.raise_request_exception = False
    url = reverse("admin:billing_workspace_change", args=[ws.pk])
    response = client.post(url, _workspace_form(ws, name="Renamed", **rows))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Say why: the reason is kept in the history." in page
    assert "$100.00" in page  # the grant, as stored
    ws.refresh_from_db()
    assert ws.name == "Acme" and list(CreditGrant.objects.all()) == [grant]


@pytest.mark.parametrize(
    "invisible",
    [
        "\u200b",
        "\u2060",
        " \u200b\u200d ",
        "\ufeff",
        "\x00\u00a0",
        # The second attacker's walk: a lone combining mark, variation selector or grapheme
        # joiner, the braille blank and the Hangul fillers show nothing either.
        "\u0301",
        "\ufe0f\u034f\u17b4",
        "\u2800",
        "\u3164",
        "\u115f\u1160\uffa0",
    ],
)
def test_r4_a_reason_with_nothing_that_shows_is_refused(client, finance, invisible):
    """R4 refuses an empty reason; a zero-width space (U+200B) or word joiner (U+2060) got
    through as a reason everywhere one is required (void, credit-note rejection, tax rate,
    application link): an attacker's walk left "Voided: \u200b" in the history."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=FEB)
    invoice = ws.invoices.get()
    with pytest.raises(BillingError, match="Say why the invoice is voided"):
        services.void_invoice(invoice, by=finance, reason=invisible, as_of=date(2026, 2, 2))
    client.force_login(finance)
    page = client.post(
        reverse("admin:billing_invoice_void", args=[invoice.pk]), {"reason": invisible}
    )
    assert "Say why: the reason is kept in the history." in page.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == "issued"
    add = reverse("admin:billing_taxrate_add")
    rate = {"country": "US", "region": "OR", "rate": "1", "name": "OR", "valid_from": "2026-03-01"}
    assert "Say why" in client.post(add, {**rate, "reason": invisible}).content.decode()
    # A reason with something that shows is kept as typed, stripped.
    services.void_invoice(invoice, by=finance, reason=" \u200bDuplicate ", as_of=date(2026, 2, 2))
    invoice.refresh_from_db()
    assert invoice.void_reason == "\u200bDuplicate"


PLAN_FORM = team_terms_form(annual_price="1200.00")


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("included_mtus", "9" * 40, "between 0 and 10,000,000,000, not " + "9" * 40),
        ("seats", "-1", "between 1 and 100,000, not -1"),
        ("monthly_price", "100000000", "between 0 and 100,000.00, not 100000000"),
        ("overage_rate", "99999999.99", "between 0 and 100.0000, not 99999999.99"),
    ],
)
def test_p1_a_plan_term_out_of_its_bounds_is_told_its_bounds(
    db, client, finance, today, field, typed, said
):
    """An audit: a plan's terms past their bounds were told their column's limits ("less than
    or equal to 9223372036854775807", "greater than or equal to 0" for seats that start at 1,
    "no more than 8 digits before the decimal point"), not the rule's. Each is now told the
    rule's bounds by the service (PLAN_TERMS), and nothing changes."""
    team = Plan.objects.get(code="team")
    client.force_login(finance)
    page = client.post(
        reverse("admin:billing_plan_change", args=[team.pk]), {**PLAN_FORM, field: typed}
    )
    text = html.unescape(page.content.decode())
    assert said in text, text[text.find("errornote") :][:600]
    assert "digits" not in text.split("errornote", 1)[1][:2000]
    assert team.terms.count() == 1


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1000", "Percent off must be more than 0 and at most 100, not 1000."),
        ("100.001", "Percent off must be more than 0 and at most 100, not 100.001."),
        ("12.345", "Percent off has at most two decimals (12.50), not 12.345."),
    ],
)
def test_c1_a_percentage_out_of_its_bounds_is_told_its_bounds(db, client, support, typed, said):
    """An audit: 1000 % off was told "no more than 3 digits before the decimal point" and
    100.001 % "no more than 5 digits in total"; C1 says 0 < p ≤ 100."""
    from coupons.models import Coupon

    client.force_login(support)
    page = client.post(
        reverse("admin:coupons_coupon_add"),
        {
            "code": "WIDE",
            "name": "Wide",
            "kind": "promotion",
            "percent_off": typed,
            "duration": "once",
            "applies_monthly": "on",
        },
    )
    text = html.unescape(page.content.decode())
    assert said in text and "digits" not in text
    assert not Coupon.objects.filter(code="WIDE").exists()


def test_x2_u1_a_rate_or_month_out_of_its_form_is_told_the_rule(db, client, finance, support):
    """An audit: a tax rate of 1000 % was told "no more than 3 digits before the decimal
    point" (100.01 got the rule's words), and a month typed "2026-12-01" on the usage page
    "at most 7 characters (it has 10)"."""
    from billing.models import TaxRate

    client.force_login(finance)
    form = {"country": "US", "region": "OR", "name": "OR", "reason": "Law"}
    page = client.post(
        reverse("admin:billing_taxrate_add"), {**form, "rate": "1000", "valid_from": "2027-01-04"}
    )
    text = html.unescape(page.content.decode())
    assert "A tax rate is a percentage between 0 and 100, not 1000." in text
    assert "digits" not in text and not TaxRate.objects.filter(region="OR").exists()

    ws = workspace()
    client.force_login(support)
    page = client.post(
        reverse("admin:billing_workspace_action", args=[ws.pk, "usage"]),
        {"month": "2026-12-01", "mtus": "5", "reason": "Ticket 3"},
    )
    assert "“2026-12-01” is not a month in the form YYYY-MM" in html.unescape(page.content.decode())
    assert not ws.usage.exists()
