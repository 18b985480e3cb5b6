"""U1, U2: monthly usage reports and the all-or-nothing import."""

from datetime import date
from io import StringIO

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from billing import services
from billing.errors import BillingError, UsageImportError
from billing.models import Usage

from .factories import workspace


def test_u1_a_new_report_for_the_same_month_replaces_the_old(db):
    ws = workspace()
    services.record_usage(ws, month=date(2026, 1, 1), mtus=500)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=800)
    assert list(Usage.objects.values_list("month", "mtus")) == [(date(2026, 1, 1), 800)]


@pytest.mark.parametrize(
    "month, mtus", [(date(2026, 1, 2), 5), (date(2026, 1, 1), -1), (date(2026, 1, 1), 1.5)]
)
def test_u1_refuses_a_month_not_on_the_1st_or_bad_mtus(db, month, mtus):
    ws = workspace()
    with pytest.raises(BillingError, match="was not recorded"):
        services.record_usage(ws, month=month, mtus=mtus)
    assert not Usage.objects.exists()


def _write(tmp_path, text):
    path = tmp_path / "usage.csv"
    path.write_text(text)
    return path


def refusal(path):
    """What the import command says when it refuses the file at `path` (U2)."""
    with pytest.raises(CommandError) as raised:
        call_command("import_usage", str(path))
    return str(raised.value)


def test_u2_good_file_reports_created_and_replaced(db, tmp_path, capsys):
    a, b = workspace(slug="alpha"), workspace(slug="beta")
    services.record_usage(a, month=date(2026, 1, 1), mtus=10)
    path = _write(
        tmp_path, "workspace,month,mtus\nalpha,2026-01,1200\nbeta,2026-01,300\nbeta,2026-02,0\n"
    )
    call_command("import_usage", str(path))
    assert "2 new figure(s), 1 replaced, 0 unchanged (as on file)" in capsys.readouterr().out
    assert Usage.objects.get(workspace=a).mtus == 1200
    assert Usage.objects.filter(workspace=b).count() == 2


def test_u2_any_bad_row_rejects_the_whole_file_naming_every_bad_line(db, tmp_path):
    ws = workspace(slug="alpha")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=10)
    path = _write(
        tmp_path,
        "workspace,month,mtus\n"
        "alpha,2026-01,1200\n"  # good, but must not be applied
        "ghost,2026-01,5\n"  # unknown workspace
        "alpha,2026-13,5\n"  # bad month
        "alpha,2026-02,-4\n"  # negative
        "alpha,2026-03,2.5\n",  # not an integer
    )
    message = refusal(path)
    assert "4 bad line(s)" in message
    assert "Line 3: unknown workspace “ghost”" in message
    assert "Line 4: “2026-13” is not a month" in message
    assert "Line 5: MTUs must be a whole number" in message
    assert "Line 6: MTUs must be a whole number" in message
    assert Usage.objects.get().mtus == 10  # nothing half-imported


def test_u2_service_lists_errors_and_writes_nothing(db):
    workspace(slug="alpha")
    with pytest.raises(UsageImportError) as raised:
        services.import_usage([(2, {"workspace": "alpha", "month": "2026-01", "mtus": "x"})])
    assert raised.value.errors == ["Line 2: MTUs must be a whole number of at least 0, not “x”."]
    assert not Usage.objects.exists()


def test_u2_a_long_bad_value_is_named_not_repeated(db, tmp_path):
    """A 100,000-character MTUs field, slug and month were quoted back whole: the refusal on
    the page ran to 300,000 characters. Each is cut at 40 and its length said."""
    workspace(slug="alpha")
    long = "x" * 100_000
    path = _write(
        tmp_path,
        f"workspace,month,mtus\nalpha,2026-01,{long}\n{'s' * 100_000},2026-01,5\n"
        f"alpha,{'9' * 100_000},5\n",
    )
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    cut = "“" + "x" * 40 + "…” (100,000 characters)"
    assert raised.value.errors[0] == (
        f"Line 2: MTUs must be a whole number of at least 0, not {cut}."
    )
    assert raised.value.errors[1].startswith("Line 3: unknown workspace “ssss")
    assert raised.value.errors[2].startswith("Line 4: “9999")
    assert all(len(error) < 200 for error in raised.value.errors)
    assert not Usage.objects.exists()


