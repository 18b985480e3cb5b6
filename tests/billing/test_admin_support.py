"""R1, R3 in the admin: support's console calls the services and shows their refusals;
reviewers only read; finance voids and approves. Requests go through the real groups."""

from datetime import date, timedelta
from decimal import Decimal as D
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.formatting import day
from billing.models import CreditNote, Invoice, Usage
from tests.admin_pages import action, as_shown, messages_of

from .factories import workspace


def action_url(ws, name):
    return reverse("admin:billing_workspace_action", args=[ws.pk, name])


def test_r1_t2_support_upgrade_without_card_is_not_offered_and_says_why(client, support, today):
    """A Free workspace without a card: the plan page offered Team, took a reason, then said
    a payment method was needed. It says so at once and offers no form; a post changes
    nothing. The service refuses it too, for every other path."""
    ws = workspace(as_of=today)
    client.force_login(support)
    page = client.get(action_url(ws, "plan")).content.decode()
    assert (
        f"{ws.name} is on Free with no payment method on file: moving to Team needs one (T2)."
        in page
    )
    assert 'name="plan"' not in page
    response = client.post(
        action_url(ws, "plan"),
        {"plan": "team:monthly", "reason": "Customer asked, ticket 12"},
        follow=True,
    )
    assert messages_of(response) == []
    with pytest.raises(BillingError, match="A payment method is needed to move from Free"):
        services.change_to_team(ws, as_of=today)
    assert ws.subscriptions.get(ended_on=None).plan.code == "free"


def test_t2_the_status_panel_names_a_card_stored_without_brand_or_digits(client, support, today):
    """T2: a card recorded without its brand or last four digits read "Card " with nothing
    after it; one with a brand only, "Visa " the same."""
    bare = workspace(as_of=today, card=True)
    branded = workspace(as_of=today)
    services.add_payment_method(branded, as_of=today, brand="Visa")
    client.force_login(support)
    for ws, shown in ((bare, "Card on file"), (branded, "Visa card on file")):
        page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
        assert f'<h3>Payment method</h3><div class="value">{shown}</div>' in page


def test_r1_support_adds_card_then_upgrades_and_status_panel_shows_it(client, support, today):
    ws = workspace(as_of=today)
    client.force_login(support)
    client.post(action_url(ws, "payment-method"), {"brand": "Visa", "last4": "4242"})
    response = client.post(
        action_url(ws, "plan"),
        as_shown(
            client,
            action_url(ws, "plan"),
            {"plan": "team:monthly", "reason": "Customer asked, ticket 12"},
        ),
        follow=True,
    )
    said = messages_of(response)
    assert (
        f"{ws.name} started a Team trial ending 24 Feb 2026, then billed monthly: Customer asked, "
        "ticket 12." in said
    )
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert "Team (monthly)" in page and "Trial ends 24 Feb 2026" in page
    assert '<div class="value">Visa •••• 4242</div>' in page
    history = ws.history.first()
    assert (
        history.history_user == support and history.history_change_reason == "Payment method added"
    )


def test_r1_support_bad_card_digits_get_a_form_error(client, support, today):
    ws = workspace(as_of=today)
    client.force_login(support)
    response = client.post(action_url(ws, "payment-method"), {"brand": "Visa", "last4": "42a"})
    assert "Enter the last four digits only" in response.content.decode()
    ws.refresh_from_db()
    assert not ws.has_payment_method


@pytest.mark.parametrize(
    "brand, last4",
    [
        ("", ""),  # "recorded" a card with nothing known about it: T2 then let it move to Team
        ("Visa", ""),
        ("", "4242"),
        ("Visa", "١٢٣٤"),  # Arabic-Indic digits: \d took them
        ("Visa", "4242 "),
    ],
)
def test_t2_a_card_is_recorded_with_its_brand_and_four_digits_0_to_9(
    client, support, today, brand, last4
):
    ws = workspace(as_of=today)
    client.force_login(support)
    response = client.post(action_url(ws, "payment-method"), {"brand": brand, "last4": last4})
    assert response.status_code == 200  # the form again, with its errors
    assert "errorlist" in response.content.decode()
    ws.refresh_from_db()
    assert not ws.has_payment_method and not ws.payment_methods.exists()


