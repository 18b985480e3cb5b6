"""I, R3: the invoice CSV — the contract's columns and formats, CSV-injection safety, the
export of a filtered list is that list, `export_invoices --from/--to` (both ends included),
and streaming on both paths: csv.writer (SQLite) and COPY … TO STDOUT (PostgreSQL)."""

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import csv_export, services
from billing.csv_export import InvoiceCsv, neutralise
from billing.models import Invoice
from tests.services import require_postgres

from . import factories

HEADER = (
    "number,workspace,kind,period_start,period_end,issue_date,status,currency,"
    "subtotal,discount,credits,tax,total,tax_country,tax_region,tax_note"
)


def paid_monthly(as_of, region="CA", **kwargs):
    return factories.paid_monthly(as_of, business_region=region, **kwargs)


def export(queryset=None) -> str:
    return b"".join(InvoiceCsv(queryset or Invoice.objects.all())).decode()


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def invoices(db):
    """Invoices issued on 2026-01-31 (final), 02-01, 03-01, 03-31 (final) and 04-01."""
    a = paid_monthly(date(2026, 1, 1), slug="alpha")
    services.record_usage(a, month=date(2026, 1, 1), mtus=10_333)
    b = paid_monthly(date(2026, 1, 5), region="OR", slug="beta")
    services.change_to_free(b, as_of=date(2026, 1, 31))
    c = paid_monthly(date(2026, 3, 2), region="TX", slug="gamma")
    services.change_to_free(c, as_of=date(2026, 3, 31))
    services.run_billing(as_of=date(2026, 4, 1))
    return {"alpha": a, "beta": b, "gamma": c}


# --- the contract ---------------------------------------------------------------------------


def test_i1_csv_has_exactly_the_contract_columns_and_formats(invoices):
    text = export()
    assert text.splitlines()[0] == HEADER
    january = Invoice.objects.get(workspace=invoices["alpha"], issue_date=date(2026, 2, 1))
    first = rows(text)[1]  # alpha's January invoice, issued 2026-02-01
    assert first == {
        "number": january.number,
        "workspace": "alpha",  # the slug
        "kind": "monthly",
        "period_start": "2026-01-01",
        "period_end": "2026-02-01",  # exclusive
        "issue_date": "2026-02-01",
        "status": "issued",
        "currency": "USD",
        "subtotal": "123.33",  # 120.00 + 333 MTUs × $0.01
        "discount": "0.00",
        "credits": "0.00",
        "tax": "8.94",  # 7.25 % of 123.33 = 8.941…
        "total": "132.27",
        "tax_country": "US",
        "tax_region": "CA",
        "tax_note": "",
    }
    assert all(
        re.fullmatch(r"\d+\.\d\d", row[col]) for row in rows(text) for col in csv_export.MONEY
    )
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\d", row[col]) for row in rows(text) for col in csv_export.DATES
    )


def test_i1_csv_lists_invoices_in_issue_order(invoices):
    dates = [row["issue_date"] for row in rows(export())]
    assert dates == sorted(dates) and len(dates) == Invoice.objects.count()


# --- CSV injection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, written",
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-12.50", "-12.50"),  # a plain number stays plain
        ("+7", "+7"),
        ("-", "'-"),
        ("exempt: certificate #3 (resale)", "exempt: certificate #3 (resale)"),
        ("", ""),
    ],
)
def test_csv_injection_formula_cells_are_neutralised_numbers_stay_plain(cell, written):
    assert neutralise(cell) == written


def test_csv_injection_in_an_exported_invoice(db):
    ws = paid_monthly(date(2026, 1, 1), slug="-cmd")  # a valid slug that starts with "-"
    services.run_billing(as_of=date(2026, 2, 1))
    # Data written by another tool: the export must not trust it.
    Invoice.objects.filter(workspace=ws).update(tax_note='=cmd|"/C calc"!A0', tax_region="-7")
    text = export()
    row = rows(text)[0]
    assert (row["workspace"], row["tax_note"], row["tax_region"]) == (
        "'-cmd",
        '\'=cmd|"/C calc"!A0',
        "-7",
    )
    assert (row["subtotal"], row["tax"]) == ("120.00", "8.70")


