"""The email walk: every kind of email the back office sends, produced through the services and
read as its recipient reads it (the workspace's billing contact, the applicant, the program's
contact): its figures against the database and the SPEC, its subject, both parts, greeting,
recipient and sender.

Four findings were fixed with it (each test's docstring says what the email said): a closure on
the 1st said nothing of the monthly plan, a closure's final invoice covered "the paid days before
today" (resent a week later, still "today"), an acceptance pointed at partner deals "below" when
none were listed, and the first lock email left out that a month within the limit unlocks it
(F3). A campaign's repeating coupon now lasts "for 3 months"."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail

from billing import services
from billing.emails import resend_email
from billing.formatting import EMAIL_KINDS
from billing.models import Invoice, LockEvent, OutboundEmail, Plan, PlanTerms, Strike
from coupons import services as coupons
from coupons.models import CreditGrant
from startups import services as startups
from startups.models import PartnerDeal
from tests.billing.factories import paid_annual, paid_monthly, workspace
from tests.coupons.factories import coupon
from tests.startups.factories import application

# Customer-supplied text with everything an email can get wrong: an apostrophe and an ampersand
# (HTML entities in the text part), and markup (unescaped in the HTML part).
TRICKY = "O'Brien & Sons <b>Acme</b>"
ESCAPED = "O&#x27;Brien &amp; Sons &lt;b&gt;Acme&lt;/b&gt;"


def html_of(message) -> str:
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    return html


def words(text: str) -> str:
    """The text with its line breaks and runs of spaces read as one space (the text part wraps
    its sentences)."""
    return " ".join(text.split())


def to(address: str) -> list:
    """The messages sent to `address`, in the order they left."""
    return [m for m in mail.outbox if m.to == [address]]


def the_one(address: str, subject_part: str):
    [message] = [m for m in to(address) if subject_part in m.subject]
    return message


def read_like_a_recipient(message):
    """What every email must be, whatever its kind: one line of subject, no template leftovers,
    no HTML entity in the text part and no raw markup from data in the HTML part, no link."""
    assert "\n" not in message.subject and "\r" not in message.subject
    assert 0 < len(message.subject) <= 255, message.subject
    html = html_of(message)
    for part in (message.subject, message.body, html):
        for leftover in ("None", "{{", "}}", "{%", "%}", " ,", "—", "$-"):
            assert leftover not in part, (leftover, part)
    for entity in ("&amp;", "&#x27;", "&lt;", "&gt;", "&quot;", "&#"):
        assert entity not in message.subject + message.body, (entity, message.body)
    assert "<b>" not in html and "<script" not in html
    # No email carries a link: none can be relative, point elsewhere than the site, or lead a
    # customer to a staff-only admin page.
    assert "href" not in html and "http" not in message.body + html
    assert "/admin" not in message.body + html


# --- T: trial emails ---------------------------------------------------------------------------


def test_t6_t4_trial_reminder_and_ended_state_the_trials_days_and_free_plan(
    db, settings, django_capture_on_commit_callbacks
):
    """T3, T6, T4, P1: a Team sign-up without a card on 1 Jan 2026 has a 14-day trial covering
    1 – 14 January, end date (first paid day) 15 January. The reminder goes on 12 January, three
    days before, to the billing address, from DEFAULT_FROM_EMAIL; the trial ends without a card
    on the 15th and the workspace is on Free, 1,000 MTUs a month."""
    ws = workspace(as_of=date(2026, 1, 1), name=TRICKY, plan="team")
    sub = ws.subscriptions.get()
    assert (sub.trial_end, sub.trial_days) == (date(2026, 1, 15), 14)
    assert PlanTerms.objects.of(date(2026, 1, 15), plan__code=Plan.Code.FREE).included_mtus == 1000
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 11))
    assert to(ws.billing_email) == []  # four days before: not yet
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 16))
    reminder, ended = to(ws.billing_email)
    sub.refresh_from_db()
    assert sub.trial_reminder_sent_on == date(2026, 1, 12)
    for message in (reminder, ended):
        read_like_a_recipient(message)
        assert message.from_email == settings.DEFAULT_FROM_EMAIL
        assert ESCAPED in html_of(message)
    assert reminder.subject == f"Your Team trial for {TRICKY} ends on 15 Jan 2026"
    assert f"The 14-day Team trial of {TRICKY} ends on 15 Jan 2026." in words(reminder.body)
    assert (
        "add one on your workspace's Payment Information page by 15 Jan 2026 (that day included)"
        " to stay on Team"
    ) in words(reminder.body)
    assert "Payment Information</strong> page by 15 Jan 2026" in html_of(reminder)
    assert "back to the Free plan on 15 Jan 2026 (1,000 MTUs a month)" in words(reminder.body)
    assert "locked again" not in reminder.body  # it lifted no lock (F7)
    assert ended.subject == f"Your Team trial for {TRICKY} has ended"
    assert "ended on 15 Jan 2026 without a payment method on file" in words(ended.body)
    assert "back on the Free plan (1,000 MTUs a month). Nothing was charged." in words(ended.body)
    assert (
        "move to Team at any time (Settings > Usage & Billing > Plans) once a payment method is"
        " added on your workspace's Payment Information page."
    ) in words(ended.body)
    assert "Payment Information</strong> page." in html_of(ended)
    assert Invoice.objects.filter(workspace=ws).count() == 0  # T5: nothing charged indeed


def test_t4_k4_trial_converted_says_how_the_workspace_is_billed(
    db, django_capture_on_commit_callbacks
):
    """T4, K4: two sign-ups with a card on 1 Jan 2026, both monthly; one changes its interval
    to annual during the trial (7 January). On 15 January both go on as paid Team: the monthly
    one "billed monthly" (no invoice until the month close), the other "billed annually" with
    its $1,440.00 invoice dated 15 January."""
    monthly = workspace(as_of=date(2026, 1, 1), name="Monthly Co", plan="team", card=True)
    annual = workspace(as_of=date(2026, 1, 1), name="Annual Co", plan="team", card=True)
    services.change_interval(annual, interval="annual", as_of=date(2026, 1, 7))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 15))
    invoice = Invoice.objects.get(workspace=annual)
    assert (invoice.kind, invoice.issue_date, invoice.total) == (
        "annual",
        date(2026, 1, 15),
        Decimal("1440.00"),
    )
    for ws, billed in ((monthly, "billed monthly"), (annual, "billed annually")):
        [message] = to(ws.billing_email)
        read_like_a_recipient(message)
        assert message.subject == f"{ws.name} is now on Team"
        assert f"ended on 15 Jan 2026 and the workspace continues on Team, {billed}," in words(
            message.body
        )


# --- F: lock and unlock emails -----------------------------------------------------------------


def test_f1_f2_f6_lock_emails_state_the_months_figure_and_the_free_allowance(
    db, django_capture_on_commit_callbacks
):
    """F1, F2, F6: a Free workspace reports 2,000 MTUs for January 2026 and 1,500 for February,
    over Free's 1,000. The January close (1 February) locks it, the February close (1 March)
    stops its data (two strikes in six months). Each email names the month's strike and
    the allowance, and only the second says the data stopped."""
    ws = workspace(as_of=date(2026, 1, 1), name=TRICKY)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=1_500)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 3, 1))
    assert list(Strike.objects.filter(workspace=ws).order_by("month").values_list("mtus")) == [
        (2000,),
        (1500,),
    ]
    locked, stopped = to(ws.billing_email)
    for message in (locked, stopped):
        read_like_a_recipient(message)
        assert ESCAPED in html_of(message)
    assert locked.subject == f"{TRICKY} is locked"
    assert (
        f"{TRICKY} reported 2,000 monthly tracked users in January 2026, over the Free plan's "
        "1,000." in locked.body
    )
    assert "The account is locked; your data still flows in." in locked.body
    assert "stopped" not in locked.body
    assert stopped.subject == f"{TRICKY} is locked and data has stopped"
    assert "reported 1,500 monthly tracked users in February 2026" in stopped.body
    assert "incoming data has stopped, because this happened more than once in six months" in (
        words(stopped.body)
    )
    # F3: a data stop is not lifted by a month under the limit, and its email promises no such.
    assert (
        "Moving to the Team plan (Settings > Usage & Billing > Plans) unlocks the workspace "
        "at once."
    ) in stopped.body


def test_f3_f5_unlock_emails_say_why_and_that_data_flows(
    db, support, django_capture_on_commit_callbacks
):
    """F3, F5, F6: locked at the January close (2,000 MTUs), then 500 MTUs in February: the
    close on 1 March unlocks it, "February 2026 did not count". A second workspace, stopped by
    two strikes, is unlocked by support on 2 March (its reason is kept, not emailed)."""
    under = workspace(as_of=date(2026, 1, 1), name="Under Co")
    stopped = workspace(as_of=date(2026, 1, 1), name="Stopped Co")
    services.record_usage(under, month=date(2026, 1, 1), mtus=2_000)
    services.record_usage(under, month=date(2026, 2, 1), mtus=500)
    services.record_usage(stopped, month=date(2026, 1, 1), mtus=2_000)
    services.record_usage(stopped, month=date(2026, 2, 1), mtus=2_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 3, 1))
        services.unlock_workspace(
            stopped, by=support, reason="Ticket 4411: internal", as_of=date(2026, 3, 2)
        )
    unlocked = the_one(under.billing_email, "unlocked")
    read_like_a_recipient(unlocked)
    assert unlocked.subject == "Under Co is unlocked"
    assert (
        "Under Co is unlocked: February 2026 did not count against the Free plan's limit. "
        "Data flows as usual." in unlocked.body
    )
    by_hand = the_one(stopped.billing_email, "unlocked")
    read_like_a_recipient(by_hand)
    assert "Stopped Co is unlocked. Data flows as usual." in by_hand.body
    assert "Ticket 4411" not in by_hand.body + html_of(by_hand)
    stopped.refresh_from_db()
    assert (stopped.lock, stopped.data_flow) == ("unlocked", True)


def test_f4_f7_moving_to_team_unlocks_and_a_trial_ending_unpaid_locks_again(
    db, django_capture_on_commit_callbacks
):
    """F4, F7: locked at the January close (3,000 MTUs), the workspace moves to Team with a
    card on 2 February (trial to 16 February) and is unlocked that day; its card removed on
    3 February, the trial ends unpaid on 16 February and the lock is back, with cause "trial
    ended before paying" and an email that says so, dated 16 Feb 2026. The trial's reminder
    said so beforehand."""
    ws = workspace(as_of=date(2026, 1, 1), name="Comeback Co", card=True)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=3_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 1))
        services.change_to_team(ws, as_of=date(2026, 2, 2))
        services.remove_payment_method(ws, as_of=date(2026, 2, 3))
        services.run_billing(as_of=date(2026, 2, 16))
    events = list(LockEvent.objects.filter(workspace=ws).order_by("pk").values_list("cause", "on"))
    assert events == [
        ("free_limit", date(2026, 2, 1)),
        ("moved_to_team", date(2026, 2, 2)),
        ("trial_not_paid", date(2026, 2, 16)),
    ]
    subjects = [m.subject for m in to(ws.billing_email)]
    assert subjects == [
        "Comeback Co is locked",
        "Comeback Co is unlocked",
        "Your Team trial for Comeback Co ends on 16 Feb 2026",
        "Your Team trial for Comeback Co has ended",
        "Comeback Co is locked",
    ]
    lifted = to(ws.billing_email)[1]
    assert "Comeback Co is unlocked now that it is on Team. Data flows as usual." in lifted.body
    # The reminder of 13 February warns that the lock comes back with Free (it did not).
    reminder = to(ws.billing_email)[2]
    for part in (words(reminder.body), words(html_of(reminder))):
        assert (
            "Moving to Team lifted the workspace's lock: back on Free, it is locked again." in part
        ), part
    back = to(ws.billing_email)[-1]
    read_like_a_recipient(back)
    assert (
        "Team for Comeback Co ended on 16 Feb 2026 before its first paid day, so the lock that "
        "moving to Team had lifted is back" in back.body
    )


# --- W: the closure email ----------------------------------------------------------------------


def test_w1_k1_closure_email_states_the_final_invoice_and_what_ended_as_stored(
    db, support, django_capture_on_commit_callbacks
):
    """W1, K1, C4, CR2: paid monthly Team from 1 June 2026 with 20 % off for 3 months, 14,000
    MTUs in June, closed on 15 June. Final invoice: 120 x 14/30 = 56.00 + 4,000 x 0.01 = 40.00
    = 96.00, less 20 % = 19.20: $76.80, for 1 – 14 June 2026. The email states that invoice's
    number and total as stored, and that the discount ended."""
    ws = paid_monthly(date(2026, 6, 1), name=TRICKY)
    promo = coupon(percent_off="20", duration="repeating", duration_months=3)
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 6, 1), reason="Deal")
    services.record_usage(ws, month=date(2026, 6, 1), mtus=14_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.close_workspace(ws, by=support, reason="Asked", as_of=date(2026, 6, 15))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.subtotal, final.discount, final.total) == (
        Decimal("96.00"),
        Decimal("19.20"),
        Decimal("76.80"),
    )
    [message] = to(ws.billing_email)
    read_like_a_recipient(message)
    assert message.subject == f"{TRICKY} is closed"
    assert ESCAPED in html_of(message)
    body = words(message.body)
    assert f"As you asked, {TRICKY} was closed on 15 Jun 2026." in body
    assert f"final invoice, {final.number}, of $76.80 for 1 – 14 June 2026" in body
    assert f"The discount {promo.code} (20% off) ended." in body


def test_w1_cr3_closure_email_states_the_startup_credit_that_lapsed(
    db, reviewer, support, django_capture_on_commit_callbacks
):
    """W1, CR2, CR3: a monthly Team member of the program ($25,000.00 granted on 6 January
    2026) with 30,000 MTUs in January (120.00 + 200.00 = 320.00, all paid by credit) and 20,000
    in February, closed on 10 February: the final invoice for 1 – 9 February is 120 x 9/28 =
    38.57 + 100.00 = 138.57, paid by credit to $0.00; 25,000.00 - 320.00 - 138.57 =
    $24,541.43 lapses, as the ledger says."""
    ws = paid_monthly(date(2026, 1, 1), name="Credit Co")
    app = application(as_of=date(2026, 1, 5), workspace=ws)
    startups.approve_application(app, by=reviewer, as_of=date(2026, 1, 6))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=30_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=20_000)
    services.run_billing(as_of=date(2026, 2, 9))
    with django_capture_on_commit_callbacks(execute=True):
        services.close_workspace(ws, by=support, reason="Asked", as_of=date(2026, 2, 10))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.subtotal, final.credits, final.total) == (
        Decimal("138.57"),
        Decimal("138.57"),
        0,
    )
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.amount, grant.remaining) == (Decimal("25000.00"), 0)
    [message] = to(ws.billing_email)
    read_like_a_recipient(message)
    body = words(message.body)
    assert f"final invoice, {final.number}, of $0.00 for 1 – 9 February 2026" in body
    assert "$24,541.43 of unused startup credit lapsed." in body


def test_w1_closure_emails_of_an_annual_term_and_of_a_trial(
    db, support, django_capture_on_commit_callbacks
):
    """W1, K2, T5: an annual term from 1 June 2026 closed on 15 June is not renewed nor
    refunded; a trial from 10 June closed on 15 June ends uncharged. No final invoice for
    either, and each email says so."""
    annual = paid_annual(date(2026, 6, 1), name="Annual Co")
    trial = workspace(as_of=date(2026, 6, 10), name="Trial Co", plan="team")
    with django_capture_on_commit_callbacks(execute=True):
        for ws in (annual, trial):
            services.close_workspace(ws, by=support, reason="Asked", as_of=date(2026, 6, 15))
    assert not Invoice.objects.filter(kind="final").exists()
    [to_annual], [to_trial] = to(annual.billing_email), to(trial.billing_email)
    for message in (to_annual, to_trial):
        read_like_a_recipient(message)
    assert (
        "Your annual Team term ended with it: it will not be renewed and no overage of June "
        "2026 is billed; a month that had already ended is invoiced at its month close, as "
        "usual. The prepaid term is not refunded." in to_annual.body
    )
    assert "Your Team trial ended with it; nothing was charged." in to_trial.body


def test_w1_k1_a_closure_on_the_1st_says_the_monthly_plan_ended_with_no_final_invoice(
    db, support, django_capture_on_commit_callbacks
):
    """W1, K1: paid monthly Team from 10 Feb 2026, closed on 1 Mar 2026. March has no paid day
    before the 1st, so no final invoice (K1); February's invoice, 120 x 19/28 = $81.43 for 10 –
    28 February, is issued by the close of 1 March. The email said nothing of the plan (a
    sentence for a final invoice, a cancelled trial and an annual term, none for a monthly plan
    ended without a final invoice); it now says so, and that February is invoiced as usual."""
    ws = paid_monthly(date(2026, 2, 10), name="First Day Co")
    services.run_billing(as_of=date(2026, 2, 28))
    with django_capture_on_commit_callbacks(execute=True):
        services.close_workspace(ws, by=support, reason="Asked", as_of=date(2026, 3, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    [february] = Invoice.objects.filter(workspace=ws)
    assert (february.kind, february.total, february.period_end) == (
        "monthly",
        Decimal("81.43"),
        date(2026, 3, 1),
    )
    [message] = to(ws.billing_email)
    read_like_a_recipient(message)
    for part in (words(message.body), words(html_of(message))):
        assert (
            "Your monthly Team plan ended with it. No paid day of March 2026 is left to bill, so "
            "there is no final invoice; a month that had already ended is invoiced at its month "
            "close"
        ) in part, part


def test_w1_k2_the_annual_closure_email_says_a_month_already_ended_is_still_invoiced(
    db, support, django_capture_on_commit_callbacks
):
    """W1, K2: paid annual Team from 5 Jan 2026, 25,000 MTUs in October, closed on 1 Nov 2026
    before October's close: the close of 1 November bills October's overage, 15,000 × 0.01 =
    $150.00. The email said "no further overage is billed", and the invoice followed it the
    same day; it now says November's overage is not billed and a month already ended is."""
    ws = paid_annual(date(2026, 1, 5), name="Annual Co")
    services.record_usage(ws, month=date(2026, 10, 1), mtus=25_000)
    services.run_billing(as_of=date(2026, 10, 31))
    with django_capture_on_commit_callbacks(execute=True):
        services.close_workspace(ws, by=support, reason="Asked", as_of=date(2026, 11, 1))
    services.run_billing(as_of=date(2026, 11, 3))
    october = Invoice.objects.get(workspace=ws, kind="monthly")
    assert (october.period_start, october.total) == (date(2026, 10, 1), Decimal("150.00"))
    [message] = to(ws.billing_email)
    for part in (words(message.body), words(html_of(message))):
        assert (
            "Your annual Team term ended with it: it will not be renewed and no overage of "
            "November 2026 is billed; a month that had already ended is invoiced at its month "
            "close, as usual. The prepaid term is not refunded."
        ) in part, part


