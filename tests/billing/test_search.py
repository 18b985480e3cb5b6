"""The search box that finds anything (issue 13): workspaces by slug, name or billing email,
invoices by number (an exact number first), startup applications by company, coupons by code;
each role finds only what its admin pages would show it (R1–R3), a person without such rights
gets a 403, and the number of queries does not grow with the rows. Through the test client,
with the real role groups."""

import re
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import search, services
from billing.models import Invoice
from coupons import services as coupons
from startups import services as startups

from .factories import paid_monthly, workspace

URL = reverse("site-search")


def application(company_name, ws=None):
    return startups.submit_application(
        company_name,
        website="https://acme.example.com",
        contact_name="Ada",
        contact_email="ada@acme.example.com",
        incorporation_date=date(2025, 6, 1),
        total_funding="1500000",
        country="DE",
        workspace=ws,
        as_of=date(2026, 1, 20),
    )


@pytest.fixture
def world(db, today):
    """One of each kind, all findable by "acme"."""
    acme = paid_monthly(name="Acme Analytics", slug="acme", billing_email="billing@acme.example")
    services.run_billing(as_of=date(2026, 2, 1))
    return {
        "workspace": acme,
        "invoice": Invoice.objects.get(workspace=acme),
        "application": application("Acme Robotics GmbH", acme),
        "coupon": coupons.create_coupon("ACME20", "Acme partner deal", "promotion", percent_off=20),
    }


def groups(response):
    """The result groups' captions and their rows' link texts, in page order."""
    body = response.content.decode()
    found = {}
    for caption, rows in re.findall(r"<caption>([^<]+)</caption>(.*?)</table>", body, re.S):
        found[caption] = re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', rows)
    return found


def change_url(obj):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def test_support_finds_each_kind_and_each_result_links_to_its_page(client, support, world):
    client.force_login(support)
    response = client.get(URL, {"q": "acme"})
    assert response.status_code == 200
    found = groups(response)
    assert found == {
        "Workspaces": ["Acme Analytics (acme)"],
        "Invoices": [world["invoice"].number],
        "Startup applications": [f"Acme Robotics GmbH (#{world['application'].pk})"],
        "Coupons": ["ACME20"],
    }
    body = response.content.decode()
    for obj in world.values():
        assert f'href="{change_url(obj)}"' in body


@pytest.mark.parametrize(
    "words", ["acme", "ACM", "Analytics", "billing@acme.example", "acme.example"]
)
def test_a_workspace_is_found_by_slug_name_or_billing_email(client, support, world, words):
    client.force_login(support)
    assert groups(client.get(URL, {"q": words}))["Workspaces"] == ["Acme Analytics (acme)"]


def test_an_invoice_is_found_by_its_number_and_an_exact_number_comes_first(client, finance, world):
    number = world["invoice"].number
    client.force_login(finance)
    response = client.get(URL, {"q": f"  {number.lower()} "})  # spaces and case do not matter
    assert list(groups(response)) == ["Invoices"]
    assert groups(response)["Invoices"] == [number]
    assert '<tr class="exact">' in response.content.decode()


def test_an_exact_match_ranks_before_a_prefix_before_the_rest(client, support, db, today):
    for slug, name in [("big-acme", "Big"), ("acme-labs", "Labs"), ("acme", "Plain")]:
        workspace(slug=slug, name=name)
    client.force_login(support)
    assert groups(client.get(URL, {"q": "acme"}))["Workspaces"] == [
        "Plain (acme)",  # the slug itself
        "Labs (acme-labs)",  # starts with it
        "Big (big-acme)",  # contains it
    ]


def test_an_application_is_found_by_company_and_a_coupon_by_code(client, reviewer, world):
    client.force_login(reviewer)
    assert groups(client.get(URL, {"q": "robotics"})) == {
        "Startup applications": [f"Acme Robotics GmbH (#{world['application'].pk})"]
    }
    assert groups(client.get(URL, {"q": "acme20"})) == {"Coupons": ["ACME20"]}


@pytest.mark.parametrize(
    "role, kinds",
    [
        ("support", {"Workspaces", "Invoices", "Startup applications", "Coupons"}),
        ("finance", {"Workspaces", "Invoices", "Startup applications", "Coupons"}),
        # R2: reviewers read workspaces, coupons and applications, never invoices.
        ("reviewer", {"Workspaces", "Startup applications", "Coupons"}),
    ],
)
def test_each_role_finds_only_what_it_may_view(client, request, world, role, kinds):
    client.force_login(request.getfixturevalue(role))
    response = client.get(URL, {"q": "acme"})
    assert set(groups(response)) == kinds
    if "Invoices" not in kinds:
        body = response.content.decode()
        assert world["invoice"].number not in body
        assert groups(client.get(URL, {"q": world["invoice"].number})) == {}


def test_a_person_without_rights_gets_a_403_and_no_search_box(client, world):
    nobody = User.objects.create_user(username="temp", password="x", is_staff=True)
    client.force_login(nobody)
    response = client.get(URL, {"q": "acme"})
    assert response.status_code == 403
    assert "acme" not in response.content.decode().lower().replace("search: acme", "")
    assert 'id="site-search"' not in client.get(reverse("admin:index")).content.decode()