def test_t2_the_service_refuses_other_scripts_digits_and_a_long_brand(db, today):
    ws = workspace(as_of=today)
    with pytest.raises(BillingError, match="four digits, 0 to 9"):
        services.add_payment_method(ws, as_of=today, brand="Visa", last4="١٢٣٤")
    with pytest.raises(BillingError, match="at most 20 characters"):
        services.add_payment_method(ws, as_of=today, brand="V" * 21, last4="4242")
    ws.refresh_from_db()
    assert not ws.has_payment_method and not ws.payment_methods.exists()
    services.add_payment_method(ws, as_of=today, brand=" Visa ", last4="4242")
    ws.refresh_from_db()
    assert (ws.card_brand, ws.card_last4) == ("Visa", "4242")


def test_r1_support_records_usage_and_unlocks_with_reason(client, support, today):
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=5000)
    services.run_billing(as_of=date(2026, 2, 1))
    client.force_login(support)
    client.post(action_url(ws, "usage"), {"month": "2026-02", "mtus": "700", "reason": "T1"})
    assert Usage.objects.get(workspace=ws, month=date(2026, 2, 1)).mtus == 700
    response = client.post(action_url(ws, "unlock"), {"reason": ""})
    assert "Say why: the reason is kept in the history." in response.content.decode()
    response = client.post(
        action_url(ws, "unlock"),
        as_shown(client, action_url(ws, "unlock"), {"reason": "Bot traffic, refunded"}),
        follow=True,
    )
    ws.refresh_from_db()
    assert ws.lock == "unlocked" and ws.lock_cause == "Bot traffic, refunded"
    assert f"{ws.name} unlocked: Bot traffic, refunded" in messages_of(response)