def test_w1_the_closure_email_names_the_day_not_today_when_it_is_resent_later(
    db, support, settings, django_capture_on_commit_callbacks
):
    """W1, K1 (dates unambiguous): closed on 15 Jun 2026, final invoice for 1 – 14 June. The
    email said the invoice covers "the paid days before today": "today" is the day it was
    written, and an email that failed is resent by staff from its stored body days later
    (billing.emails.resend_email), still saying "today". It names the day."""
    ws = paid_monthly(date(2026, 6, 1), name="Later Co")
    services.record_usage(ws, month=date(2026, 6, 1), mtus=14_000)
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDown"
    with django_capture_on_commit_callbacks(execute=True):
        services.close_workspace(ws, by=support, reason="Asked", as_of=date(2026, 6, 15))
    email = OutboundEmail.objects.get(kind="workspace_closed")
    OutboundEmail.objects.filter(pk=email.pk).update(status="failed")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        resend_email(email, by=support)  # a week later, say
    [message] = to(ws.billing_email)
    assert "for 1 – 14 June 2026 (the paid days before 15 Jun 2026 and the MTUs" in words(
        message.body
    )
    assert "today" not in message.body, message.body


# --- S: the startup program's emails -----------------------------------------------------------


def test_s1_s4_s5_applicant_emails_state_the_application_and_the_grant(
    db, reviewer, settings, django_capture_on_commit_callbacks
):
    """S1, S4, S5, CR1, C7: an application of 20 Jan 2026 linked to an active partner whose own
    amount is $50,000.00, approved on 21 Jan: the grant is $50,000.00 valid up to, not
    including, 21 Jan 2027, and the acceptance says so, greets the contact by name, names the
    workspace and lists the active deals. Another application is rejected with a reason,
    which the applicant reads unescaped. The confirmation echoes nothing the sender typed."""
    partner = coupons.apply_as_partner(
        "Seed Co", contact_name="Mira", contact_email="mira@seed.example", as_of=date(2026, 1, 2)
    )
    coupons.approve_partner(
        partner, by=reviewer, as_of=date(2026, 1, 3), credit_amount="50000", note="Big"
    )
    PartnerDeal.objects.create(company="Warehouse & Co", title="6 months free", description="…")
    ws = workspace(as_of=date(2026, 1, 2), name="Rocket", slug="rocket", card=True)
    services.change_to_team(ws, as_of=date(2026, 1, 2))
    with django_capture_on_commit_callbacks(execute=True):
        app = application(
            as_of=date(2026, 1, 20),
            company_name=TRICKY,
            contact_name="Ada O'Neil",
            workspace=ws,
            partner=partner,
        )
        other = application(as_of=date(2026, 1, 20), company_name="Other Co")
        startups.approve_application(app, by=reviewer, as_of=date(2026, 1, 21))
        startups.reject_application(
            other, by=reviewer, reason="Funding > $5,000,000 & more", as_of=date(2026, 1, 21)
        )
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.amount, grant.valid_from, grant.valid_until) == (
        Decimal("50000.00"),
        date(2026, 1, 21),
        date(2027, 1, 21),
    )
    received, accepted = to(app.contact_email)
    for message in (received, accepted):
        read_like_a_recipient(message)
        assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert received.subject == f"We received your Startup Program application #{app.pk}"
    assert f"we received application #{app.pk} on 20 Jan 2026" in words(received.body)
    assert TRICKY not in received.body and "Ada" not in received.body
    assert accepted.subject == f"Welcome to the Startup Program, {TRICKY}"
    body = words(accepted.body)
    assert body.startswith("Hello Ada O'Neil,")
    assert "The workspace rocket now has $50,000.00 in credit for its monthly Team invoices" in body
    assert "valid up to, not including, 21 Jan 2027" in body
    assert "- Warehouse & Co: 6 months free" in accepted.body
    assert ESCAPED in html_of(accepted) and "Warehouse &amp; Co" in html_of(accepted)
    received_other, rejected = to(other.contact_email)
    read_like_a_recipient(rejected)
    assert rejected.subject == f"Your Startup Program application #{other.pk}"
    assert "Funding > $5,000,000 & more" in rejected.body
    assert "Funding &gt; $5,000,000 &amp; more" in html_of(rejected)


