"""A workspace (or partner) picker posted with a value that is no row id — `workspace=abc`, by
hand or a tampered form — answered 500 on the startup application's approve page, its change
form (the link page) and the add forms with a workspace picker: Django's AutocompleteSelect
looks the value up to draw the form again (ValueError on "abc"/"1.5", OverflowError on SQLite
for 23 digits). Every picker is `admin_toolkit.CheckedAutocomplete` now: the form says the
choice is not valid."""

from datetime import date

import pytest
from django.urls import reverse

from tests.startups.factories import application

NO_IDS = ["abc", "1.5", "9" * 23]


@pytest.fixture
def open_application(db):
    return application(company_name="Still Open", as_of=date(2026, 1, 7))


@pytest.mark.parametrize("value", NO_IDS)
def test_s3_the_approve_page_refuses_a_workspace_that_is_no_id(
    client, reviewer, open_application, today, value
):
    client.force_login(reviewer)
    client.raise_request_exception = False
    url = reverse("admin:startups_application_action", args=[open_application.pk, "approve"])
    response = client.post(url, {"workspace": value, "note": ""})
    assert response.status_code == 200
    assert "workspace" in response.context["form"].errors
    open_application.refresh_from_db()
    assert open_application.is_open


@pytest.mark.parametrize("field", ["workspace", "partner"])
@pytest.mark.parametrize("value", NO_IDS)
def test_s1_the_link_form_refuses_a_workspace_or_partner_that_is_no_id(
    client, reviewer, open_application, today, field, value
):
    client.force_login(reviewer)
    client.raise_request_exception = False
    url = reverse("admin:startups_startupapplication_change", args=[open_application.pk])
    data = {"workspace": "", "partner": "", "change_reason": "ticket 1", "_save": "Save"}
    response = client.post(url, {**data, field: value})
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors


@pytest.mark.parametrize(
    "model_url, role",
    [
        ("billing/taxexemption", "support"),
        ("billing/taxexemption", "finance"),
        ("coupons/nonprofitproof", "support"),
        ("startups/startupapplication", "reviewer"),
    ],
)
def test_r1_r3_add_forms_refuse_a_workspace_that_is_no_id(
    db, client, request, today, model_url, role
):
    # `db` named here: the role's user comes from getfixturevalue, which pytest-django cannot
    # see when it orders the database tests before the transactional ones.
    client.force_login(request.getfixturevalue(role))
    client.raise_request_exception = False
    response = client.post(f"/admin/{model_url}/add/", {"workspace": "abc", "_save": "Save"})
    assert response.status_code == 200
