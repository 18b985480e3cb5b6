"""W1 on PostgreSQL: a closure and the writers of usage take turns (billing.closed_workspaces.
hold_usage_writers), so no figure is written for a workspace once its closure has committed."""

import threading
from datetime import date

import pytest
from django.db import connections

from billing import services
from billing.errors import UsageImportError
from billing.models import Usage, Workspace
from tests.billing.factories import workspace
from tests.services import require_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_w1_u2_an_import_refuses_a_workspace_closed_while_its_file_was_checked(support):
    """Support closes alpha (dated 5 January) after the import checked its file, before it
    wrote: the import wrote 4,000 MTUs for the closed workspace. Now it names the line and
    writes nothing."""
    require_postgres()
    ws = workspace(slug="alpha", as_of=date(2026, 1, 1))
    workspace(slug="beta", as_of=date(2026, 1, 1))
    rows = [
        (2, {"workspace": "beta", "month": "2026-01", "mtus": "3000"}),
        (3, {"workspace": "alpha", "month": "2026-01", "mtus": "4000"}),
    ]
    errors = []

    def close_elsewhere():
        try:
            services.close_workspace(
                Workspace.objects.get(pk=ws.pk),
                by=support,
                reason="Customer asked",
                as_of=date(2026, 1, 5),
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def progress(stage, done):
        if stage == "writing":  # every line checked: a support agent closes alpha now
            thread = threading.Thread(target=close_elsewhere)
            thread.start()
            thread.join(20)

    with pytest.raises(UsageImportError) as refused:
        services.import_usage(rows, progress=progress)
    assert errors == []
    ws.refresh_from_db()
    assert ws.closed_on == date(2026, 1, 5)
    assert refused.value.errors == ["Line 3: alpha was closed on 5 Jan 2026: it accepts no usage."]
    assert not Usage.objects.exists()  # beta's figure neither: the file or nothing (U2)


def test_w1_u1_a_figure_recorded_during_a_closure_waits_for_it_and_is_refused(support):
    """A figure recorded while a closure is under way (checked open before the closure
    committed) was written for the closed workspace. It now waits for the closure and is
    refused."""
    from django.db import transaction

    from billing.errors import WorkspaceClosed

    require_postgres()
    ws = workspace(slug="alpha", as_of=date(2026, 1, 1))
    outcome = []

    def record_elsewhere():
        try:
            services.record_usage(
                Workspace.objects.get(pk=ws.pk), month=date(2026, 1, 1), mtus=4000
            )
            outcome.append("recorded")
        except Exception as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():
        services.close_workspace(ws, by=support, reason="Customer asked", as_of=date(2026, 1, 5))
        recording = threading.Thread(target=record_elsewhere)
        recording.start()
        recording.join(1)
        assert recording.is_alive()  # it waits for the closure
    recording.join(20)
    assert len(outcome) == 1 and isinstance(outcome[0], WorkspaceClosed)
    assert not Usage.objects.exists()