def test_s4_s6_the_acceptance_points_at_partner_deals_only_when_some_are_listed(
    db, reviewer, django_capture_on_commit_callbacks
):
    """S4, S6: approved on 21 Jan 2026 with no active partner deal in the catalogue (none
    entered yet, or all switched off). The acceptance's next steps said "- Ask for the partner
    deals below by replying to this email." and nothing followed: the list is left out when it
    is empty, and so is the line now."""
    PartnerDeal.objects.create(company="Gone Co", title="Old deal", description="…", active=False)
    ws = workspace(as_of=date(2026, 1, 2), name="Nodeal")
    app = application(as_of=date(2026, 1, 20), workspace=ws)
    with django_capture_on_commit_callbacks(execute=True):
        startups.approve_application(
            app, by=reviewer, as_of=date(2026, 1, 21), credits_scope_confirmed=True
        )
    accepted = the_one(app.contact_email, "Welcome")
    assert "Partner deals" not in accepted.body  # none listed …
    for part in (accepted.body, html_of(accepted)):
        assert "partner deals below" not in part, part  # … and none pointed at


# --- C7: the program contact's emails ----------------------------------------------------------


def test_c7_partner_emails_greet_the_contact_and_state_the_credit_amount(
    db, reviewer, django_capture_on_commit_callbacks
):
    """C7: a program approved on 3 Jan 2026 with its own amount of $50,000.00 is told that
    amount, as stored on the partner; another is declined with a reason, which is emailed (the
    admin says so) and read unescaped."""
    with django_capture_on_commit_callbacks(execute=True):
        ok = coupons.apply_as_partner(
            TRICKY,
            contact_name="Mira O'Hara",
            contact_email="mira@x.example",
            as_of=date(2026, 1, 2),
        )
        coupons.approve_partner(
            ok, by=reviewer, as_of=date(2026, 1, 3), credit_amount="50000", note="Big"
        )
        no = coupons.apply_as_partner(
            "No Co", contact_name="Bo", contact_email="bo@x.example", as_of=date(2026, 1, 2)
        )
        coupons.decline_partner(
            no, by=reviewer, reason="Not a fit <yet> & too small", as_of=date(2026, 1, 3)
        )
    ok.refresh_from_db()
    assert ok.credit_amount == Decimal("50000.00")
    [approved] = to("mira@x.example")
    read_like_a_recipient(approved)
    assert approved.subject == f"{TRICKY} is now an accelerator partner"
    assert approved.body.startswith("Hello Mira O'Hara,")
    assert "receive $50,000.00 of credit a year toward the monthly Team plan" in words(
        approved.body
    )
    assert ESCAPED in html_of(approved)
    [declined] = to("bo@x.example")
    read_like_a_recipient(declined)
    assert declined.subject == f"Your accelerator partner application #{no.pk}"
    assert f"(application #{no.pk} of 2 Jan 2026)" in words(declined.body)
    assert "Not a fit <yet> & too small" in declined.body
    assert "Not a fit &lt;yet&gt; &amp; too small" in html_of(declined)