def test_u2_a_file_without_the_right_header_is_refused(db, tmp_path):
    path = _write(tmp_path, "slug,month,users\nalpha,2026-01,5\n")
    with pytest.raises(CommandError, match="missing: mtus, workspace"):
        call_command("import_usage", str(path))


def test_u2_a_header_is_read_whatever_its_case_and_spaces(db, tmp_path):
    """A spreadsheet's export, "Workspace, Month, MTUs", was refused as "missing: month,
    mtus, workspace" though all three were there. It imports: alpha's January 2026, 1,200."""
    workspace(slug="alpha", as_of=date(2026, 1, 1))
    path = _write(tmp_path, "Workspace, Month, MTUs\nalpha,2026-01,1200\n")
    assert services.import_usage(path) == {"created": 1, "replaced": 0, "unchanged": 0}
    assert Usage.objects.get().mtus == 1_200


def test_u2_the_same_workspace_month_twice_in_one_file_is_refused(db, tmp_path):
    workspace(slug="alpha")
    path = _write(tmp_path, "workspace,month,mtus\nalpha,2026-01,5\nalpha,2026-01,6\n")
    with pytest.raises(CommandError, match="Line 3: alpha 2026-01 is also on line 2"):
        call_command("import_usage", str(path))


def test_u2_a_file_is_read_as_written_bom_crlf_quotes_blank_lines_and_column_order(db, tmp_path):
    workspace(slug="alpha"), workspace(slug="beta"), workspace(slug="gamma")
    path = tmp_path / "usage.csv"
    path.write_bytes(
        "\ufeffnote,mtus,month,workspace\r\n"
        'x,"1,200",2026-01,alpha\r\n'  # a quoted figure with a comma is not a whole number
        "\r\n"  # a blank line: skipped, but counted
        'y,300,2026-01,"beta"\r\n'
        "z, 7 ,2026-01, gamma \r\n".encode()
    )
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    assert raised.value.errors == [
        "Line 2: MTUs must be a whole number of at least 0, not “1,200”."
    ]
    path.write_bytes(path.read_bytes().replace(b'"1,200"', b"1200"))
    assert services.import_usage(path) == {"created": 3, "replaced": 0, "unchanged": 0}
    figures = dict(Usage.objects.values_list("workspace__slug", "mtus"))
    assert figures == {"alpha": 1200, "beta": 300, "gamma": 7}


def test_u2_i6_d2_every_rule_in_one_file_names_each_bad_line(db, tmp_path):
    services.record_usage(
        workspace(as_of=date(2026, 1, 1), slug="alpha"), month=date(2026, 1, 1), mtus=1
    )
    services.run_billing(as_of=date(2026, 2, 1))  # January is closed
    path = _write(
        tmp_path,
        "workspace,month,mtus\n"
        "alpha,2026-02,5\n"
        ",2026-02,5\n"  # 3: no workspace
        "alpha,2026-2,5\n"  # 4: not YYYY-MM
        "alpha,1999-12,5\n"  # 5: outside the years billed
        "alpha,2026-03,10000000001\n"  # 6: above I6's bound
        "alpha,2026-02,6\n"  # 7: the same month as line 2
        "alpha,2026-01,5\n"  # 8: a closed month
        "alpha,2026-04\n"  # 9: a short line
        "alpha,2026-05,+5\n"  # 10: a sign is not a whole number
        "alpha,2026-06,5,900\n"  # 11: 5,900 unquoted: read as 5, it would bill too little
        'alpha,2026-07,"5",900\n'  # 12: the same, quoted (read by Python's csv)
        "  \n"  # 13: spaces only (an empty line is skipped)
        "alpha,2026-08,5\n",
    )
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    assert raised.value.errors == [
        "Line 3: the workspace is missing.",
        "Line 4: “2026-2” is not a month in the form YYYY-MM.",
        "Line 5: “1999-12” is outside the months this system bills (2000-01 to 2099-12).",
        "Line 6: 10,000,000,001 MTUs is more than the 10,000,000,000 a month can report (a typo?).",
        "Line 7: alpha 2026-02 is also on line 2.",
        "Line 8: 2026-01 is closed (its invoices are issued).",
        "Line 9: 2 fields where the header names 3: mtus is missing.",
        "Line 10: MTUs must be a whole number of at least 0, not “+5”.",
        "Line 11: 4 fields where the header names 3 (a number with a thousands separator? "
        "write it without one).",
        "Line 12: 4 fields where the header names 3 (a number with a thousands separator? "
        "write it without one).",
        # The usage import audit: it read "1 field where the header names 3: month and mtus
        # are missing; the workspace is missing".
        "Line 13: a line of spaces only: delete it.",
    ]
    assert Usage.objects.count() == 1


