"""R4, R5, R1–R3: a workspace's history page shows every change kept about the workspace and
the rows that belong to it (subscriptions, usage, invoices, coupons received, its startup
application), with who, when and why; each role sees the kinds it may read; nothing on it
writes."""

import re
from datetime import date

import pytest
from django.urls import reverse

from billing import services
from billing.models import Invoice, Subscription, Workspace
from coupons import services as coupons
from coupons.models import Redemption
from tests.billing.factories import workspace
from tests.coupons.factories import coupon

JAN_5, FEB_2 = date(2026, 1, 5), date(2026, 2, 2)


@pytest.fixture
def acme(db, support, finance):
    """Acme (T1–T2, K4, C2, U1, I3): on Team from 5 January with a card, billed annually from
    2 February, a 10 % coupon applied that day, January's usage reported, each by support with
    a ticket number; finance voided the final invoice K4 issued."""
    ws = workspace(as_of=JAN_5, name="Acme", card=True)
    services.change_to_team(
        ws, interval="monthly", as_of=JAN_5, by=support, reason="Ticket 7: wants Team"
    )
    code = coupon(percent_off="10", duration="forever").code
    coupons.redeem_coupon(ws, code, by=support, as_of=FEB_2, reason="Ticket 8: spring offer")
    services.change_interval(
        ws, interval="annual", as_of=FEB_2, by=support, reason="Ticket 9: pays yearly"
    )
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_345, as_of=FEB_2)
    final = Invoice.objects.get(workspace=ws, kind="final")
    services.void_invoice(final, by=finance, reason="Ticket 10: billed twice", as_of=FEB_2)
    return Workspace.objects.get(pk=ws.pk)


def history(client, ws, **params):
    url = reverse("admin:billing_workspace_history", args=[ws.pk])
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def rows(body):
    """The timeline's rows as text, newest first."""
    table = body.split('id="change-history"')[1].split("</table>")[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in table.split("<tr>")[2:]]


def test_r4_the_history_shows_who_changed_the_plan_the_interval_and_the_coupon_and_why(
    client, support, acme, today
):
    """Walk 4: "who moved Acme to annual, and why?" was in the subscriptions' own history,
    which nothing on the workspace's page reached."""
    client.force_login(support)
    entries = rows(history(client, acme))
    text = "\n".join(entries)
    for reason in ("Ticket 7: wants Team", "Ticket 8: spring offer", "Ticket 9: pays yearly"):
        assert reason in text
    # The annual subscription that K4 started on 2 February, and the monthly one it ended.
    assert any(
        "Subscription: Acme: Team" in row and "Created" in row and "Ticket 9" in row
        for row in entries
    )
    assert any("Redemption: " in row and "Ticket 8" in row for row in entries)
    assert any("Usage:" in row and "12,345 MTUs" in row for row in entries)
    # Who: the signed-in agent, not "the system".
    assert all(support.username in row for row in entries if re.search("Ticket [789]:", row))


def test_r4_a_change_lists_what_changed_in_words(client, support, acme, today):
    """K4 ends the monthly subscription on 2 February: its entry says so, by the field's label
    and the day as pages write it."""
    client.force_login(support)
    monthly = Subscription.objects.get(workspace=acme, plan__code="team", interval="monthly")
    entries = rows(history(client, acme, kind="subscription"))
    changed = [row for row in entries if "billed monthly" in row and "Ended on" in row]
    assert len(changed) == 1, entries
    assert "End reason: — → Billing interval changed Ended on: — → 2 Feb 2026" in changed[0]
    assert "Ticket 9: pays yearly" in changed[0]
    assert all("Subscription: Acme" in row for row in entries)
    assert not any("Redemption:" in row for row in entries)  # the filter holds
    assert monthly.history.count() >= 2


def test_r4_u1_each_version_is_named_as_it_was_kept(client, support, acme, today):
    """The usage import audit: January's figure reported at 610, then 11,111, then 33,333 was
    listed three times as "Usage: … 2026-01: 33,333 MTUs" (each version named by the row as it
    is now): the first entry read as if 33,333 had been recorded first."""
    february = date(2026, 2, 1)
    for mtus in (610, 11_111, 33_333):
        services.record_usage(acme, month=february, mtus=mtus, as_of=FEB_2)
    client.force_login(support)
    entries = [row for row in rows(history(client, acme, kind="usage")) if "2026-02" in row]
    named = [re.search(r"2026-02: ([\d,]+) MTUs", row).group(1) for row in entries]
    assert named == ["33,333", "11,111", "610"]  # newest first