# --- G: the campaign email ---------------------------------------------------------------------


def test_g2_campaign_email_states_the_coupons_terms_to_the_billing_address_of_the_day(
    db, support, django_capture_on_commit_callbacks
):
    """G1, G2, C1, C2: a promotion of $30.00 off, forever, redeemable by 31 Mar 2026 (that day
    included: a redemption is refused only after it). The workspace's billing address changed
    on 2 March; the launch of 3 March emails the new one, with the coupon's figures. The
    campaign's subject, staff-typed with a line break and a header after it, is refused; one
    stored before that check (written here directly) still goes out as one line."""
    ws = workspace(as_of=date(2026, 1, 1), name=TRICKY, billing_email="old@acme.example")
    services.update_workspace(
        ws,
        by=support,
        reason="New contact",
        name=ws.name,
        business_country="US",
        business_region="OR",
        billing_email="new@acme.example",
        as_of=date(2026, 3, 2),
    )
    promo = coupon(amount_off="30", duration="forever", redeem_by=date(2026, 3, 31))
    smuggled = "Spring offer\r\nBcc: everyone@evil.example"
    details = (promo.code, "Hello & welcome,\nspring is here.", {"plan": "free"})
    with pytest.raises(Exception, match="The subject contains the invisible character U.000D"):
        coupons.create_campaign(
            "Spring", details[0], smuggled, *details[1:], as_of=date(2026, 3, 3)
        )
    campaign = coupons.create_campaign(
        "Spring", details[0], "Spring offer", *details[1:], by=support, as_of=date(2026, 3, 3)
    )
    type(campaign).objects.filter(pk=campaign.pk).update(subject=smuggled)
    campaign.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        coupons.launch_campaign(campaign, by=support, as_of=date(2026, 3, 3))
    assert to("old@acme.example") == []
    [message] = to("new@acme.example")
    read_like_a_recipient(message)
    assert message.subject == "Spring offer Bcc: everyone@evil.example"
    assert "Bcc" not in str(message.message()).split("\n\n")[0].replace(message.subject, "")
    assert message.bcc == [] and message.cc == []
    assert (
        f"The offer for {TRICKY}: $30.00 off your Team bill, forever, if applied by 31 Mar 2026."
        in message.body
    )
    assert f"(code {promo.code})" in message.body
    assert "Hello & welcome," in message.body and "Hello &amp; welcome," in html_of(message)
    with pytest.raises(Exception, match="could be applied until 31 Mar 2026"):
        coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 4, 1), reason="Late")
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 3, 31), reason="In time")