def test_u2_a_file_with_many_bad_lines_names_the_first_thousand_and_counts_the_rest(
    db, tmp_path, monkeypatch
):
    """A page names the first thousand bad lines and counts the rest; the command names every
    one, as DESIGN's contract says (it named the first thousand too: line 1,003 on went
    unnamed)."""
    from billing import usage_import

    monkeypatch.setattr(usage_import, "BATCH_ROWS", 100)  # many batches, one answer
    workspace(slug="alpha")
    rows = [f"alpha,2026-01,{n}" for n in range(1, 2_501)]  # 2,499 repeat line 2's month
    path = _write(tmp_path, "workspace,month,mtus\n" + "\n".join(rows) + "\n")
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    errors = raised.value.errors
    assert raised.value.bad_lines == 2_499 and len(errors) == 1_001
    assert errors[0] == "Line 3: alpha 2026-01 is also on line 2."
    assert errors[999] == "Line 1002: alpha 2026-01 is also on line 1001."
    assert errors[-1] == "… and 1,499 more bad line(s): only the first 1,000 are listed."

    # The command writes every one to stderr as it reads them back from a temporary file,
    # not gathered into one message (a million bad lines took 1.2 GB that way).
    stderr = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_usage", str(path), stderr=stderr)
    assert (
        str(raised.value) == f"Nothing imported from {path}; 2,499 bad line(s), each named above."
    )
    named = stderr.getvalue().splitlines()
    assert named[0] == "Line 3: alpha 2026-01 is also on line 2."
    assert named[-1] == "Line 2501: alpha 2026-01 is also on line 2500."
    assert len(named) == 2_499 and all("is also on line" in line for line in named)
    assert not Usage.objects.exists()


def test_u2_a_short_line_names_the_columns_it_lacks(db, tmp_path):
    """U2: a line cut short is refused as missing its columns, named as the header names them
    (it was refused for its empty fields: "MTUs must be a whole number…, not “”", "the workspace
    is missing", as if the file had said so). A column the import does not read may be left
    off: the second file's line has no note and is imported."""
    workspace(slug="alpha")
    path = _write(
        tmp_path,
        "note,mtus,month,workspace\n"
        "x,5\n"  # 2: month and workspace cut off
        "x\n"  # 3: one field
        "x,6,2026-01,alpha\n",  # 4: all four
    )
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    assert raised.value.errors == [
        "Line 2: 2 fields where the header names 4: month and workspace are missing.",
        "Line 3: 1 field where the header names 4: mtus, month and workspace are missing.",
    ]
    path = _write(tmp_path, "workspace,month,mtus,note\nalpha,2026-01,6\n")
    assert services.import_usage(path) == {"created": 1, "replaced": 0, "unchanged": 0}
    assert Usage.objects.get().mtus == 6


def test_u2_counts_in_a_refusal_are_written_with_separators(db, tmp_path):
    """A count the import found is written as every count is ("1,503 fields"), the file's own
    text as it was typed: a line of 1,503 fields said "1503 fields"."""
    workspace(slug="alpha")
    path = _write(tmp_path, "workspace,month,mtus\nalpha,2026-01,5" + ",0" * 1_500 + "\n")
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    assert raised.value.errors == [
        "Line 2: 1,503 fields where the header names 3 (a number with a thousands separator? "
        "write it without one)."
    ]


