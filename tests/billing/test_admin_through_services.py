"""R4, R5 in the admin's own forms: each saves through its service, with the why required."""

import re
from datetime import date
from decimal import Decimal as D
from html import unescape

import pytest
from django.core.files.base import ContentFile
from django.db import models
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.models import Plan, TaxRate, Usage, Workspace
from billing.services import update_workspace
from tests.admin_pages import as_shown, messages_of
from tests.billing.factories import workspace

TODAY = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def today(pin_today):
    return pin_today(TODAY)  # the admin acts on a fixed day, not the wall clock


def change_form(ws, **changes):
    """The workspace page's fields, and its read-only inlines' empty management forms."""
    inlines = {
        f"{prefix}-{name}": "0"
        for prefix in ("subscriptions", "payment_methods", "coupon_redemptions", "credit_grants")
        for name in ("TOTAL_FORMS", "INITIAL_FORMS")
    }
    return {
        **inlines,
        "name": ws.name,
        "billing_email": ws.billing_email,
        "business_country": str(ws.business_country),
        "business_region": ws.business_region,
        **changes,
    }


def test_x1_admin_refuses_a_us_workspace_without_its_state(client, support):
    ws = workspace(business_country="US", business_region="CA")
    client.force_login(support)
    url = reverse("admin:billing_workspace_change", args=[ws.pk])
    response = client.post(
        url, change_form(ws, name="Acme Holdings", business_region="", change_reason="Moved")
    )
    # The form again, with the service's words and what was typed (nothing is lost).
    body = response.content.decode()
    assert response.status_code == 200
    assert "A US business needs its state (e.g. CA): sales tax depends on it." in body
    assert 'value="Acme Holdings"' in body and ">\nMoved</textarea>" in body
    ws.refresh_from_db()
    assert ws.name != "Acme Holdings"
    assert ws.business_region == "CA"
    client.post(url, change_form(ws, business_region="ZZ", change_reason="Moved"))
    ws.refresh_from_db()
    assert ws.business_region == "CA"  # not a state either


def test_x1_x2_admin_refuses_ont_for_ontario_on_a_workspace_and_on_a_rate(client, support, finance):
    """A region typed "ONT" matched none of the seeded rates (ON HST 13 %): an Ontario
    workspace entered so was taxed at CA GST's 5 %, and a rate entered so was never charged.
    Both forms say which codes are expected and keep nothing; each says so before it is sent."""
    codes = "AB, BC, MB, NB, NL, NS, NT, NU, ON, PE, QC, SK, YT"
    ws = workspace(business_country="CA", business_region="QC")
    client.force_login(support)
    url = reverse("admin:billing_workspace_change", args=[ws.pk])
    assert (
        "in CA, a Canadian province or territory code (e.g. ON)" in client.get(url).content.decode()
    )
    page = client.post(url, change_form(ws, business_region="ONT", change_reason="Moved"))
    assert (
        "“ONT” is not a Canadian province or territory code: GST/HST depends on it. "
        f"Use one of {codes}."
    ) in page.content.decode()
    ws.refresh_from_db()
    assert ws.business_region == "QC"
    client.post(url, change_form(ws, business_region="on", change_reason="Moved"))
    ws.refresh_from_db()
    assert ws.business_region == "ON"

    client.force_login(finance)
    add = reverse("admin:billing_taxrate_add")
    assert (
        "Empty for a country-wide rate (VAT, GST; the US has none: name the state); in US, a US "
        "state code" in client.get(add).content.decode()
    )
    rate = {"country": "CA", "rate": "13", "name": "HST", "valid_from": "2026-04-01"}
    page = client.post(add, {**rate, "region": "ONT", "reason": "HST"})
    assert f"Use one of {codes}." in page.content.decode()
    assert not TaxRate.objects.filter(valid_from=date(2026, 4, 1)).exists()


def test_x1_r4_admin_edit_goes_through_the_service_and_keeps_why(client, support):
    ws = workspace(business_country="US", business_region="CA")
    client.force_login(support)
    url = reverse("admin:billing_workspace_change", args=[ws.pk])
    refused = client.post(url, change_form(ws, business_region="NY", change_reason=" "))
    assert "Say why: the reason is kept in the history." in refused.content.decode()
    ws.refresh_from_db()
    assert ws.business_region == "CA"
    assert client.post(url, change_form(ws, business_region="NY", change_reason="HQ moved"))
    ws.refresh_from_db()
    latest = ws.history.first()
    assert (ws.business_region, latest.history_user, latest.history_change_reason) == (
        "NY",
        support,
        "Details edited: HQ moved",
    )