@pytest.mark.parametrize(
    "terms, offer",
    [
        (
            {"percent_off": "25", "duration": "repeating", "duration_months": 3},
            "25% off your Team bill for 3 months.",
        ),
        (
            {"amount_off": "50.00", "duration": "once", "intervals": ("monthly",)},
            "$50.00 off your monthly Team bill, once.",
        ),
    ],
)
def test_g1_g2_c2_c5_campaign_email_states_the_coupons_terms(
    db, support, django_capture_on_commit_callbacks, terms, offer
):
    """G2, C5: 25 % off for 3 months read "25% off your Team bill, 3 months"; it reads "…
    for 3 months" (`forever` stays "…, forever", above). G1, C2: a coupon for monthly billing
    only read "$50.00 off your Team bill, once", and C2 refuses it on annual Team; it names
    the interval (a coupon for both reads "your Team bill")."""
    ws = workspace(as_of=date(2026, 1, 1), name="Terms Co", billing_email="terms@x.example")
    promo = coupon(**terms)
    campaign = coupons.create_campaign(
        "Spring",
        promo.code,
        "Spring offer",
        "Hello.",
        {"plan": "free"},
        by=support,
        as_of=date(2026, 3, 3),
    )
    with django_capture_on_commit_callbacks(execute=True):
        coupons.launch_campaign(campaign, by=support, as_of=date(2026, 3, 3))
    [message] = to(ws.billing_email)
    read_like_a_recipient(message)
    for part in (words(message.body), words(html_of(message))):
        assert offer in part, part