def test_u2_rows_across_batches_are_checked_as_one_file(db, monkeypatch):
    from billing import usage_import

    monkeypatch.setattr(usage_import, "BATCH_ROWS", 2)
    workspace(slug="alpha"), workspace(slug="beta")
    rows = [
        (2, {"workspace": "alpha", "month": "2026-01", "mtus": "1"}),
        (3, {"workspace": "beta", "month": "2026-01", "mtus": "2"}),
        (4, {"workspace": "beta", "month": "2026-02", "mtus": 3}),
        (5, {"workspace": "alpha", "month": "2026-01", "mtus": "4"}),
    ]
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(rows)
    assert raised.value.errors == ["Line 5: alpha 2026-01 is also on line 2."]
    assert services.import_usage(rows[:3]) == {"created": 3, "replaced": 0, "unchanged": 0}
    assert services.import_usage(rows[:1]) == {"created": 0, "replaced": 0, "unchanged": 1}


def test_u1_u2_r4_a_file_sent_again_says_which_figures_changed(db, tmp_path):
    """A file imported twice said "0 created, 3 replaced" the second time, though nothing was
    written (no figure changed, no history version): figures equal to those on file are told
    apart as unchanged (operator's walk 8). Sent again with one figure changed: 1 replaced
    (one more version), 2 unchanged."""
    workspace(slug="alpha"), workspace(slug="beta"), workspace(slug="gamma")
    path = _write(
        tmp_path, "workspace,month,mtus\nalpha,2026-01,5\nbeta,2026-01,6\ngamma,2026-01,7\n"
    )
    assert services.import_usage(path) == {"created": 3, "replaced": 0, "unchanged": 0}
    versions = Usage.history.count()

    out = StringIO()
    call_command("import_usage", str(path), stdout=out)
    assert "0 new figure(s), 0 replaced, 3 unchanged (as on file)" in out.getvalue()
    assert Usage.history.count() == versions

    path.write_text(path.read_text().replace("beta,2026-01,6", "beta,2026-01,60"))
    assert services.import_usage(path) == {"created": 0, "replaced": 1, "unchanged": 2}
    assert Usage.history.count() == versions + 1


def test_u2_a_file_that_is_not_utf8_names_the_line(db, tmp_path):
    workspace(slug="alpha")
    path = tmp_path / "usage.csv"
    path.write_bytes(b"workspace,month,mtus\nalpha,2026-01,5\nalph\xe9,2026-02,5\n")
    with pytest.raises(UsageImportError, match="Line 3: the line is not UTF-8 text"):
        services.import_usage(path)
    assert not Usage.objects.exists()


def test_u2_an_empty_file_or_one_without_rows_is_refused(db, tmp_path):
    with pytest.raises(BillingError, match="missing: month, mtus, workspace"):
        services.import_usage(_write(tmp_path, ""))
    with pytest.raises(BillingError, match="has no rows to import"):
        services.import_usage(_write(tmp_path, "workspace,month,mtus\n\n"))


def test_u2_w1_usage_for_a_closed_workspace_is_a_bad_line(db, support):
    open_, closed = workspace(slug="open"), workspace(slug="gone")
    services.close_workspace(closed, by=support, reason="Customer asked", as_of=date(2026, 1, 5))
    rows = [
        (2, {"workspace": "open", "month": "2026-01", "mtus": "5"}),
        (3, {"workspace": "gone", "month": "2026-01", "mtus": "5"}),
    ]
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(rows)
    assert raised.value.errors == ["Line 3: gone was closed on 5 Jan 2026: it accepts no usage."]
    assert not Usage.objects.filter(workspace=open_).exists()


def test_d2_usage_for_a_month_the_clock_is_closing_is_refused(db, tmp_path):
    """The clock is processing 1 February (January's close, on workers, takes minutes): usage
    for January is refused by `record_usage` and by an import, naming the line."""
    from billing.clock import begin_day
    from billing.errors import BillingError, UsageImportError
    from tests.billing.factories import paid_monthly

    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 31))
    begin_day(date(2026, 2, 1))
    with pytest.raises(BillingError, match="January 2026 is closed"):
        services.record_usage(ws, month=date(2026, 1, 1), mtus=15_000)
    path = tmp_path / "usage.csv"
    path.write_text(f"workspace,month,mtus\n{ws.slug},2026-02,10\n{ws.slug},2026-01,15000\n")
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(path)
    assert refused.value.errors == [
        "Line 3: 2026-01 is closed (the billing clock has reached its close)."
    ]
    services.record_usage(ws, month=date(2026, 2, 1), mtus=10)  # February is open