def test_x1_the_service_applies_create_workspaces_checks(db, support):
    ws = workspace()
    with pytest.raises(Exception, match="not a valid billing email"):
        update_workspace(
            ws,
            by=support,
            reason="x",
            name="A",
            business_country="DE",
            billing_email="nope",
            as_of=date(2026, 1, 2),
        )
    assert Workspace.objects.get(pk=ws.pk).business_country == "US"


def test_r4_plan_change_needs_a_reason_and_keeps_it(client, support):
    ws = workspace(card=True)
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "plan"])
    refused = client.post(url, {"plan": "team:monthly", "reason": ""})
    assert "Say why: the reason is kept in the history." in refused.content.decode()
    assert ws.subscriptions.get(ended_on=None).plan.code == "free"
    client.post(
        url, as_shown(client, url, {"plan": "team:monthly", "reason": "Upgrade asked in ticket 7"})
    )
    current = ws.subscriptions.get(ended_on=None)
    assert current.plan.code == "team" and current.started_on == TODAY
    created = current.history.earliest("history_date")
    assert created.history_change_reason == "Moved to Team: Upgrade asked in ticket 7"
    assert created.history_user == support


def test_r5_usage_is_not_added_or_edited_in_the_admin_only_recorded(client, support):
    ws = workspace()
    client.force_login(support)
    assert client.get(reverse("admin:billing_usage_add")).status_code == 403
    client.post(
        reverse("admin:billing_workspace_action", args=[ws.pk, "usage"]),
        {"month": "2026-02", "mtus": "1200", "reason": "Ticket 9"},
    )
    usage = Usage.objects.get(workspace=ws)
    response = client.post(
        reverse("admin:billing_usage_change", args=[usage.pk]),
        {"workspace": ws.pk, "month": "2026-02-01", "mtus": "5"},
    )
    assert response.status_code == 403
    usage.refresh_from_db()
    assert usage.mtus == 1200


def test_p1_the_usage_chart_marks_what_is_over_the_configured_free_allowance(
    client, support, finance
):
    services.update_plan(
        Plan.objects.get(code="free"),
        by=finance,
        reason="More room",
        included_mtus=2_000,
        effective_on=date(2026, 1, 1),
    )
    ws = workspace()
    client.force_login(support)
    for month, mtus in (("2026-02", "1500"), ("2026-03", "2500")):
        client.post(
            reverse("admin:billing_workspace_action", args=[ws.pk, "usage"]),
            {"month": month, "mtus": mtus, "reason": "Ticket 9"},
        )
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk]))
    bars = {m.strftime("%Y-%m"): over for m, _, _, over in page.context["usage_bars"]}
    assert (bars["2026-02"], bars["2026-03"]) == (False, True)


def test_x2_a_day_typed_as_04_12_2026_is_refused_not_read_as_12_april(client, finance):
    """The admin read "04/12/2026" as 12 April 2026 (Django's US input formats) and
    "03/01/2027" as 1 March: a rate meant from 4 December started months off (finance's walk
    8). Days are taken only as 2026-12-04 (the calendar's) or 4 Dec 2026 (as pages write
    them); a day in slashes is refused, writing nothing."""
    client.force_login(finance)
    form = {"country": "US", "region": "OR", "rate": "1.5", "name": "OR", "reason": "Law"}
    add = reverse("admin:billing_taxrate_add")

    refused = client.post(add, {**form, "valid_from": "04/12/2026"})

    assert refused.status_code == 200
    assert "Enter a valid date." in refused.content.decode()
    assert not TaxRate.objects.filter(region="OR").exists()
    done = client.post(add, {**form, "region": "or", "valid_from": "4 Dec 2026"}, follow=True)
    assert TaxRate.objects.get(region="OR").valid_from == date(2026, 12, 4)
    # The message names the rate as stored (it read "US-or", as typed: finance's walk 8).
    said = [str(m) for m in done.context["messages"]]
    assert said == ["The tax rate “US-OR 1.5 % from 4 Dec 2026” was added successfully."]