# --- Every kind, the sender, the subject ---------------------------------------------------------


def test_r1_every_kind_is_walked_and_sent_from_the_configured_address(
    db, settings, reviewer, support, django_capture_on_commit_callbacks
):
    """Every kind the outbox knows (billing.formatting.EMAIL_KINDS: 12) is produced here through
    the services in one stretch of the clock, read as its recipient would, and sent from
    DEFAULT_FROM_EMAIL as configured at sending (no Reply-To: replies go to that address)."""
    settings.DEFAULT_FROM_EMAIL = "Acme Billing <billing@acme.example>"
    PartnerDeal.objects.create(company="Deal Co", title="A deal", description="…")
    with django_capture_on_commit_callbacks(execute=True):
        workspace(as_of=date(2026, 1, 1), plan="team")  # reminder, then ended
        workspace(as_of=date(2026, 1, 1), plan="team", card=True)  # converted
        over = workspace(as_of=date(2026, 1, 1))
        services.record_usage(over, month=date(2026, 1, 1), mtus=2_000)
        services.run_billing(as_of=date(2026, 2, 1))  # locked
        services.unlock_workspace(over, by=support, reason="Ticket", as_of=date(2026, 2, 2))
        services.close_workspace(
            paid_monthly(date(2026, 2, 2)), by=support, reason="Asked", as_of=date(2026, 2, 10)
        )
        partner = coupons.apply_as_partner(
            "P", contact_name="P", contact_email="p@x.example", as_of=date(2026, 2, 2)
        )
        coupons.approve_partner(partner, by=reviewer, as_of=date(2026, 2, 3))
        declined = coupons.apply_as_partner(
            "Q", contact_name="Q", contact_email="q@x.example", as_of=date(2026, 2, 2)
        )
        coupons.decline_partner(declined, by=reviewer, reason="No", as_of=date(2026, 2, 3))
        approved = application(as_of=date(2026, 2, 2), workspace=workspace(as_of=date(2026, 2, 2)))
        startups.approve_application(
            approved, by=reviewer, as_of=date(2026, 2, 3), credits_scope_confirmed=True
        )
        startups.reject_application(
            application(as_of=date(2026, 2, 2)), by=reviewer, reason="No", as_of=date(2026, 2, 3)
        )
        campaign = coupons.create_campaign(
            "C", coupon().code, "Offer", "Hi", {"plan": "free"}, by=support, as_of=date(2026, 2, 3)
        )
        coupons.launch_campaign(campaign, by=support, as_of=date(2026, 2, 3))
    kinds = set(OutboundEmail.objects.values_list("kind", flat=True))
    assert kinds == set(EMAIL_KINDS)
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"sent"}
    assert len(mail.outbox) == OutboundEmail.objects.count()
    for message in mail.outbox:
        read_like_a_recipient(message)
        assert message.from_email == "Acme Billing <billing@acme.example>"
        assert message.reply_to == []
        assert re.fullmatch(r"[^@\s]+@[^@\s]+", message.to[0]) and len(message.to) == 1