def test_a_visitor_not_signed_in_is_sent_to_the_login_page(client, world):
    response = client.get(URL, {"q": "acme"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_search_box_is_in_every_admin_page_header(client, support, world):
    client.force_login(support)
    for url in [reverse("admin:index"), change_url(world["workspace"])]:
        body = client.get(url).content.decode()
        form = '<form id="site-search" role="search" aria-label="Site search" method="get"'
        assert f'{form} action="{URL}">' in body


def test_nothing_found_says_so(client, support, world):
    client.force_login(support)
    response = client.get(URL, {"q": "zebra"})
    assert groups(response) == {}
    assert "Nothing found for “zebra”" in response.content.decode()


def test_results_per_kind_are_bounded_and_link_to_the_full_list(client, support, db, today):
    for n in range(search.PER_KIND + 3):
        workspace(slug=f"umbrella-{n:02d}", name=f"Umbrella {n:02d}")
    client.force_login(support)
    response = client.get(URL, {"q": "umbrella"})
    assert len(groups(response)["Workspaces"]) == search.PER_KIND
    more = reverse("admin:billing_workspace_changelist") + "?q=umbrella"
    assert f'href="{more}"' in response.content.decode()


def queries_for(client, words):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, {"q": words}).status_code == 200
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_rows(client, finance, db, today):
    def add(n, start, as_of):
        for i in range(start, start + n):
            paid_monthly(
                as_of, name=f"Zeta {i}", slug=f"zeta-{i}", billing_email=f"z{i}@zeta.example"
            )
            application(f"Zeta Robotics {i}")
            coupons.create_coupon(f"ZETA{i}", "Zeta", "promotion", percent_off=10)

    add(2, 0, date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    client.force_login(finance)
    queries_for(client, "zeta")  # warm up: the session and the permissions
    few = queries_for(client, "zeta")

    add(search.PER_KIND + 2, 10, date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 3, 1))
    many = queries_for(client, "zeta")
    assert many == few
    # One query per kind searched, beside the session, the user and its permissions.
    assert many <= 4 + 6


def test_finance_finds_credit_notes_and_certificates_by_their_workspace(
    client, support, finance, reviewer, world
):
    """Walk 5: the search box found neither. A credit note is found by its invoice's number
    or its workspace, a certificate by its workspace; reviewers, who may read neither (R2),
    find neither."""
    from tests.billing.factories import certificate

    note = services.request_credit_note(
        world["invoice"], by=support, amount="10.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    cert = certificate(world["workspace"], "CA", on=date(2026, 2, 3))
    client.force_login(finance)
    found = groups(client.get(URL, {"q": "acme"}))
    assert found["Credit notes"] == [f"Credit note request #{note.pk} on {world['invoice'].number}"]
    assert found["Tax exemption certificates"] == [str(cert)]
    by_number = groups(client.get(URL, {"q": world["invoice"].number}))
    assert set(by_number) == {"Invoices", "Credit notes"}
    client.force_login(reviewer)
    found = groups(client.get(URL, {"q": "acme"}))
    assert "Credit notes" not in found and "Tax exemption certificates" not in found


def test_finance_finds_a_credit_note_and_a_certificate_by_their_own_numbers(
    client, support, finance, world
):
    """A credit note was found by its invoice's number, not by its own (INV-…-CN1, the number on
    the customer's document), and a certificate not by its number (#54) (finance's walk 8).
    Both are found by them, first, as an exact match."""
    from tests.billing.factories import certificate

    invoice = world["invoice"]
    note = services.request_credit_note(
        invoice, by=support, amount="10.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 2))
    note.refresh_from_db()
    cert = certificate(world["workspace"], "CA", on=date(2026, 2, 3))
    client.force_login(finance)

    for words in (note.number, note.number.lower(), f" {note.number} "):
        found = groups(client.get(URL, {"q": words}))
        assert found == {"Credit notes": [note.number]}, words
    assert "Credit notes" not in groups(client.get(URL, {"q": f"{invoice.number}-CN2"}))
    for words in (f"#{cert.pk}", f"certificate #{cert.pk}", f"Certificate {cert.pk}"):
        assert groups(client.get(URL, {"q": words}))["Tax exemption certificates"] == [str(cert)]


def test_a_whole_invoice_number_is_found_from_its_start_with_its_credit_notes(
    client, support, finance, world
):
    """R3: a whole number's trigrams are in most invoices' numbers, which the trigram index
    then read (0.27–0.34 s at 2.3 million invoices, bench/staff_walk.py). The invoice, and the
    credit notes on it, are found from the number's start in its btree; a part of a number is
    still searched anywhere."""
    invoice = world["invoice"]
    note = services.request_credit_note(
        invoice, by=support, amount="10.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    with CaptureQueriesContext(connection) as ctx:
        found = groups(client.get(URL, {"q": f" {invoice.number.lower()} "}))
    assert found == {
        "Invoices": [invoice.number],
        "Credit notes": [f"Credit note request #{note.pk} on {invoice.number}"],
    }
    searched = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith(("SELECT", "select"))
        and ('FROM "billing_invoice"' in q["sql"] or 'FROM "billing_creditnote"' in q["sql"])
        and invoice.number in q["sql"].upper()
    ]
    # No leading wildcard (the number's trigrams), only the number's start.
    assert len(searched) == 2, searched
    assert not [sql for sql in searched if f"%{invoice.number}" in sql.upper()], searched

    part = invoice.number[:-1]
    assert groups(client.get(URL, {"q": part}))["Invoices"] == [invoice.number]
