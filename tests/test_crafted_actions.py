"""R5: a changelist action posted with a selected row that is no row id ("abc", 1.5, an id
beyond 64 bits: posted by hand) answered 500 on every list of the three apps, on SQLite and
PostgreSQL alike (the id beyond 64 bits on SQLite only). Such a value selects nothing."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from tests.admin_pages import action

# The changelist's action form posts `_selected_action` ids; Django filters the queryset by
# pk__in=<the posted values> and the toolkit's action (confirm_and_run / run_for_each) then
# iterates it: "abc" or "1.5" raise ValueError ("Field 'id' expected a number"), and on SQLite
# an id beyond 64 bits raises OverflowError. The toolkit has `row_id` for ids from the address
# and CheckedChangeList for filters, but nothing checks the selected ids.

ACTIONS = [
    ("support", "billing", "outboundemail", "resend"),
    ("support", "coupons", "nonprofitproof", "approve_and_apply"),
    ("finance", "billing", "creditnote", "approve"),
    ("finance", "billing", "taxexemption", "start_review"),
    ("reviewer", "coupons", "acceleratorpartner", "approve"),
    ("reviewer", "startups", "dealrequest", "fulfil"),
    ("reviewer", "startups", "startupapplication", "assign_to_me"),
]


class _Row:
    def __init__(self, pk):
        self.pk = pk


@pytest.mark.parametrize("selected", ["abc", "1.5"])
def test_r5_an_action_on_a_selected_id_that_is_not_a_number_is_no_server_error(
    client, support, selected
):
    """POST /admin/billing/outboundemail/ action=resend&_selected_action=abc answered 500
    (ValueError: Field 'id' expected a number but got 'abc')."""
    client.force_login(support)
    client.raise_request_exception = False
    url = reverse("admin:billing_outboundemail_changelist")
    response = client.post(url, action("resend", _Row(selected)))
    assert response.status_code != 500, (url, response.exc_info[1])


@pytest.mark.parametrize("role,app,model,name", ACTIONS)
def test_r5_an_action_on_an_id_beyond_64_bits_is_no_server_error(
    request, client, db, role, app, model, name
):
    """SQLite only (PostgreSQL finds no such row): OverflowError: Python int too large to
    convert to SQLite INTEGER, from the confirmation page and from the confirmed run alike."""
    user = request.getfixturevalue(role)
    client.force_login(user)
    client.raise_request_exception = False
    url = reverse(f"admin:{app}_{model}_changelist")
    for data in (
        action(name, _Row(2**70)),
        action(name, _Row(2**70), confirm=True, reason="Ticket 1"),
    ):
        response = client.post(url, data)
        assert response.status_code != 500, (connection.vendor, url, response.exc_info[1])


@pytest.mark.parametrize("role", ["support", "reviewer", "finance"])
def test_r5_no_action_of_the_three_apps_answers_500_to_a_selected_id_that_is_no_id(
    request, client, db, role
):
    """The crawl's sweep: every action each role is offered, on every list of the three apps."""
    user = request.getfixturevalue(role)
    client.force_login(user)
    client.raise_request_exception = False
    as_user = RequestFactory().get("/")
    as_user.user = user
    failures = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ("billing", "coupons", "startups"):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for name in model_admin.get_actions(as_user):
            response = client.post(url, action(name, _Row("abc")))
            if response.status_code == 500:
                failures.append(f"{url} action={name}: {response.exc_info[1]!r}")
    assert not failures, "\n".join(failures)


def test_r5_a_row_id_of_5000_digits_is_no_row_id(db):
    """Python reads no more than 4,300 digits as a number: `row_id` raised ValueError."""
    from billing.admin_toolkit import row_id

    assert row_id("9" * 5000) is None and row_id("9" * 19) is None and row_id("42") == 42