def test_subjects_hold_a_200_character_name_whole_on_one_line(
    db, django_capture_on_commit_callbacks
):
    """A workspace name may be 200 characters (billing.contact_details.NAME_LENGTH) and may hold
    a line separator (U+2028 is no control character, so the name check lets it through): the
    reminder's subject keeps the whole name and its date on one line, 240 characters."""
    name = "Northwind\u2028Bcc: x@evil.example " + "n" * 170
    assert len(name) == 200
    ws = workspace(as_of=date(2026, 1, 1), name=name, plan="team")
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 12))
    [reminder] = to(ws.billing_email)
    assert reminder.subject == (
        "Your Team trial for Northwind Bcc: x@evil.example " + "n" * 170 + " ends on 15 Jan 2026"
    )
    assert len(reminder.subject) == 240
    headers = str(reminder.message()).split("\n\n")[0]
    assert not re.search(r"^Bcc:", headers, re.MULTILINE)


# --- What the help pages promise ---------------------------------------------------------------


def test_f3_the_lock_email_says_a_month_within_the_limit_unlocks_it(
    db, django_capture_on_commit_callbacks
):
    """F2, F3 and seeds/plans-billing-faq.txt ("What happens when I exceed the Free plan
    limit?"): over the limit once in six months, the account is locked but data flows, and it
    unlocks either by a month back under the limit (Option 1: F3 unlocks it at that month's
    close) or by moving to Team (Option 2). A workspace with 2,000 MTUs in January 2026, locked
    at the close of 1 February, was told only "Moving to the Team plan unlocks the workspace at
    once.", as if paying were the only way out; it is told both now."""
    ws = workspace(as_of=date(2026, 1, 1), name="Once Co")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 1))
    [locked] = to(ws.billing_email)
    assert locked.subject == "Once Co is locked"
    for part in (words(locked.body), words(html_of(locked))):
        assert (
            "It unlocks on its own at the close of a month that stays within the Free plan's "
            "1,000 monthly tracked users."
        ) in part, part
    assert (
        "Moving to the Team plan (Settings > Usage & Billing > Plans) unlocks the workspace "
        "at once."
    ) in words(locked.body)