def test_x2_tax_rates_are_added_through_set_tax_rate_never_edited(client, finance):
    client.force_login(finance)
    response = client.post(
        reverse("admin:billing_taxrate_add"),
        {
            "country": "US",
            "region": "or",
            "rate": "150",
            "name": "Typo",
            "valid_from": "2026-04-01",
            "reason": "New state law",
        },
    )
    assert response.status_code == 200
    assert "A tax rate is a percentage between 0 and 100, not 150." in response.content.decode()
    assert not TaxRate.objects.filter(region="OR").exists()
    client.post(
        reverse("admin:billing_taxrate_add"),
        {
            "country": "US",
            "region": "or",
            "rate": "1.5",
            "name": "OR",
            "valid_from": "2026-04-01",
            "reason": "New state law",
        },
    )
    rate = TaxRate.objects.get(region="OR")
    assert rate.rate == D("1.5")
    edit = client.post(
        reverse("admin:billing_taxrate_change", args=[rate.pk]),
        {"country": "US", "region": "OR", "rate": "0", "name": "OR", "valid_from": "2026-04-01"},
    )
    assert edit.status_code == 403


def test_x2_a_rate_is_typed_in_full_never_in_exponent_notation(client, finance):
    """X2: "1e2" was read as 100, added as a 100 % rate and echoed "US-OR 1E+2%"; NaN and
    Infinity are no rate either. Each is refused, saying how to write it."""
    client.force_login(finance)
    add = reverse("admin:billing_taxrate_add")
    rate = {
        "country": "US",
        "region": "OR",
        "name": "OR",
        "valid_from": "2026-04-01",
        "reason": "New state law",
    }
    for typed in ("1e2", "1E+2", "7.25e0"):
        page = client.post(add, {**rate, "rate": typed}).content.decode()
        assert f"Write the number in full, e.g. 7.25, not “{typed}”." in page
    for typed in ("NaN", "Infinity", "-inf"):
        page = client.post(add, {**rate, "rate": typed}).content.decode()
        assert "Enter the rate as a plain number, e.g. 7.25." in page
    assert not TaxRate.objects.filter(region="OR").exists()
    assert client.post(add, {**rate, "rate": "7.25"}).status_code == 302
    assert TaxRate.objects.get(region="OR").rate == D("7.25")


def test_x2_r4_a_rate_says_why_and_names_the_rate_it_replaces(client, finance):
    """Walk 5: a CA rate of 7.6 % from 1 January 2027, added where 7.5 % from that day stood,
    replaced it with "was added successfully" and a history saying "Rate: 7.500 → 7.600" with
    no reason: the add page asks why (R4) and says what it replaced (X2)."""
    client.force_login(finance)
    add = reverse("admin:billing_taxrate_add")
    rate = {"country": "US", "region": "CA", "name": "CA sales tax", "valid_from": "2027-01-01"}
    page = client.post(add, {**rate, "rate": "7.5"}).content.decode()
    assert "Say why: the reason is kept in the history." in page
    assert not TaxRate.objects.filter(region="CA", valid_from=date(2027, 1, 1)).exists()
    client.post(add, {**rate, "rate": "7.5", "reason": "State law 12"})
    done = client.post(add, {**rate, "rate": "7.6", "reason": "Typo: 7.6 %"}, follow=True)
    assert "It replaces the 7.5 % rate (CA sales tax) set to start on 1 Jan 2027." in messages_of(
        done
    )
    assert any("US-CA 7.6 % from 1 Jan 2027" in m for m in messages_of(done))
    (kept,) = TaxRate.objects.filter(region="CA", valid_from=date(2027, 1, 1))
    assert [(h.history_user, h.history_change_reason) for h in kept.history.all()] == [
        (finance, "Tax rate set: Typo: 7.6 %"),
        (finance, "Tax rate set: State law 12"),
    ]


def test_x1_x2_a_us_rate_names_its_state(client, finance):
    """X1: US sales tax is the states'. A country-wide US rate (5 % from 1 February 2027) was
    accepted, and would have taxed every workspace of a state without a rate of its own (OR,
    NH, DE, MT, AK): it is refused, saying why. Canada's GST stays country-wide."""
    client.force_login(finance)
    add = reverse("admin:billing_taxrate_add")
    rate = {"rate": "5", "name": "Sales tax", "valid_from": "2027-02-01", "reason": "Ticket 3"}
    page = client.post(add, {**rate, "country": "US", "region": ""}).content.decode()
    assert (
        "United States of America has no sales tax of its own: a rate names its US state (e.g. "
        "CA). Without one it would tax every workspace of a US state that has no rate of its own."
    ) in unescape(page)
    assert not TaxRate.objects.filter(country="US", region="").exists()
    assert client.post(add, {**rate, "country": "CA", "region": ""}).status_code == 302