# --- the list and its export ----------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"issued_from": "2026-03", "issued_to": "2026-03"},
        {"kind": "final"},
        {"country": "US", "region": "CA", "tax": "taxed"},
        {"tax": "untaxed", "status": "issued"},
    ],
)
def test_r3_the_export_of_a_filtered_list_is_that_list(client, finance, invoices, params):
    client.force_login(finance)
    listed = re.findall(
        r">(INV-\d{4}-\d{6,})</a>", client.get(reverse("finance:invoices"), params).content.decode()
    )
    response = client.get(reverse("finance:invoices-export"), params)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="invoices')
    exported = [row["number"] for row in rows(b"".join(response.streaming_content).decode())]
    assert listed and sorted(exported) == sorted(listed)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"issued_from": "2026-07", "issued_to": "2026-07"}, "invoices_2026-07_2026-07.csv"),
        ({"issued_to": "2026-07"}, "invoices_to_2026-07.csv"),
        ({"issued_from": "2026-07"}, "invoices_from_2026-07.csv"),
        ({}, "invoices.csv"),
    ],
)
def test_r3_the_export_is_named_by_its_issue_months(client, finance, db, params, name):
    """R3 (walk 10): a range open at one end says so. 'Issued to 2026-07' (January to July in
    the demo, 68 invoices) and 'issued from 2026-07' were both named invoices_2026-07.csv, the
    name a reader takes for July's invoices alone, and the second download overwrote the
    first in the browser's folder."""
    client.force_login(finance)
    response = client.get(reverse("finance:invoices-export"), params)
    b"".join(response.streaming_content)  # read to its end, as a browser does
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'


def test_r3_export_refuses_a_bad_filter_on_the_list_page(client, finance, db):
    """A bad filter used to get a bare text/plain 400 without a charset, its quotes garbled in
    the browser ("â€œ2026-13â€"), its field named by code ("issued_to:", "__all__:"). The list
    page comes back instead, the filter marked, and offers no export of filters it refuses."""
    client.force_login(finance)
    export = reverse("finance:invoices-export")
    for params, problem in (
        ({"issued_to": "2026-13"}, "“2026-13” is not a month in the form YYYY-MM"),
        (
            {"issued_from": "2026-12", "issued_to": "2026-01"},
            "The range ends (2026-01) before it starts (2026-12).",
        ),
    ):
        response = client.get(export, params)
        assert response.status_code == 400
        assert response["Content-Type"] == "text/html; charset=utf-8"
        body = response.content.decode()
        assert "Nothing exported: the filters marked below are not valid." in body
        assert problem in body
        assert "__all__" not in body and f'href="{export}' not in body
        listed = client.get(reverse("finance:invoices"), params).content.decode()
        assert problem in listed and f'href="{export}' not in listed
        assert "Nothing exported" not in listed


# --- the command ----------------------------------------------------------------------------


def test_export_invoices_from_and_to_are_both_included(invoices):
    out = io.StringIO()
    call_command("export_invoices", "--from", "2026-02", "--to", "2026-03", stdout=out)
    assert out.getvalue().splitlines()[0] == HEADER
    issued = sorted((row["workspace"], row["issue_date"]) for row in rows(out.getvalue()))
    assert issued == [
        ("alpha", "2026-02-01"),  # the first day of --from
        ("alpha", "2026-03-01"),
        ("gamma", "2026-03-31"),  # the last day of --to
    ]  # not beta's final of 2026-01-31 nor alpha's invoice of 2026-04-01


def test_export_invoices_to_standard_output_is_utf8_whatever_its_encoding(
    invoices, client, finance
):
    """The page and `-o` give UTF-8; standard output in a server's latin-1 locale stopped at a
    tax note's "…" (UnicodeEncodeError), the rows before it already written. It gets the same
    bytes as the page."""
    Invoice.objects.filter(workspace__slug="gamma").update(tax_note="exempt: Québec … №7")
    out = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    call_command("export_invoices", "--from", "2026-03", stdout=out)
    client.force_login(finance)
    page = client.get(reverse("finance:invoices-export"), {"issued_from": "2026-03"})
    written = out.buffer.getvalue()
    assert written == b"".join(page.streaming_content)
    assert "exempt: Québec … №7" in written.decode()


def test_export_invoices_to_a_file_matches_the_page(invoices, tmp_path, client, finance):
    target = tmp_path / "invoices.csv"
    err = io.StringIO()
    call_command("export_invoices", "--from", "2026-03", "-o", str(target), stderr=err)
    assert "3 invoice(s) written to" in err.getvalue()
    client.force_login(finance)
    page = client.get(reverse("finance:invoices-export"), {"issued_from": "2026-03"})
    assert target.read_bytes() == b"".join(page.streaming_content)