HUGE = "9" * 5000  # a pasted run of digits, beyond what Python reads as a number (4,300)


def test_u2_i6_a_figure_of_5000_digits_is_a_bad_line_not_a_crash(db, tmp_path):
    workspace(slug="alpha")
    path = tmp_path / "usage.csv"
    path.write_text(f"workspace,month,mtus\nalpha,2026-01,5\nalpha,2026-02,{HUGE}\n")
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path)
    assert raised.value.errors == [
        "Line 3: a figure of 5,000 digits is more than the 10,000,000,000 MTUs a month can "
        "report (a typo?)."
    ]
    assert not Usage.objects.exists()
    with pytest.raises(CommandError, match="Line 3"):
        call_command("import_usage", str(path))


def _history(ws, month):
    usage = Usage.objects.get(workspace=ws, month=month)
    return [
        (h.mtus, h.history_type, h.history_user, h.history_change_reason)
        for h in usage.history.order_by("history_id")
    ]


def test_r4_an_imported_figure_is_kept_in_the_usage_history_with_who_and_why(
    client, support, tmp_path
):
    """R4: alpha's January was recorded as 10 MTUs; support imports a file saying 1,200 and one
    with February's 5,000 for beta. The import wrote both by SQL and left no history: the
    usage's history still said 10, nobody had replaced it, and beta's February had no history
    at all. Now each figure created or changed gets its row, with who and the file's name; a
    file sent again changes nothing and adds nothing."""
    alpha, beta = workspace(slug="alpha"), workspace(slug="beta")
    services.record_usage(alpha, month=date(2026, 1, 1), mtus=10)
    client.force_login(support)
    content = b"workspace,month,mtus\nalpha,2026-01,1200\nbeta,2026-02,5000\n"
    for _ in range(2):  # the same file twice: the second time writes nothing
        upload = SimpleUploadedFile("january.csv", content)
        response = client.post(reverse("admin:billing_usage_import"), {"file": upload})
        assert response.status_code == 302

    assert _history(alpha, date(2026, 1, 1)) == [
        (10, "+", None, "Usage recorded"),
        (1200, "~", support, "Usage import of january.csv"),
    ]
    assert _history(beta, date(2026, 2, 1)) == [(5000, "+", support, "Usage import of january.csv")]

    path = tmp_path / "march.csv"  # the command: no one signed in, the file's name says why
    path.write_text("workspace,month,mtus\nbeta,2026-03,7\n")
    call_command("import_usage", str(path))
    assert _history(beta, date(2026, 3, 1)) == [(7, "+", None, "Usage import of march.csv")]


def test_r4_the_usage_history_keeps_only_the_index_its_pages_read(db):
    """R4 at import scale: an import writes a history row per figure, and each index of the
    history table costs it every row. Its pages read one figure's versions by the figure's id,
    so that index stays; the ones on the workspace, the date and the user went (an import of
    1,050,000 lines, alternating: 19.3–22.1 s with them, 17.9–18.1 s without,
    bench/usage_import.py)."""
    table = Usage.history.model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    indexed = sorted(c["columns"] for c in constraints.values() if c["index"] or c["primary_key"])
    assert indexed == [["history_id"], ["id"]]


def test_r4_a_deleted_users_usage_history_says_no_one(db, support):
    """With no foreign key and no index on who changed a figure, Django still clears it."""
    alpha = workspace(slug="alpha")
    services.record_usage(
        alpha, month=date(2026, 1, 1), mtus=10, by=support, reason="Figure from the customer"
    )
    why = "Usage recorded: Figure from the customer"
    assert _history(alpha, date(2026, 1, 1)) == [(10, "+", support, why)]
    support.delete()
    assert _history(alpha, date(2026, 1, 1)) == [(10, "+", None, why)]