def test_r5_certificate_and_proof_history_pages_show_a_version(client, finance, support):
    from billing.services import submit_exemption
    from coupons.services import submit_nonprofit_proof
    from tests.coupons.factories import PDF

    ws = workspace(business_country="US", business_region="CA")
    cert = submit_exemption(
        ws,
        region="CA",
        reason="nonprofit",
        document=ContentFile(PDF, name="c.pdf"),
        valid_from=date(2026, 1, 1),
        as_of=TODAY,
    )
    proof = submit_nonprofit_proof(
        ws, document=ContentFile(PDF, name="p.pdf"), by=support, as_of=TODAY
    )
    client.force_login(finance)
    record = cert.history.get()
    page = client.get(
        reverse("admin:billing_taxexemption_simple_history", args=[cert.pk, record.history_id])
    )
    assert page.status_code == 200 and "history is never restored" in page.content.decode()
    client.force_login(support)
    record = proof.history.get()
    page = client.get(
        reverse("admin:coupons_nonprofitproof_simple_history", args=[proof.pk, record.history_id])
    )
    assert page.status_code == 200


def _date_lists():
    """Every staff list's date columns (the project's admins; Django's user list and axes'
    lists are for superusers and keep their own)."""
    from django.contrib import admin

    from billing.admin_toolkit import ServiceAdmin

    return [
        pytest.param(model, field.name, id=f"{model._meta.model_name}.{field.name}")
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ServiceAdmin)
        for field in model._meta.fields
        if isinstance(field, models.DateField)
    ]


@pytest.mark.parametrize(("model", "field"), _date_lists())
def test_a_list_filtered_by_an_impossible_year_says_so_rather_than_a_500(
    admin_client, model, field
):
    """`?month__year=0` on the strike list answered 500 (Python has no year 0): every list
    with a date column takes such a filter as invalid, as Django does with its own checks."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for year in ("0", "10000"):
        response = admin_client.get(url, {f"{field}__year": year})
        assert response.status_code in (200, 302), (url, year, response.status_code)


@pytest.mark.parametrize(
    "query", ["workspace=99999999999999999999999", "workspace__id__exact=-99999999999999999999"]
)
def test_a_list_filtered_by_an_id_beyond_64_bits_says_so_rather_than_a_500(admin_client, query):
    """`?workspace=99999999999999999999999` on the lock changes answered 500 on SQLite (the
    default a laptop runs): the id is beyond what the database holds, so the filter is invalid."""
    url = reverse("admin:billing_lockevent_changelist")
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code in (200, 302), response.status_code


def test_f1_the_usage_chart_draws_a_closed_month_over_only_when_it_struck(
    client, support, pin_today
):
    """F1: on paid monthly Team from 1 January with 5,000 MTUs in January to March, then on
    Free from 1 April (200 MTUs so far). Drawn by today's plan, the three Team months showed
    as over the Free limit though none counted against it, and a month that struck would
    not show once on Team. A closed month is over when it struck; the open one, when it is
    over the allowance on Free every day of it so far: one moved from Team to Free on 8 April
    with 1,500 in April showed April over, though its Team days meant no strike could come."""
    from tests.billing.factories import paid_monthly

    ws = paid_monthly(as_of=date(2026, 1, 1))
    for month in (date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)):
        services.record_usage(ws, month=month, mtus=5000)
    free = workspace(slug="free-one", as_of=date(2026, 1, 1), card=True)
    services.record_usage(free, month=date(2026, 3, 1), mtus=5000)  # struck at March's close
    # On Team to 7 April, on Free since the 8th: April's Team days rule its strike out.
    moved = paid_monthly(as_of=date(2026, 1, 1), slug="moved-mid-april")
    services.record_usage(moved, month=date(2026, 4, 1), mtus=1500)
    services.change_to_free(ws, as_of=date(2026, 4, 1))
    services.run_billing(as_of=date(2026, 4, 1))
    services.change_to_team(free, as_of=date(2026, 4, 2))
    services.record_usage(ws, month=date(2026, 4, 1), mtus=1500)  # April: on Free, not closed
    services.change_to_free(moved, as_of=date(2026, 4, 8))
    pin_today(date(2026, 4, 10))
    client.force_login(support)

    def over(workspace_):
        page = client.get(reverse("admin:billing_workspace_change", args=[workspace_.pk]))
        return [m.strftime("%Y-%m") for m, _, _, over in page.context["usage_bars"] if over]

    assert over(ws) == ["2026-04"]
    assert over(free) == ["2026-03"]
    assert over(moved) == []


def test_p1_f1_u1_pages_name_mtus_as_staff_say_it(client, support, finance):
    """The detail and history pages labelled the figures "Included mtus", "Mtus" and "Overage
    mtus" (Django's words from the field names): they read "MTUs", as the help pages do. The
    plan terms' page showed its stored fields ("Effective on: 1 Jan 0001", "Monthly price:
    120.00"): it shows them as its list does."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=1_500)
    services.run_billing(as_of=date(2026, 2, 1))  # a strike for January
    terms = Plan.objects.get(code="team").terms.first()
    usage, strike = Usage.objects.get(workspace=ws), ws.strikes.get()
    for user, url, label in [
        (finance, reverse("admin:billing_planterms_change", args=[terms.pk]), "MTUs a month"),
        (support, reverse("admin:billing_usage_change", args=[usage.pk]), "MTUs"),
        (support, reverse("admin:billing_usage_history", args=[usage.pk]), "MTUs"),
        (support, reverse("admin:billing_strike_change", args=[strike.pk]), "MTUs"),
    ]:
        client.force_login(user)
        page = client.get(url).content.decode()
        assert label in page, url
        assert "Mtus" not in page and "Included mtus" not in page, url
    # The terms' page shows them as the list does: not "Effective on: 1 Jan 0001" and
    # "Monthly price: 120.00".
    client.force_login(finance)
    page = unescape(
        client.get(reverse("admin:billing_planterms_change", args=[terms.pk])).content.decode()
    )
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert (
        "From: the start Monthly price: $120.00 Annual price: $1,440.00 MTUs a month: 10,000 "
        "Overage per MTU: $0.01 Trial days: 14"
    ) in shown
    assert "0001" not in shown