def test_f2_f5_the_unlock_page_says_the_strikes_stay_counted(client, support, today):
    """F2, F5: January 2026 over the Free allowance: a strike, locked on 1 February. Unlocked by
    hand on 10 February, the strike stays counted: another month over the allowance within six
    months is a second strike, which stops its data. Walk 6: the page said only "unlock"."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=5000)
    services.run_billing(as_of=date(2026, 2, 1))
    client.force_login(support)
    page = " ".join(client.get(action_url(ws, "unlock")).content.decode().split())
    assert (
        "Its strikes stay counted (F2): 1 in the six months to February 2026. Another month over "
        "the Free allowance locks it again when that month closes, with its data stopped."
    ) in page


def test_t2_t4_support_removes_a_card_with_a_reason(client, support, reviewer, finance, today):
    """D3, T4: support removes the card on file of a workspace on a Team trial (9–22 February
    2026, end date 23 February) from today, with a reason kept in its history; the page says
    what follows. Walk 6: no screen removed a card, so a "delete my card" ticket could not be
    handled. Only who may change a workspace may (R1). (Moved to Team the day before: the day
    of the move, T2 needs the card.)"""
    yesterday = today - timedelta(days=1)
    ws = workspace(as_of=yesterday, card=True)
    services.change_to_team(ws, as_of=yesterday)
    for other in (reviewer, finance):
        client.force_login(other)
        assert client.get(action_url(ws, "remove-card")).status_code == 403
    client.force_login(support)
    change_page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk]))
    assert action_url(ws, "remove-card") in change_page.content.decode()
    page = " ".join(client.get(action_url(ws, "remove-card")).content.decode().split())
    assert "The card on file (Card) is removed from 10 Feb 2026." in page
    assert (
        "Its trial ends on 23 Feb 2026: without a card on file that day it goes back to Free (T4)."
    ) in page
    response = client.post(action_url(ws, "remove-card"), {"reason": ""})
    assert "Say why" in response.content.decode()
    response = client.post(
        action_url(ws, "remove-card"),
        as_shown(client, action_url(ws, "remove-card"), {"reason": "Ticket 5: asked to delete it"}),
        follow=True,
    )
    assert f"Payment method removed from {ws.name}: Ticket 5: asked to delete it." in (
        messages_of(response)
    )
    ws.refresh_from_db()
    assert not ws.has_payment_method
    assert ws.history.first().history_change_reason == (
        "Payment method removed: Ticket 5: asked to delete it"
    )
    # Nothing left to remove: the page says so and offers no form.
    page = client.get(action_url(ws, "remove-card")).content.decode()
    assert f"{ws.name} has no payment method on file." in page and 'name="reason"' not in page


def test_t2_the_remove_card_page_says_first_that_a_removal_today_is_refused(client, support, today):
    """T2, D4 (the third walk): moved from Free to Team today, the workspace needs its card on
    file today. The page offered the form, and only the refusal said so, telling staff to date
    the removal, which the page cannot. It says so first, offers no form, and the refusal
    names the day from which the card can go."""
    ws = workspace(as_of=today - timedelta(days=30), card=True)
    services.change_to_team(ws, as_of=today)
    client.force_login(support)
    page = unescape(" ".join(client.get(action_url(ws, "remove-card")).content.decode().split()))
    assert (
        f"Removing {ws.name}'s payment method dated 10 Feb 2026 is refused: it moved from Free "
        "to Team that day, which needs one on file that day (T2). Remove it on 11 Feb 2026 or "
        "later."
    ) in page
    assert 'name="reason"' not in page
    ws.refresh_from_db()
    assert ws.has_payment_method  # the page's own try left nothing behind


def test_r2_reviewer_reads_workspaces_but_cannot_act(client, reviewer, today):
    ws = workspace(as_of=today, card=True)
    client.force_login(reviewer)
    assert client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).status_code == 200
    for name, data in [
        ("plan", {"plan": "team:monthly"}),
        ("usage", {"month": "2026-01", "mtus": "1", "reason": "T1"}),
    ]:
        assert client.post(action_url(ws, name), data).status_code == 403
    response = client.post(
        reverse("admin:billing_workspace_change", args=[ws.pk]),
        {
            "name": "Renamed",
            "slug": ws.slug,
            "billing_email": ws.billing_email,
            "business_country": "DE",
        },
    )
    assert response.status_code == 403
    assert ws.subscriptions.get(ended_on=None).plan.code == "free"


def test_u2_admin_import_refuses_a_bad_file_whole_and_names_lines(client, support):
    from django.core.files.uploadedfile import SimpleUploadedFile

    workspace(slug="alpha")
    client.force_login(support)
    bad = SimpleUploadedFile("u.csv", b"workspace,month,mtus\nalpha,2026-01,10\nnope,2026-01,3\n")
    response = client.post(reverse("admin:billing_usage_import"), {"file": bad})
    page = response.content.decode()
    assert "Line 3: unknown workspace “nope”." in page
    # Past the first 1,000, every one is in a CSV to download.
    assert (
        "every wrong line is named with its reason: on the page when there are up to 1,000," in page
    )
    assert not Usage.objects.exists()
    good = SimpleUploadedFile("u.csv", b"workspace,month,mtus\nalpha,2026-01,10\n")
    response = client.post(reverse("admin:billing_usage_import"), {"file": good}, follow=True)
    imported = "Usage imported: 1 new figure(s), 0 replaced, 0 unchanged (as on file)."
    assert imported in messages_of(response)


def test_u2_admin_hands_a_large_file_to_a_worker_and_the_page_follows_it(
    client, support, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing import usage_import
    from billing.models import UsageImportJob

    monkeypatch.setattr(usage_import, "INLINE_MAX_BYTES", 10)  # every upload is "large"
    workspace(slug="alpha")
    client.force_login(support)
    bad = SimpleUploadedFile("big.csv", b"workspace,month,mtus\nalpha,2026-01,1\nnope,2026-01,3\n")
    with django_capture_on_commit_callbacks(execute=True):  # the worker runs it (eager)
        response = client.post(reverse("admin:billing_usage_import"), {"file": bad})
    job = UsageImportJob.objects.get()
    assert response.url == reverse("admin:billing_usage_import_job", args=[job.pk])
    page = client.get(response.url).content.decode()
    assert "Nothing was imported: 1 bad line(s)" in page
    assert "Line 3: unknown workspace “nope”." in page
    assert not Usage.objects.exists()
    assert not job.file  # the stored upload is deleted once imported or refused

    good = SimpleUploadedFile("big.csv", b"workspace,month,mtus\nalpha,2026-01,10\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:billing_usage_import"), {"file": good})
    page = client.get(response.url).content.decode()
    assert "Usage imported: 1 new figure(s), 0 replaced, 0 unchanged (as on file)." in page
    assert Usage.objects.get().mtus == 10


def test_u2_the_import_job_page_writes_its_counts_with_separators(
    client, support, monkeypatch, django_capture_on_commit_callbacks
):
    """The job page said "1200 bad line(s)" above "… and 200 more bad line(s)": a count is
    written one way ("1,200"), the file's lines as they were typed."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing import usage_import

    monkeypatch.setattr(usage_import, "INLINE_MAX_BYTES", 10)  # every upload is "large"
    client.force_login(support)
    rows = "".join(f"nope{n},2026-01,3\n" for n in range(1_200))
    bad = SimpleUploadedFile("big.csv", f"workspace,month,mtus\n{rows}".encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:billing_usage_import"), {"file": bad})
    page = client.get(response.url).content.decode()
    assert "Nothing was imported: 1,200 bad line(s)" in page
    assert "… and 200 more bad line(s): only the first 1,000 are listed." in page
    assert "Line 2: unknown workspace “nope0”." in page


def test_u2_the_import_job_page_follows_the_job_while_it_waits_and_needs_the_permission(
    client, support, reviewer, monkeypatch
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing import usage_import
    from billing.models import UsageImportJob

    monkeypatch.setattr(usage_import, "INLINE_MAX_BYTES", 10)
    client.force_login(support)
    upload = SimpleUploadedFile("big.csv", b"workspace,month,mtus\nalpha,2026-01,1\n")
    response = client.post(reverse("admin:billing_usage_import"), {"file": upload})
    job = UsageImportJob.objects.get()  # no commit in this test: the worker never got it
    assert job.status == "queued"
    page = client.get(response.url).content.decode()
    # Its status is fetched again in place (tests/e2e/test_accessibility_browser.py); a page
    # without script reloads itself.
    assert "billing/follow_job.js" in page and 'id="job-status" role="status"' in page
    assert '<noscript><meta http-equiv="refresh"' in page and "Waiting for a worker" in page
    client.force_login(reviewer)
    assert client.get(response.url).status_code == 403
    job.file.delete()


def test_workspace_list_query_count_does_not_grow_with_the_page(client, support):
    client.force_login(support)
    url = reverse("admin:billing_workspace_changelist")

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(3):
        workspace(plan="team", card=True)
    few = queries()
    for _ in range(30):
        workspace()
    assert queries() == few
    filtered = client.get(
        url, {"plan": "team", "trialing": "yes", "lock": "unlocked", "q": "Workspace"}
    )
    assert filtered.status_code == 200 and filtered.context["cl"].result_count == 3


def test_i3_finance_voids_through_the_admin_support_cannot(client, support, finance, pin_today):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 15))
    pin_today(date(2026, 1, 16))  # D2, D4: a void is dated the day after the clock's
    invoice = Invoice.objects.get()
    url = reverse("admin:billing_invoice_void", args=[invoice.pk])
    client.force_login(support)
    assert client.post(url, {"reason": "x"}).status_code == 403
    client.force_login(finance)
    voided = client.post(
        url, as_shown(client, url, {"reason": "Customer never activated"}), follow=True
    )
    invoice.refresh_from_db()
    assert invoice.status == "void"
    assert messages_of(voided) == [f"{invoice.number} ($1,440.00) voided: Customer never activated"]
    change = client.post(reverse("admin:billing_invoice_change", args=[invoice.pk]), {})
    assert change.status_code == 403  # never edited
    assert (
        client.post(reverse("admin:billing_invoice_delete", args=[invoice.pk])).status_code == 403
    )


