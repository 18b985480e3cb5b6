"""R3: the invoice list searched for a whole invoice number (INV-2026-000002, in any case) shows
the numbers that begin with it, found in the number's btree; the trigram index it read before
cost 0.27–0.34 s a page at 2.3 million invoices (bench/staff_walk.py). Any other words, a part
of a number included, are searched as on every list (`ServiceAdmin.get_search_results`)."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services
from billing.models import InvoiceSequence
from tests.billing.factories import paid_monthly

JAN = date(2026, 1, 1)
URL = reverse("admin:billing_invoice_changelist")


@pytest.fixture
def invoices(db, today):
    """Acme's invoices INV-2026-000001 and -000003, Zeta's -000002 and -000004 (January and
    February, issued on 1 February and 1 March)."""
    paid_monthly(JAN, name="Acme Analytics", slug="acme")
    paid_monthly(JAN, name="Zeta Labs", slug="zeta")
    services.run_billing(as_of=date(2026, 3, 2))


def listed(client, words):
    """The numbers the list shows searched for `words`, and the page's queries."""
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(URL, {"q": words})
    assert page.status_code == 200
    return sorted(i.number for i in page.context["cl"].result_list), ctx.captured_queries


@pytest.mark.parametrize(
    "words", ["INV-2026-000002", "inv-2026-000002", " Inv-2026-000002 ", "INV-2026-000002\t"]
)
def test_a_whole_invoice_number_lists_that_invoice_found_from_its_start(
    client, support, invoices, words
):
    client.force_login(support)
    numbers, queries = listed(client, words)
    assert numbers == ["INV-2026-000002"]
    searched = [
        q["sql"]
        for q in queries
        if 'FROM "billing_invoice"' in q["sql"] and "INV-2026-000002" in q["sql"].upper()
    ]
    assert len(searched) >= 3  # the count, the rows, the drill-down's first and last dates
    # No leading wildcard (the number's trigrams), only the number's start.
    assert [sql for sql in searched if "%INV-2026-000002" in sql.upper()] == [], searched


@pytest.mark.parametrize(
    "words, numbers",
    [
        # a part of a number: every number holding it
        (
            "INV-2026-00000",
            ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003", "INV-2026-000004"],
        ),
        (
            "inv-2026-00000",
            ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003", "INV-2026-000004"],
        ),
        ("2026-000004", ["INV-2026-000004"]),
        ("000003", ["INV-2026-000003"]),
        # a credit note's name (INV-…-CN1) is no invoice number, nor is a quoted one
        ("INV-2026-000001-CN1", []),
        ('"INV-2026-000001"', ["INV-2026-000001"]),
        # the workspace's slug or name, or both words
        ("acme", ["INV-2026-000001", "INV-2026-000003"]),
        ("Zeta Labs", ["INV-2026-000002", "INV-2026-000004"]),
        ("zeta 000004", ["INV-2026-000004"]),
        ("INV-2026-000001 zeta", []),
    ],
)
def test_other_words_find_what_they_found_before(client, support, invoices, words, numbers):
    client.force_login(support)
    assert listed(client, words)[0] == numbers


def test_a_whole_number_lists_its_invoice_and_the_longer_numbers_beginning_with_it(
    client, support, db, today
):
    """I1: past 999,999 a year's numbers grow a seventh digit, and INV-2026-1000000 and
    -1000001 begin with INV-2026-100000: searched for, it lists all three (as the words
    anywhere did, tests/billing/test_invoice_numbers.py), from the number's btree."""
    InvoiceSequence.objects.create(year=2026, last_number=99_999)
    paid_monthly(JAN)
    services.run_billing(as_of=date(2026, 2, 2))  # INV-2026-100000
    InvoiceSequence.objects.filter(year=2026).update(last_number=999_999)
    paid_monthly(date(2026, 2, 3))
    services.run_billing(as_of=date(2026, 3, 2))  # INV-2026-1000000 and -1000001
    client.force_login(support)
    everything = ["INV-2026-100000", "INV-2026-1000000", "INV-2026-1000001"]
    assert listed(client, "INV-2026-100000")[0] == everything
    assert listed(client, "INV-2026-10000")[0] == everything
