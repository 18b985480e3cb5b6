"""T2, K4 on support's workspace pages: a page offers only what the service would do, says why
it offers nothing, and links to the page that would help."""

import re
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from tests.admin_pages import as_shown, messages_of

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
    url = action_url(ws, "interval")
    response = client.post(
        url, as_shown(client, url, {"interval": "annual", "reason": "Asked again"}), follow=True
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
    page = client.post(action_url(ws, "usage"), {"month": "2026-02", "mtus": typed, "reason": "T1"})
    assert said in unescape(page.content.decode())
    assert not ws.usage.exists()
    client.post(action_url(ws, "usage"), {"month": "2026-02", "mtus": " 12500 ", "reason": "T1"})
    assert ws.usage.get().mtus == 12_500


def text_of(page: str) -> str:
    return re.sub(r"<[^>]+>", "", page)


def effects_of(page: str) -> dict[str, list[str]]:
    """The plan or interval page's "What each choice does today": label → its sentences."""
    block = page.split('<dl class="choice-effects">')[1].split("</dl>")[0]
    effects = {}
    for item in block.split("<dt>")[1:]:
        label = item.split("<strong>")[1].split("</strong>")[0]
        effects[label] = [li.split("</li>")[0] for li in item.split("<li>")[1:]]
    return effects


def test_k4_k1_k2_the_interval_page_says_what_each_choice_does_with_its_figures(
    client, support, today
):
    """K4 on 10 Feb 2026 for monthly Team paid since 1 Jan (Oregon, no tax): annual issues
    K1's final invoice for 1–9 Feb, 120 × 9/28 = 38.57, and the annual invoice of 1,440.00,
    then a term 10 Feb 2026 – 9 Feb 2027; monthly is refused as the service refuses it.
    Nothing the page worked out is kept."""
    from .factories import paid_monthly

    ws = paid_monthly(date(2026, 1, 1))
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    client.force_login(support)
    page = page_of(client, action_url(ws, "interval"))
    assert "Now: Team (monthly); lock: Unlocked; payment method: on file." in text_of(page)
    effects = effects_of(page)
    assert effects["Annual"] == [
        "A final invoice of $38.57 dated 10 Feb 2026 is issued at once.",
        "An annual invoice of $1,440.00 dated 10 Feb 2026 is issued at once.",
        "Annual term 10 February 2026 – 9 February 2027, then it renews with a new annual "
        "invoice (K2).",
        # Walk 6: nothing said the move cannot be undone the same way.
        "Going back to monthly billing then takes effect only when the term ends, on "
        "10 Feb 2027; the annual invoice is refunded only by a credit note finance approves "
        "(K4, K3).",
    ]
    assert effects["Monthly"][0].startswith("Refused: ")
    assert ws.invoices.count() == 1  # January's, from the close
    assert ws.subscriptions.get(ended_on=None).interval == "monthly"


def test_k2_cancelling_a_term_begun_today_says_nothing_of_going_back_to_monthly(
    client, support, today
):
    """K2, K4 (walk 9): monthly Team since 1 Jan moved to annual today, 10 Feb 2026 (term
    10 Feb 2026 – 9 Feb 2027). The plan page's Free (a cancellation at the term's end) also
    said "Going back to monthly billing then takes effect only when the term ends", a sentence
    about starting a term, not about ending one."""
    from .factories import paid_monthly

    ws = paid_monthly(date(2026, 1, 1))
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    services.change_interval(ws, interval="annual", as_of=today)
    client.force_login(support)
    effects = effects_of(page_of(client, action_url(ws, "plan")))
    assert effects["Free (cancel or downgrade)"] == [
        "No invoice is issued now.",
        "Annual term 10 February 2026 – 9 February 2027, then Free (K2).",
    ]


def test_t1_t3_t5_f7_the_plan_page_of_a_trial_says_what_each_choice_does(client, support, today):
    """T1, T3: a Free workspace with a card that never had Team gets the 14-day trial,
    10–23 Feb 2026 (24 Feb its end date). During it (T5), Free costs nothing; and a
    workspace the trial unlocked goes back to its lock (F7)."""
    ws = workspace(as_of=today, card=True)
    client.force_login(support)
    effects = effects_of(page_of(client, action_url(ws, "plan")))
    assert effects["Team, billed monthly"] == [
        "No invoice is issued now.",
        "A 14-day Team trial runs 10 – 23 February 2026 (T1, T3); on 24 Feb 2026 it continues "
        "as Team, billed monthly, with a card on file, or goes back to Free without one (T4).",
    ]
    assert effects["Team, billed annually"][1].startswith(
        "A 14-day Team trial runs 10 – 23 February 2026 (T1, T3); on 24 Feb 2026 it continues "
        "as Team, billed annually,"
    )
    services.change_to_team(ws, interval="monthly", as_of=today)
    effects = effects_of(page_of(client, action_url(ws, "plan")))
    assert effects["Free (cancel or downgrade)"] == [
        "No invoice is issued now.",
        "It is on Free from 10 Feb 2026.",
    ]


def test_w1_k1_a_close_confirmed_on_an_old_page_runs_nothing_and_shows_the_new_invoice(
    client, support, today
):
    """W1, K1: the close page showed a final invoice of 38.57 (1–9 Feb 2026, 120 × 9/28).
    20,000 MTUs recorded for February meanwhile make it 38.57 + 100.00 = 138.57. The old page's
    confirmation closes nothing and shows $138.57; confirming that page closes it."""
    from .factories import paid_monthly

    ws = paid_monthly(date(2026, 1, 1))
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    url = reverse("admin:billing_workspace_close", args=[ws.pk])
    client.force_login(support)
    shown = client.get(url)
    assert "$38.57" in shown.content.decode()
    digest = shown.context["shown_digest"]
    services.record_usage(ws, month=date(2026, 2, 1), mtus=20_000)
    stale = client.post(url, {"reason": "Customer asked, ticket 9", "shown": digest})
    assert f"{ws} changed since this page was opened" in messages_of(stale)[0]
    assert "$138.57" in stale.content.decode()
    ws.refresh_from_db()
    assert ws.closed_on is None and ws.invoices.count() == 1
    fresh = stale.context["shown_digest"]
    assert fresh != digest
    done = client.post(url, {"reason": "Customer asked, ticket 9", "shown": fresh}, follow=True)
    ws.refresh_from_db()
    assert ws.closed_on == today
    assert ws.invoices.get(kind="final").total == Decimal("138.57")
    assert f"{ws.name} closed: Customer asked, ticket 9" in messages_of(done)[0]


def test_w1_k1_a_close_posted_without_the_pages_digest_runs_nothing(client, support, today):
    """W1, K1: a confirmation that does not say what page it came from (a crafted POST, or a
    form from before pages carried their digest) is an old page: it closes nothing and shows
    the final invoice of $38.57 (1–9 Feb 2026, 120 × 9/28) to be confirmed."""
    from .factories import paid_monthly

    ws = paid_monthly(date(2026, 1, 1))
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    url = reverse("admin:billing_workspace_close", args=[ws.pk])
    client.force_login(support)
    blind = client.post(url, {"reason": "Customer asked, ticket 9"})
    assert f"{ws} changed since this page was opened" in messages_of(blind)[0]
    assert "$38.57" in blind.content.decode()
    ws.refresh_from_db()
    assert ws.closed_on is None and ws.invoices.count() == 1


def test_w1_the_reopen_page_says_what_stays_ended(client, support, today):
    """W1: reopening brings the workspace back on Free, unlocked; the discount and credit the
    closure ended stay ended, and no second trial (T1) if it ever had Team."""
    ws = workspace(as_of=today)
    services.close_workspace(ws, by=support, reason="Asked", as_of=today)
    client.force_login(support)
    page = text_of(page_of(client, reverse("admin:billing_workspace_reopen", args=[ws.pk])))
    assert f"Reopening {ws.name} (closed on 10 Feb 2026) does this" in page
    assert "its discount and its unused startup credit do not come back" in page
    usage_page = page_of(client, action_url(ws, "usage"))
    assert f'href="{reverse("admin:billing_workspace_reopen", args=[ws.pk])}"' in usage_page


def test_k2_k4_the_panel_and_the_pages_say_what_follows_an_annual_term(client, support, today):
    """K2, K4: an annual term paid on 1 Jan 2026 runs to 31 Dec 2026 (its invoice's period).
    Moved to monthly at its end, the panel and the action pages say "then monthly";
    cancelled, "then Free (cancelled)"."""
    from .factories import paid_annual

    ws = paid_annual(date(2026, 1, 1))
    client.force_login(support)
    change = reverse("admin:billing_workspace_change", args=[ws.pk])
    assert "Annual term to 31 Dec 2026, then it renews" in text_of(page_of(client, change))
    services.change_interval(ws, interval="monthly", as_of=today)
    assert "Annual term to 31 Dec 2026, then monthly" in text_of(page_of(client, change))
    now = text_of(page_of(client, action_url(ws, "plan")))
    assert "Now: Team (annual), annual term to 31 Dec 2026, then monthly; lock: Unlocked" in now
    services.change_to_free(ws, as_of=today)
    assert "Annual term to 31 Dec 2026, then Free (cancelled)" in text_of(page_of(client, change))


def test_k4_the_subscription_list_gives_free_no_interval(client, support, today):
    """K4: only Team has a billing interval; the list said "Free, monthly"."""
    from .factories import paid_annual

    paid_annual(date(2026, 1, 1), slug="yearly")
    client.force_login(support)
    page = text_of(page_of(client, reverse("admin:billing_subscription_changelist") + "?q=yearly"))
    assert "Team, billed annually" in page
    assert re.search(r"\bFree\b(?!,)", page) and "Free, monthly" not in page


def test_k4_f4_the_change_message_names_the_invoices_issued_and_the_lock_lifted(
    client, support, today
):
    """K4 on 10 Feb 2026: monthly Team paid since 1 Jan moves to annual; the message names the
    final invoice (38.57, 1–9 Feb) and the annual one (1,440.00). F4: a locked Free workspace
    with a card that moves to Team is unlocked, and the message says so."""
    from billing.locks import set_lock
    from billing.models import Lock

    from .factories import paid_monthly

    ws = paid_monthly(date(2026, 1, 1), name="Acme")
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    client.force_login(support)
    said = messages_of(
        client.post(
            action_url(ws, "interval"),
            as_shown(
                client, action_url(ws, "interval"), {"interval": "annual", "reason": "Ticket 7"}
            ),
            follow=True,
        )
    )
    final, annual = ws.invoices.filter(issue_date=today).order_by("pk")
    assert said == [
        "Acme is now on Team, billed annually: Ticket 7."
        f" Issued final invoice {final.number}, $38.57."
        f" Issued annual invoice {annual.number}, $1,440.00."
    ]
    locked = workspace(as_of=date(2026, 2, 2), card=True, name="Beta")
    set_lock(locked, Lock.LOCKED, cause="free_limit", as_of=date(2026, 2, 2))  # set up
    said = messages_of(
        client.post(
            action_url(locked, "plan"),
            as_shown(
                client, action_url(locked, "plan"), {"plan": "team:monthly", "reason": "Ticket 8"}
            ),
            follow=True,
        )
    )
    assert said[0].endswith("Ticket 8. Its lock is now “Unlocked”.")


def test_k2_a_cancellation_sent_again_after_a_colleague_withdrew_it_changes_nothing(
    client, support, today
):
    """K2: support cancels an annual term at its end (ticket 1); a colleague withdraws the
    cancellation; support's browser sends the first page again. The status reads as it did
    when that page was opened, so the replay cancelled the term again (the run-twice walk).
    The page's digest carries the plan's last recorded change: the replay does nothing."""
    from .factories import paid_annual

    ws = paid_annual(date(2026, 1, 1))
    client.force_login(support)
    url = action_url(ws, "plan")
    digest = client.get(url).context["shown_digest"]
    sent = {"plan": "free", "reason": "Ticket 1", "shown": digest}
    client.post(url, sent)
    assert ws.subscriptions.get(ended_on=None).cancel_at_term_end
    services.change_to_team(ws, interval="annual", as_of=today, reason="Ticket 2")
    assert not ws.subscriptions.get(ended_on=None).cancel_at_term_end
    replayed = client.post(url, sent)
    assert f"{ws} changed since this page was opened" in messages_of(replayed)[-1]
    assert not ws.subscriptions.get(ended_on=None).cancel_at_term_end