def test_r4_a_figure_recorded_by_hand_asks_why_and_keeps_it(client, support):
    """An audit: support replaced a month's figure by hand (250,000 MTUs, then 0: $2,400.00 of
    overage gone from the month's invoice, M3) and the usage's history kept who but not why,
    while the import keeps its file's name. The page now asks why, refuses without it, and
    the history keeps it."""
    alpha = workspace(slug="alpha", as_of=date(2026, 1, 1))
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[alpha.pk, "usage"])
    page = client.post(url, {"month": "2026-01", "mtus": "250000", "reason": " "})
    assert "Say why: the reason is kept in the history." in page.content.decode()
    assert not Usage.objects.exists()
    for mtus, reason in (("250000", "Ticket 41: the EU region"), ("0", "Ticket 42: a test")):
        client.post(url, {"month": "2026-01", "mtus": mtus, "reason": reason})
    assert _history(alpha, date(2026, 1, 1)) == [
        (250_000, "+", support, "Usage recorded: Ticket 41: the EU region"),
        (0, "~", support, "Usage recorded: Ticket 42: a test"),
    ]


ZEROS = b"0" * 5_000 + b"5"
NINES = b"9" * 140_000
FILES = {
    "leading_zeros": b"workspace,month,mtus\nws-long,2026-01," + ZEROS + b"\n",
    "leading_zeros_quoted_line": b'workspace,month,mtus\n"ws-long",2026-01,' + ZEROS + b"\n",
    "140000_digits": b"workspace,month,mtus\nws-long,2026-01," + NINES + b"\n",
    # A line with a quote is split by Python's csv, which stops at 131,072 characters a field.
    "140000_digits_quoted_line": b'workspace,month,mtus\n"ws-long",2026-01,' + NINES + b"\n",
}


@pytest.mark.parametrize("name", FILES)
def test_u2_i6_import_usage_command_names_an_overlong_figure_instead_of_crashing(
    db, tmp_path, name
):
    """U2, I6: a figure too long to be a month's MTUs is a bad line, named, never a crash.
    Python reads no more than 4,300 digits as a number, so "000…0005" with 5,000 zeros
    crashed the SQLite import (and PostgreSQL's lines with a quote); PostgreSQL's numeric
    overflowed above 131,072 digits. The command printed a traceback, the upload a 500. So did
    a line with a quote and a field over 131,072 characters (csv's field limit, on SQLite and
    PostgreSQL alike): "_csv.Error: field larger than field limit (131072)"."""
    workspace(slug="ws-long", as_of=date(2026, 1, 1))
    path = tmp_path / "usage.csv"
    path.write_bytes(FILES[name])
    # Either refused naming the line, or read as the 5 it says (PostgreSQL's SQL path does
    # that for the zeros); never an exception other than CommandError.
    try:
        call_command("import_usage", str(path), stdout=StringIO())
    except CommandError as exc:
        assert "Line 2: " in str(exc)
        assert not Usage.objects.exists()
    else:
        assert not name.startswith("140000_digits")
        assert list(Usage.objects.values_list("mtus", flat=True)) == [5]


@pytest.mark.parametrize("name", FILES)
def test_u2_i6_admin_usage_upload_names_an_overlong_figure_instead_of_a_500(
    db, client, support, name
):
    workspace(slug="ws-long", as_of=date(2026, 1, 1))
    client.force_login(support)
    upload = SimpleUploadedFile("usage.csv", FILES[name])
    client.raise_request_exception = False
    response = client.post(reverse("admin:billing_usage_import"), {"file": upload})
    assert response.status_code in (200, 302)  # refused naming the line, or imported
    if response.status_code == 200:
        assert "Line 2: " in response.content.decode()
        assert not Usage.objects.exists()