def test_the_emails_name_the_pages_where_a_customer_acts(db, django_capture_on_commit_callbacks):
    """seeds/plans-billing-faq.txt names where a customer changes plan ("Settings > Usage &
    Billing > Plans", in "How do I change my plan?") and where a trial's card goes (the
    "Payment Information" page in the workspace, in "Do you have to include your payment
    information…"). The emails that ask for either say where, in both parts: a Free workspace
    with 2,000 MTUs in January 2026 is locked on 1 February; a Team trial signed up on 1 January
    without a card is reminded on the 12th and back on Free on the 15th."""
    locked_ws = workspace(as_of=date(2026, 1, 1), name="Locked Co")
    services.record_usage(locked_ws, month=date(2026, 1, 1), mtus=2_000)
    trial_ws = workspace(as_of=date(2026, 1, 1), name="Trial Co", plan="team")
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 2, 1))
    [locked] = to(locked_ws.billing_email)
    reminder, ended = to(trial_ws.billing_email)
    plans_text = "Settings > Usage & Billing > Plans"
    plans_html = "<strong>Settings &gt; Usage &amp; Billing &gt; Plans</strong>"
    card_text = "your workspace's Payment Information page"
    card_html = "your workspace's <strong>Payment Information</strong> page"
    for message, text_part, html_part in (
        (locked, [plans_text], [plans_html]),
        (reminder, [card_text], [card_html]),
        (ended, [plans_text, card_text], [plans_html, card_html]),
    ):
        read_like_a_recipient(message)
        for words_of_the_page in text_part:
            assert words_of_the_page in words(message.body), (message.subject, message.body)
        for words_of_the_page in html_part:
            assert words_of_the_page in html_of(message), (message.subject, html_of(message))
