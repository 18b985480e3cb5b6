"""A form sent twice, at once or again later (the run-twice walk): the second does nothing and
says why. On PostgreSQL each request is a thread with its own connection (tests/conftest.py's
run_together); SQLite writes one transaction at a time, so only the replays run there."""

from datetime import date

import pytest

from billing import services
from billing.errors import BillingError
from billing.models import PaymentMethod, TaxRate, Workspace
from tests.services import require_postgres

from .factories import workspace

SIGN_UP = {
    "slug": "twice-a",
    "business_country": "US",
    "business_region": "CA",
    "billing_email": "billing@twice.example",
    "as_of": date(2026, 1, 5),
}


def test_r5_a_workspace_added_again_is_refused_by_its_slug(db):
    services.create_workspace("Twice A", **SIGN_UP)
    with pytest.raises(BillingError, match="The slug “twice-a” is already used by Twice A"):
        services.create_workspace("Twice A", **SIGN_UP)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_r5_a_workspace_added_three_times_at_once_is_created_once(run_together):
    """The admin's add page sent three times at once answered one 302 and two 500s (the
    slug's unique index refused the others' rows): each now waits for the first and is told
    the slug is taken, as one sent later is."""
    require_postgres()
    add = lambda: services.create_workspace("Twice A", **SIGN_UP)  # noqa: E731
    outcomes = run_together(add, add, add, refusals=(BillingError,))
    refused = [o for o in outcomes if isinstance(o, BillingError)]
    assert len(refused) == 2
    assert all("is already used by Twice A (twice-a)" in str(o) for o in refused)
    assert Workspace.objects.filter(slug="twice-a").count() == 1


def test_r4_t2_a_card_recorded_again_records_nothing(db):
    """Visa •••• 4242 recorded, then the page sent again: refused, naming the card on file;
    the workspace's history has one 'Payment method added'. Another card replaces it."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.add_payment_method(ws, as_of=date(2026, 1, 5), brand="Visa", last4="4242")
    with pytest.raises(BillingError) as refused:
        services.add_payment_method(ws, as_of=date(2026, 1, 6), brand="Visa", last4="4242")
    assert str(refused.value) == (
        f"{ws.name} has this card on file already: Visa •••• 4242 from 5 Jan 2026."
    )
    reasons = ws.history.values_list("history_change_reason", flat=True)
    assert list(reasons).count("Payment method added") == 1
    services.add_payment_method(ws, as_of=date(2026, 1, 6), brand="Visa", last4="1881")
    assert PaymentMethod.objects.get(workspace=ws, removed_on=None).last4 == "1881"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_r4_t2_a_card_recorded_three_times_at_once_is_recorded_once(run_together):
    """Three at once kept one card but wrote three 'Payment method added' versions and three
    admin log entries: the history claimed three cards."""
    require_postgres()
    ws = workspace(as_of=date(2026, 1, 1))
    add = lambda: services.add_payment_method(  # noqa: E731
        Workspace.objects.get(pk=ws.pk), as_of=date(2026, 1, 5), brand="Visa", last4="4242"
    )
    outcomes = run_together(add, add, add, refusals=(BillingError,))
    assert sum(isinstance(o, BillingError) for o in outcomes) == 2
    assert PaymentMethod.objects.filter(workspace=ws).count() == 1
    reasons = ws.history.values_list("history_change_reason", flat=True)
    assert list(reasons).count("Payment method added") == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_u1_r4_two_figures_recorded_at_once_each_name_the_one_they_replaced(run_together):
    """1,000 and 2,000 MTUs recorded at once over 8,010: both pages said 'replacing 8,010',
    though the second replaced 1,000. The figure replaced is read under the workspace's lock,
    so one names 8,010 and the other the first's figure."""
    require_postgres()
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=8_010, as_of=date(2026, 1, 20))

    def record(mtus):
        return lambda: (
            services.record_usage(
                Workspace.objects.get(pk=ws.pk), month=date(2026, 1, 1), mtus=mtus
            ).figure_before
        )

    befores = run_together(record(1_000), record(2_000))
    assert sorted(befores) in ([1_000, 8_010], [2_000, 8_010])


def nz_gst():
    return services.set_tax_rate(
        "NZ",
        rate="15",
        name="GST",
        valid_from=date(2026, 12, 20),
        reason="Inland Revenue notice",
        by=None,
    )


def test_x2_r4_the_same_rate_set_again_changes_nothing(db):
    """The add page sent twice kept a second version with nothing changed and told finance
    'It replaces the 15 % rate (GST)', the same rate. Another rate that day still replaces
    it (X2)."""
    rate = nz_gst()
    with pytest.raises(BillingError) as refused:
        nz_gst()
    assert str(refused.value) == "NZ 15 % from 20 Dec 2026 (GST) is set already: nothing changes."
    assert rate.history.count() == 1
    services.set_tax_rate(
        "NZ", rate="16", name="GST", valid_from=date(2026, 12, 20), reason="Typo", by=None
    )
    december = TaxRate.objects.filter(country="NZ", valid_from=date(2026, 12, 20))
    assert [str(r) for r in december] == ["NZ 16 % from 20 Dec 2026"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_x2_r4_the_same_rate_set_twice_at_once_is_set_once(run_together):
    require_postgres()
    outcomes = run_together(nz_gst, nz_gst, refusals=(BillingError,))
    assert sum(isinstance(o, BillingError) for o in outcomes) == 1
    december = TaxRate.objects.get(country="NZ", valid_from=date(2026, 12, 20))
    assert december.history.count() == 1