def test_k3_support_requests_and_finance_approves_in_the_admin(client, support, finance):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 15))
    invoice = Invoice.objects.get()
    client.force_login(support)
    url = reverse("admin:billing_invoice_credit_note", args=[invoice.pk])
    response = client.post(
        url, as_shown(client, url, {"amount": "1500.00", "reason": "Too much"}), follow=True
    )
    assert "at most $1,440.00" in " ".join(messages_of(response))
    # An amount is typed in full: "1,000" is not read as 1000, nor "1e3" as 1000.00.
    for typed, refusal in (
        ("1,000", "Enter the amount as a plain number without thousands separators, e.g. 1000.00."),
        ("1e3", "Write the number in full, e.g. 1000.00, not “1e3”."),
    ):
        page = client.post(
            reverse("admin:billing_invoice_credit_note", args=[invoice.pk]),
            {"amount": typed, "reason": "Typo"},
        ).content.decode()
        assert refusal in page, typed
        # Kept as typed, in a text box (a number box came back empty: the third walk).
        assert f'type="text" name="amount" value="{typed}" inputmode="decimal"' in page, typed
    assert not CreditNote.objects.exists()
    client.post(url, as_shown(client, url, {"amount": "440.00", "reason": "Seat count wrong"}))
    note = CreditNote.objects.get()
    changelist = reverse("admin:billing_creditnote_changelist")
    client.post(changelist, action("approve", note))
    note.refresh_from_db()
    assert note.status == "requested"  # support cannot approve
    client.force_login(finance)
    page = client.post(changelist, action("approve", note))
    assert "Yes, approve credit notes" in page.content.decode()  # a confirmation first
    note.refresh_from_db()
    assert note.status == "requested"
    client.post(changelist, action("approve", note, confirm=True))
    note.refresh_from_db()
    assert (note.status, note.decided_by) == ("approved", finance)
    assert services.refundable_amount(invoice) == D("1000.00")