def test_r4_history_rows_are_numbered_past_two_billion(db):
    """R4 at import scale: every changed figure writes a history row, and the pipeline sends
    running totals, so each report changes every active workspace's current month. Numbered
    as integers (2,147,483,647 at most), a million workspaces reporting daily would run out
    within six years, hourly within three months, and every import after that would fail.
    Every history is numbered as a big integer, in the model and in the database."""
    tracked = [
        model
        for model in apps.get_models()
        if getattr(model._meta, "simple_history_manager_attribute", None)
    ]
    assert len(tracked) >= 20
    narrow = [
        model.__name__
        for model in tracked
        if model.history.model._meta.pk.get_internal_type() != "BigAutoField"
    ]
    assert narrow == []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "select max_value from pg_sequences where sequencename = %s",
                [f"{Usage.history.model._meta.db_table}_history_id_seq"],
            )
            assert cursor.fetchone() == (2**63 - 1,)


def test_u2_a_month_that_has_not_started_is_a_bad_month(db, tmp_path):
    """U2: 2027-12 typed for 2026-12 stayed on file and was billed at December 2027's close.
    Given the day of the report, a later month is refused, naming the line; the running
    month is not."""
    ws = workspace(slug="alpha", name="Alpha")
    today = date(2026, 12, 4)
    with pytest.raises(BillingError, match="December 2027 has not started on 4 Dec 2026"):
        services.record_usage(ws, month=date(2027, 12, 1), mtus=5, as_of=today)
    services.record_usage(ws, month=date(2026, 12, 1), mtus=5, as_of=today)
    path = _write(tmp_path, "workspace,month,mtus\nalpha,2026-12,7\nalpha,2027-12,9\n")
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(path, as_of=today)
    assert refused.value.errors == [
        "Line 3: 2027-12 has not started: usage is reported for months up to 2026-12 (a typo?)."
    ]
    assert list(Usage.objects.values_list("month", "mtus")) == [(date(2026, 12, 1), 5)]
    assert "2099-12 has not started" in refusal(
        _write(tmp_path, "workspace,month,mtus\nalpha,2099-12,9\n")
    )


def test_u2_a_month_before_the_sign_up_is_a_bad_month(db, tmp_path):
    """U2: a workspace signed up on 20 January 2026 has no usage in December 2025. Such a
    figure (a wrong slug or year) was stored, and billed nothing, with no word to the sender.
    Now it is refused, naming the line and the sign-up day; the sign-up month itself is
    taken, from its 1st, and nothing of the file is written."""
    ws = workspace(slug="alpha", as_of=date(2026, 1, 20))
    workspace(slug="beta", as_of=date(2025, 11, 1))
    with pytest.raises(
        BillingError,
        match=r"not recorded: December 2025 is before the workspace signed up \(20 Jan 2026\)",
    ):
        services.record_usage(ws, month=date(2025, 12, 1), mtus=2_000)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2_000)
    path = _write(
        tmp_path,
        "workspace,month,mtus\nbeta,2025-12,4\nalpha,2025-12,5\nalpha,2026-01,6\n"
        "alpha,1999-12,7\nalpha,2025-11,8\nalpha,2025-11,9\n",
    )
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(path)
    assert refused.value.errors == [
        "Line 3: 2025-12 is before the workspace signed up (20 Jan 2026).",
        "Line 5: “1999-12” is outside the months this system bills (2000-01 to 2099-12).",
        "Line 6: 2025-11 is before the workspace signed up (20 Jan 2026).",
        "Line 7: alpha 2025-11 is also on line 6.",
    ]
    assert list(Usage.objects.values_list("workspace__slug", "month", "mtus")) == [
        ("alpha", date(2026, 1, 1), 2_000)
    ]
    rows = [(2, {"workspace": "alpha", "month": "2025-12", "mtus": "5"})]
    with pytest.raises(UsageImportError, match="Line 2: 2025-12 is before the workspace signed"):
        services.import_usage(rows)


def test_u2_the_admin_import_refuses_a_month_after_today(client, db, support, pin_today):
    workspace(slug="alpha")
    pin_today(date(2026, 12, 4))
    client.force_login(support)
    upload = SimpleUploadedFile("usage.csv", b"workspace,month,mtus\nalpha,2027-01,9\n")
    page = client.post(reverse("admin:billing_usage_import"), {"file": upload})
    assert "Line 2: 2027-01 has not started" in page.content.decode()
    assert not Usage.objects.exists()


