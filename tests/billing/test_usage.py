"""U1, U2: monthly usage reports and the all-or-nothing import."""

from datetime import date

import pytest
from django.core.management import CommandError, call_command

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


def test_u2_good_file_reports_created_and_replaced(db, tmp_path, capsys):
    a, b = workspace(slug="alpha"), workspace(slug="beta")
    services.record_usage(a, month=date(2026, 1, 1), mtus=10)
    path = _write(
        tmp_path, "workspace,month,mtus\nalpha,2026-01,1200\nbeta,2026-01,300\nbeta,2026-02,0\n"
    )
    call_command("import_usage", str(path))
    assert "2 created, 1 replaced" in capsys.readouterr().out
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
    with pytest.raises(CommandError) as raised:
        call_command("import_usage", str(path))
    message = str(raised.value)
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


def test_u2_a_file_without_the_right_header_is_refused(db, tmp_path):
    path = _write(tmp_path, "slug,month,users\nalpha,2026-01,5\n")
    with pytest.raises(CommandError, match="missing: mtus, workspace"):
        call_command("import_usage", str(path))


def test_u2_the_same_workspace_month_twice_in_one_file_is_refused(db, tmp_path):
    workspace(slug="alpha")
    path = _write(tmp_path, "workspace,month,mtus\nalpha,2026-01,5\nalpha,2026-01,6\n")
    with pytest.raises(CommandError, match="Line 3: alpha 2026-01 is also on line 2"):
        call_command("import_usage", str(path))