def test_u1_f1_usage_and_strike_lists_filter_by_month_not_by_day(client, support, pin_today):
    """U1: a usage figure (or a strike) is a month, dated its 1st. The lists' month filter was
    Django's date filter: on 10 February "Past 7 days" showed no figure (February's 1st is more
    than seven days back) and "Today" matched only on a 1st. They offer the last twelve months
    by name; a month by address works too, and a malformed one is an invalid filter."""
    pin_today(date(2026, 2, 10))
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=900)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=700)
    client.force_login(support)
    for name in ("usage", "strike"):
        page = client.get(reverse(f"admin:billing_{name}_changelist")).content.decode()
        filters = page[page.find('id="changelist-filter"') :]
        assert "Past 7 days" not in filters and ">Today<" not in filters, name
        assert "February 2026" in filters and "March 2025" in filters, name
    url = reverse("admin:billing_usage_changelist")
    page = client.get(url, {"month": "2026-02"})
    assert [u.mtus for u in page.context["cl"].result_list] == [700]
    assert client.get(url, {"month": "2026-13"}).status_code == 302  # ?e=1: invalid filter


def test_u1_recording_a_months_usage_says_which_figure_it_replaced(client, support):
    """U1: a new figure for a month replaces the one on file; the page says so, with the old
    figure, so a figure typed for the wrong month is noticed at once."""
    ws = workspace(name="Acme")
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "usage"])

    def record(month, mtus):
        page = client.post(url, {"month": month, "mtus": mtus, "reason": "Ticket 9"}, follow=True)
        return [str(m) for m in page.context["messages"]]

    assert record("2026-02", "1500") == ["1,500 MTUs recorded for Acme, February 2026."]
    assert record("2026-02", "1200") == [
        "1,200 MTUs recorded for Acme, February 2026, replacing 1,500."
    ]
    assert record("2026-02", "1200") == ["1,200 MTUs for Acme, February 2026: already on file."]
    usage = Usage.objects.get(workspace=ws)
    assert usage.mtus == 1200
    # R4: the figure sent again kept no version saying it changed (the run-twice walk).
    assert [(h.history_type, h.mtus) for h in usage.history.order_by("history_id")] == [
        ("+", 1500),
        ("~", 1200),
    ]