def test_k2_k4_the_plan_pages_say_what_happens_to_an_annual_term(client, support, today):
    """Support reads these messages back to customers: an annual term runs to its end (K2, K4),
    so "cancelled to Free" or "interval set to monthly" said what had not happened."""
    from .factories import paid_annual

    ws = paid_annual(as_of=today)
    last_day = day(ws.subscriptions.get(ended_on=None).term_end - timedelta(days=1))
    client.force_login(support)

    def post(name, data):
        url = action_url(ws, name)
        return messages_of(client.post(url, as_shown(client, url, data), follow=True))

    said = post("plan", {"plan": "free", "reason": "Ticket 1"})
    assert f"{ws.name}'s annual term runs to {last_day}, then Free: Ticket 1." in said
    said = post("plan", {"plan": "team:monthly", "reason": "Ticket 2"})
    withdrawn = f"{ws.name}'s cancellation withdrawn: annual term to {last_day}, then monthly"
    assert f"{withdrawn}: Ticket 2." in said
    said = post("interval", {"interval": "annual", "reason": "Ticket 3"})
    assert f"{ws.name}'s annual term runs to {last_day}, then it renews: Ticket 3." in said
    said = post("interval", {"interval": "monthly", "reason": "Ticket 4"})
    assert f"{ws.name}'s annual term runs to {last_day}, then monthly billing: Ticket 4." in said
    sub = ws.subscriptions.get(ended_on=None)
    assert (sub.interval, sub.switch_to_monthly_at_term_end, sub.cancel_at_term_end) == (
        "annual",
        True,
        False,
    )


def test_r1_the_workspace_page_leads_to_the_emails_sent_to_it(client, support, reviewer, today):
    """Walk 6: "what was the customer sent?" had no way from the workspace's page to the email
    log. It links to the log of the workspace's billing addresses (walk 9: every one it has
    had), for who may read the log (support and finance; not reviewers, R2)."""
    ws = workspace(as_of=today, card=True, billing_email="ops@acme.example")
    emails = reverse("admin:billing_outboundemail_changelist") + f"?workspace={ws.pk}"
    page = reverse("admin:billing_workspace_change", args=[ws.pk])
    client.force_login(support)
    assert f'href="{emails}"' in client.get(page).content.decode()
    client.force_login(reviewer)
    assert "admin/billing/outboundemail" not in client.get(page).content.decode()