def test_r4_i3_a_void_says_what_it_changed_since_the_invoice_was_issued(
    client, finance, acme, today
):
    """An invoice a change issues keeps its first version then, by who made the change and
    why (the history audit: it had none until voided); a void (I3, the only change an issued
    invoice takes) lists what it changed since, as any other entry does (walk 5: "Changed",
    with no fields). The month close's, written in bulk, get theirs at the void
    (`test_i3_finance_voids_with_a_reason_and_the_invoice_is_otherwise_untouched`)."""
    client.force_login(finance)
    entries = rows(history(client, acme, kind="invoice"))
    assert len(entries) == 3, entries
    voided, *issued = entries  # newest first; K4's final and annual invoices, issued at once
    for number in ("INV-2026-000001", "INV-2026-000002"):
        assert any(
            f"Invoice: {number} Created support Issued: Billing interval changed: Ticket 9: "
            "pays yearly" in entry
            for entry in issued
        ), issued
    assert "Status: Issued → Void" in voided
    assert "Voided on: — → 2 Feb 2026" in voided
    assert "Ticket 10: billed twice" in voided
    final = Invoice.objects.get(workspace=acme, kind="final")
    first = final.history.earliest("history_date")
    assert (first.history_type, first.status, first.history_date) == (
        "+",
        "issued",
        final.created_at,
    )


def test_r4_every_entry_opens_its_version_read_only(client, support, acme, today):
    client.force_login(support)
    body = history(client, acme)
    links = re.findall(r'<td><a href="([^"]+/history/\d+/)">', body)
    assert len(links) == len(rows(body)) >= 6
    before = (Redemption.history.count(), Subscription.history.count())
    for link in links:
        version = client.get(link)
        assert version.status_code == 200, link
        # Days as every page writes them (walk 5: "2026-12-05 03:46 UTC" beside "5 Dec 2026").
        assert re.search(r" on \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d UTC", version.content.decode())
        assert client.post(link, {"reason": "tamper"}).status_code == 405, link
    assert (Redemption.history.count(), Subscription.history.count()) == before


def test_r2_r3_each_role_sees_the_kinds_of_rows_it_may_read(
    client, support, reviewer, finance, acme, today
):
    """R2: reviewers read workspaces, their subscriptions and usage, not invoices; R3: finance
    reads invoices."""
    void = "Ticket 10: billed twice"
    client.force_login(finance)
    text = "\n".join(rows(history(client, acme)))
    assert re.search(f"Invoice: INV-2026-000001 Changed .+ {finance.username} Voided: {void}", text)
    client.force_login(reviewer)
    body = history(client, acme)
    assert void not in body and "Invoice:" not in body
    assert "Ticket 9: pays yearly" in body and "Usage:" in body  # R2 reads both
    client.force_login(support)
    assert void in history(client, acme)  # R1: support reads invoices


def test_r5_the_history_page_writes_nothing_and_refuses_strangers(
    client, support, django_user_model, acme, today
):
    client.force_login(support)
    before = Subscription.history.count()
    response = client.post(reverse("admin:billing_workspace_history", args=[acme.pk]), {"x": "1"})
    assert response.status_code == 405  # the second attacker's walk: it answered 200
    assert Subscription.history.count() == before
    invoice = acme.invoices.get(kind="final")
    response = client.post(reverse("admin:billing_invoice_history", args=[invoice.pk]), {"x": "1"})
    assert response.status_code == 405
    assert client.get("/admin/billing/workspace/abc/history/").status_code == 404
    assert client.get(reverse("admin:billing_workspace_history", args=[10**9])).status_code == 404
    nobody = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(nobody)
    assert client.get(reverse("admin:billing_workspace_history", args=[acme.pk])).status_code == 403


def test_r4_s2_the_startup_application_and_its_credits_are_in_the_history(client, reviewer, today):
    """The apps above billing add their rows (billing.hooks): an application's versions from
    before it was linked (submitted on 10 January) as well as its approval on 20 January, and
    the $25,000.00 grant (CR1) the approval made."""
    from startups import services as startups
    from startups.models import StartupApplication
    from tests.startups.factories import application

    ws = workspace(as_of=date(2026, 1, 2), card=True, name="Nimbus", slug="nimbus")
    app = application(company_name="Nimbus Labs", workspace=ws, as_of=date(2026, 1, 10))
    startups.approve_application(
        StartupApplication.objects.get(pk=app.pk),
        by=reviewer,
        note="Meets E1-E3",
        as_of=date(2026, 1, 20),
        credits_scope_confirmed=True,
    )
    client.force_login(reviewer)
    entries = rows(history(client, ws, kind="startupapplication"))
    assert len(entries) == 2
    # Each version named as it was: submitted when created, approved by the decision.
    assert "Startup application: Nimbus Labs (Submitted) Created the system Submitted" in entries[1]
    assert "Startup application: Nimbus Labs (Approved)" in entries[0]
    assert "Status: Submitted → Approved" in entries[0]
    assert "Decided on: — → 20 Jan 2026 Decision note: — → Meets E1-E3" in entries[0]
    assert entries[0].endswith(f"{reviewer.username} Approved: Meets E1-E3")
    everything = "\n".join(rows(history(client, ws)))
    assert "Credit grant: Year 1 credit for nimbus: $25,000.00 Created" in everything