def test_x2_the_rate_list_says_which_rate_is_in_force(client, finance, pin_today):
    """Walk 5: the list did not say which rate applies now or until when. Oregon: 1 % from
    1 January 2026, 2 % from 1 April 2026, 3 % from 1 January 2027; today 10 March 2026."""
    for rate, start in (("1", "2026-01-01"), ("2", "2026-04-01"), ("3", "2027-01-01")):
        services.set_tax_rate(
            "US", region="OR", rate=rate, name="OR", valid_from=date.fromisoformat(start)
        )
    pin_today(date(2026, 3, 10))
    client.force_login(finance)
    page = client.get(reverse("admin:billing_taxrate_changelist"), {"q": "OR"})
    cells = re.findall(r'<td class="field-in_force">([^<]*)</td>', page.content.decode())
    assert sorted(cells) == ["not yet", "not yet (until 31 Dec 2026)", "now, until 31 Mar 2026"]
    pin_today(date(2026, 4, 1))
    page = client.get(reverse("admin:billing_taxrate_changelist"), {"q": "OR"})
    cells = re.findall(r'<td class="field-in_force">([^<]*)</td>', page.content.decode())
    assert "no more: replaced on 1 Apr 2026" in cells and "now, until 31 Dec 2026" in cells


def test_x2_r4_a_rate_nothing_has_read_is_withdrawn_with_why(client, finance, support):
    """Walk 5: a rate typed wrong for the future (Oregon 5 % from 1 April 2026, where Oregon
    has none) could not be removed: delete and edit are refused, rightly. It is withdrawn, with
    a reason kept in its history, while no day from 1 April is processed and no Oregon invoice
    dated from then is issued; after that it says why it stays."""
    workspace(as_of=date(2026, 1, 1), business_region="OR")
    services.run_billing(as_of=date(2026, 3, 9))  # the clock through 9 March
    wrong = services.set_tax_rate(
        "US", region="OR", rate="5", name="OR", valid_from=date(2026, 4, 1)
    )
    page = reverse("admin:billing_taxrate_change", args=[wrong.pk])
    withdraw = reverse("admin:billing_taxrate_withdraw", args=[wrong.pk])
    client.force_login(support)  # R1: support does not set rates
    assert client.get(withdraw).status_code == 403
    client.force_login(finance)
    assert withdraw in client.get(page).content.decode()
    asked = client.get(withdraw).content.decode()
    assert "Nothing has read it yet: withdrawn, no rate of its own applies instead from 1 Apr" in (
        asked
    )
    refused = client.post(withdraw, {"reason": " "})
    assert "Say why" in refused.content.decode() and TaxRate.objects.filter(pk=wrong.pk).exists()
    done = client.post(withdraw, {"reason": "Oregon has no sales tax"}, follow=True)
    assert "US-OR 5 % from 1 Apr 2026 withdrawn: Oregon has no sales tax" in messages_of(done)
    assert not TaxRate.objects.filter(pk=wrong.pk).exists()
    kept = TaxRate.history.filter(id=wrong.pk).order_by("-history_id").first()
    assert (kept.history_type, kept.history_user, kept.history_change_reason) == (
        "-",
        finance,
        "Withdrawn: Oregon has no sales tax",
    )
    with pytest.raises(BillingError, match="was withdrawn already"):
        services.withdraw_tax_rate(wrong, by=finance, reason="again")

    # Read already: the clock processed its first day.
    read = services.set_tax_rate(
        "US", region="OR", rate="1", name="OR", valid_from=date(2026, 3, 10)
    )
    services.run_billing(as_of=date(2026, 3, 10))
    assert (
        withdraw.replace(str(wrong.pk), str(read.pk))
        not in client.get(reverse("admin:billing_taxrate_change", args=[read.pk])).content.decode()
    )
    closed = client.get(reverse("admin:billing_taxrate_withdraw", args=[read.pk])).content
    assert "Withdrawing a tax rate dated 10 Mar 2026 is refused" in closed.decode()
    assert "Nothing has read it yet" not in closed.decode()
    with pytest.raises(BillingError):
        services.withdraw_tax_rate(read, by=finance, reason="late")
    assert TaxRate.objects.filter(pk=read.pk).exists()