def test_export_invoices_that_fails_part_way_leaves_the_file_that_was_there(
    invoices, tmp_path, monkeypatch
):
    """A failed operation leaves nothing half-written: `-o FILE` of an export whose database
    goes away after the header and one row keeps the earlier export as it was, and leaves no
    part file beside it. Before, FILE was cut to the header and that one row."""
    target = tmp_path / "invoices.csv"
    call_command("export_invoices", "-o", str(target), stderr=io.StringIO())
    earlier = target.read_bytes()
    assert len(rows(earlier.decode())) == Invoice.objects.count() > 1

    def cut_short(export):
        yield csv_export.header()
        yield b"INV-2026-000001,alpha\n"
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(InvoiceCsv, "__iter__", cut_short)
    with pytest.raises(OperationalError):
        call_command("export_invoices", "-o", str(target), stderr=io.StringIO())
    assert target.read_bytes() == earlier
    assert [path.name for path in tmp_path.iterdir()] == ["invoices.csv"]


def test_export_invoices_to_a_folder_that_is_not_there_says_so(db, tmp_path):
    target = tmp_path / "no-such-folder" / "invoices.csv"
    with pytest.raises(CommandError, match="Cannot write .*invoices.csv: No such file"):
        call_command("export_invoices", "-o", str(target), stderr=io.StringIO())
    assert not (tmp_path / "no-such-folder").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "2026-3"], "“2026-3” is not a month in the form YYYY-MM"),
        (["--from", "2026-04", "--to", "2026-01"], "ends (2026-01) before it starts (2026-04)"),
    ],
)
def test_export_invoices_refuses_bad_months(db, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("export_invoices", *args, stdout=io.StringIO())


# --- streaming ------------------------------------------------------------------------------


def test_export_python_writer_streams_in_chunks(invoices, monkeypatch):
    """The writer SQLite uses (PostgreSQL streams with COPY, tested below): run directly, so
    it is tested on either database."""
    monkeypatch.setattr(csv_export, "CHUNK_ROWS", 2)
    chunks = list(InvoiceCsv(Invoice.objects.all())._python_chunks())
    count = Invoice.objects.count()
    assert len(chunks) == (count + 1) // 2  # a chunk every 2 rows
    assert b"".join(chunks).count(b"\n") == count


def _tricky_invoices():
    """Cells that test both writers' quoting: commas, quotes, newlines, empty, formulas."""
    ws = paid_monthly(date(2026, 1, 1), slug="-tricky")
    plain = paid_monthly(date(2026, 1, 1), region="OR", slug="plain")
    services.run_billing(as_of=date(2026, 7, 1))  # six invoices each
    notes = ['a, "quoted" note', "two\nlines", "=1+1", "\r@x", "-3.25", "   "]
    tricky = Invoice.objects.filter(workspace=ws).order_by("pk")
    for invoice, note in zip(tricky, notes, strict=True):
        Invoice.objects.filter(pk=invoice.pk).update(tax_note=note)
    return ws, plain


def test_export_postgresql_streams_with_copy_and_writes_what_csv_writer_writes(db, monkeypatch):
    require_postgres()
    _tricky_invoices()
    monkeypatch.setattr(csv_export, "CHUNK_BYTES", 200)
    export = InvoiceCsv(Invoice.objects.all())
    with CaptureQueriesContext(connection) as queries:
        chunks = list(export)
    statements = [q["sql"] for q in queries.captured_queries]
    assert any(sql.startswith("COPY (SELECT") for sql in statements)
    assert not any(sql.startswith("SELECT") for sql in statements)  # no row loop in Python
    assert len(chunks) > 3 and export.rows == Invoice.objects.count()
    copied = b"".join(chunks)
    # The COPY path writes the same bytes as the csv.writer path for the same rows.
    python = InvoiceCsv(Invoice.objects.all())
    assert copied == csv_export.header() + b"".join(python._python_chunks())
    row = rows(copied.decode())[0]
    assert row["workspace"] == "'-tricky" and row["tax_note"] == 'a, "quoted" note'


def test_export_postgresql_page_streams_the_filtered_rows(db, client, finance):
    require_postgres()
    _tricky_invoices()
    client.force_login(finance)
    response = client.get(reverse("finance:invoices-export"), {"region": "OR"})
    assert isinstance(response, StreamingHttpResponse)
    exported = rows(b"".join(response.streaming_content).decode())
    assert {row["workspace"] for row in exported} == {"plain"}
    assert [row["total"] for row in exported] == ["120.00"] * 6
    assert all(isinstance(Decimal(row["tax"]), Decimal) for row in exported)
