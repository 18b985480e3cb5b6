"""T2, K4 on support's workspace pages: a page offers only what the service would do, says why
it offers nothing, and links to the page that would help."""

from html import unescape

import pytest
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from tests.admin_pages import messages_of

from .factories import workspace


def action_url(ws, name):
    return reverse("admin:billing_workspace_action", args=[ws.pk, name])


def page_of(client, url) -> str:
    return unescape(client.get(url).content.decode())


def test_t2_the_plan_page_without_a_card_links_to_adding_one(client, support, today):
    ws = workspace(as_of=today)
    client.force_login(support)
    page = page_of(client, action_url(ws, "plan"))
    assert "Add a payment method first" in page
    assert f'href="{action_url(ws, "payment-method")}"' in page


def test_t2_the_plan_page_of_a_free_workspace_with_a_card_offers_only_team(client, support, today):
    """It offered "Free (cancel or downgrade)", which the service refused: already on Free."""
    ws = workspace(as_of=today, card=True)
    client.force_login(support)
    page = page_of(client, action_url(ws, "plan"))
    assert 'value="team:monthly"' in page and 'value="team:annual"' in page
    assert 'value="free"' not in page


def test_k4_the_interval_page_of_a_free_workspace_says_there_is_no_interval(client, support, today):
    ws = workspace(as_of=today, card=True)
    client.force_login(support)
    page = page_of(client, action_url(ws, "interval"))
    assert f"{ws.name} is on Free: only a Team subscription has a billing interval" in page
    assert 'name="interval"' not in page
    assert f'href="{action_url(ws, "plan")}"' in page


def test_k4_choosing_the_interval_a_trial_already_continues_with_is_refused(client, support, today):
    """It said "trial will continue as annual Team: again" and kept a history entry."""
    ws = workspace(as_of=today, plan="team", interval="annual")
    entries = ws.subscriptions.get(ended_on=None).history.count()
    with pytest.raises(BillingError, match="trial already continues as annual Team"):
        services.change_interval(ws, interval="annual", as_of=today)
    client.force_login(support)
    response = client.post(
        action_url(ws, "interval"), {"interval": "annual", "reason": "Asked again"}, follow=True
    )
    assert any("already continues as annual" in m for m in messages_of(response))
    assert ws.subscriptions.get(ended_on=None).history.count() == entries


def test_r5_an_unknown_workspace_page_is_not_found(client, support, today):
    ws = workspace(as_of=today)
    client.force_login(support)
    assert client.get(action_url(ws, "delete-everything")).status_code == 404


def test_t3_the_status_line_writes_the_trial_end_as_a_day(client, support, today):
    ws = workspace(as_of=today, plan="team")
    client.force_login(support)
    trial_end = ws.subscriptions.get(ended_on=None).trial_end
    page = page_of(client, action_url(ws, "interval"))
    assert f"trial ends {trial_end.day} {trial_end:%b %Y}" in page


@pytest.mark.parametrize(
    "typed, said",
    [
        ("١٢٣", "Enter a whole number in the digits 0–9, e.g. 12500."),
        ("１２３", "Enter a whole number in the digits 0–9, e.g. 12500."),
        ("12,500", "Enter the number without thousands separators, e.g. 12500."),
    ],
)
def test_u1_usage_is_typed_in_the_digits_0_to_9(client, support, today, typed, said):
    """The page recorded "١٢٣" as 123 MTUs, while the import refuses it."""
    ws = workspace(as_of=today)
    client.force_login(support)
    page = client.post(action_url(ws, "usage"), {"month": "2026-02", "mtus": typed})
    assert said in unescape(page.content.decode())
    assert not ws.usage.exists()
    client.post(action_url(ws, "usage"), {"month": "2026-02", "mtus": " 12500 "})
    assert ws.usage.get().mtus == 12_500