def test_u2_support_is_told_a_month_before_the_sign_up_on_both_usage_screens(
    client, db, support, pin_today
):
    """The workspace's usage form and the import page say why a December 2025 figure for a
    workspace signed up on 20 January 2026 is refused, and keep nothing."""
    ws = workspace(slug="alpha", as_of=date(2026, 1, 20))
    pin_today(date(2026, 2, 4))
    client.force_login(support)
    form = client.post(
        reverse("admin:billing_workspace_action", args=[ws.pk, "usage"]),
        {"month": "2025-12", "mtus": "2000", "reason": "Ticket 9"},
        follow=True,
    )
    assert "December 2025 is before the workspace signed up (20 Jan 2026)" in (
        form.content.decode()
    )
    upload = SimpleUploadedFile("usage.csv", b"workspace,month,mtus\nalpha,2025-12,9\n")
    page = client.post(reverse("admin:billing_usage_import"), {"file": upload})
    assert "Line 2: 2025-12 is before the workspace signed up (20 Jan 2026)." in (
        page.content.decode()
    )
    assert not Usage.objects.exists()


def test_u2_a_binary_file_is_said_not_to_be_text_whatever_its_first_line(db, tmp_path):
    """A .xlsx is a zip: its first "line" happened to decode, so it was told its header must
    be workspace,month,mtus. It is told to export the file as CSV."""
    path = tmp_path / "usage.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\n\x00\x00\xa1\xff\x9c[Content_Types].xml")
    with pytest.raises(BillingError, match="The file is not UTF-8 text; export it as CSV."):
        services.import_usage(path)
    with pytest.raises(BillingError, match="The header must be workspace,month,mtus"):
        services.import_usage(_write(tmp_path, "workspace;month;mtus\nalpha;2026-01;5\n"))


def test_d2_a_month_the_clock_passed_without_closing_is_not_said_to_have_invoices(db):
    """2000-01, long before the clock's first day, read "is closed (its invoices are
    issued)", though no close ever ran for it."""
    workspace(slug="alpha", as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    rows = [(2, {"workspace": "alpha", "month": "2000-01", "mtus": "5"})]
    rows.append((3, {"workspace": "alpha", "month": "2026-01", "mtus": "5"}))
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(rows)
    assert refused.value.errors == [
        "Line 2: 2000-01 is closed (the billing clock has reached its close).",
        "Line 3: 2026-01 is closed (its invoices are issued).",
    ]


def test_u2_every_bad_line_is_written_to_the_report_however_many(db, tmp_path, monkeypatch):
    """U2: "every bad line named". A page names the first thousand; given a report file, the
    import writes every one there with its reason (a CSV: line, problem), read in batches, and
    still refuses the whole file."""
    import csv

    from billing import usage_import

    monkeypatch.setattr(usage_import, "BATCH_ROWS", 100)  # many batches, one report
    workspace(slug="alpha", as_of=date(2026, 1, 1))
    rows = [f"alpha,2026-01,{n}" for n in range(1, 2_501)]  # 2,499 repeat line 2's month
    path = _write(tmp_path, "workspace,month,mtus\nnope,2026-01,5\n" + "\n".join(rows) + "\n")
    report = StringIO()
    with pytest.raises(UsageImportError) as raised:
        services.import_usage(path, bad_lines_to=report)
    assert raised.value.bad_lines == 2_500 and len(raised.value.errors) == 1_001
    assert raised.value.errors[0] == "Line 2: unknown workspace “nope”."
    lines = list(csv.reader(StringIO(report.getvalue())))
    assert lines[0] == ["line", "problem"]
    assert lines[1] == ["2", "unknown workspace “nope”"]
    assert lines[2] == ["4", "alpha 2026-01 is also on line 3"]
    assert lines[-1] == ["2502", "alpha 2026-01 is also on line 2501"]
    assert len(lines) == 1 + 2_500
    assert not Usage.objects.exists()

    # A good file writes nothing to it.
    good, report = _write(tmp_path, "workspace,month,mtus\nalpha,2026-01,5\n"), StringIO()
    services.import_usage(good, bad_lines_to=report)
    assert report.getvalue() == "" and Usage.objects.get().mtus == 5
