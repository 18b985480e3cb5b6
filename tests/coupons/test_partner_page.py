"""C7 and R2 on the page you read: a startup reviewer approves (with the partner's own yearly
credit), declines or deactivates an accelerator partner on its own page, behind a confirmation
that calls the partner services as of the admin's today (10 Feb 2026); a decision the status
rules out (a stale page, a double submit) says so and writes nothing; the page lists the
emails to the partner's contact and whether each left. Through the test client, with the real
role groups."""

import re
from datetime import date
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from billing.models import OutboundEmail
from coupons import services
from coupons.errors import CouponError
from coupons.models import AcceleratorPartner
from tests.admin_pages import as_shown, messages_of

from .factories import coupon

TODAY = date(2026, 2, 10)  # tests/conftest.py's TODAY: the admin's today() in these tests
DECISIONS = ("approve", "decline", "deactivate")


def partner(name="Launchpad", email="lee@launchpad.example", as_of=date(2026, 2, 2)):
    return services.apply_as_partner(
        name, contact_name="Lee Park", contact_email=email, as_of=as_of
    )


def page_url(p):
    return reverse("admin:coupons_acceleratorpartner_change", args=[p.pk])


def decide_url(p, decision):
    return reverse("admin:coupons_partner_decide", args=[p.pk, decision])


def text(response):
    return re.sub(r"\s+", " ", response.content.decode())


def forms_posting(body):
    return re.findall(r'<form method="post"', body)


def user_with(*codenames, username):
    """A staff user holding only `codenames` (app_label.codename), outside the role groups."""
    user = User.objects.create_user(username=username, password="pass-for-tests", is_staff=True)
    for name in codenames:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def written(p):
    """What a decision writes on the partner: its row, its history and its emails."""
    row = AcceleratorPartner.objects.values(
        "status", "credit_amount", "reviewed_by", "reviewed_on", "review_note"
    ).get(pk=p.pk)
    emails = OutboundEmail.objects.filter(to=p.contact_email).count()
    return row, p.history.count(), emails


# --- the buttons ------------------------------------------------------------------------------


def test_c7_r2_the_partner_page_offers_the_decisions_its_status_allows(client, reviewer, today):
    """C7, R2: applied → approve or decline; active → deactivate; inactive (declined or
    deactivated) → approve again. Each button links to its confirmation page."""
    applied = partner("Applied Co", "a@applied.example")
    active = partner("Active Co", "b@active.example")
    services.approve_partner(active, by=reviewer, as_of=date(2026, 2, 3))
    inactive = partner("Inactive Co", "c@inactive.example")
    services.decline_partner(inactive, by=reviewer, reason="Not a program", as_of=date(2026, 2, 3))
    client.force_login(reviewer)
    expected = {applied: {"approve", "decline"}, active: {"deactivate"}, inactive: {"approve"}}
    for p, offered in expected.items():
        body = text(client.get(page_url(p)))
        shown = {d for d in DECISIONS if decide_url(p, d) in body}
        assert shown == offered, p.name
    body = text(client.get(page_url(applied)))
    assert "Approve as a partner</a>" in body and "Decline the application</a>" in body
    # The decisions that say no look as a certificate's rejection does.
    assert f'class="decide-reject" href="{decide_url(applied, "decline")}"' in body
    assert f'class="decide-approve" href="{decide_url(applied, "approve")}"' in body


def test_r2_support_and_finance_see_no_buttons_and_are_refused_the_decision_pages(
    client, support, finance, today
):
    """R2, C7: partners are the startup reviewers'. Support and finance cannot open the partner's
    page; the confirmation pages refuse them (403) on GET and POST, and nothing is written."""
    p = partner()
    before = written(p)
    for user in (support, finance):
        client.force_login(user)
        assert client.get(page_url(p)).status_code == 403
        for decision in DECISIONS:
            url = decide_url(p, decision)
            assert client.get(url).status_code == 403, (user, decision)
            data = {"reason": "Ticket 7", "credit_amount": "30000.00", "note": "Ticket 7"}
            assert client.post(url, data).status_code == 403, (user, decision)
    assert written(p) == before


def test_r2_r5_who_may_only_view_partners_sees_no_buttons_and_cannot_decide(client, db, today):
    """R2, R5, C7: a user who may view partners but not review them reads the page without a
    decision button; the confirmation pages answer 403 on GET and POST."""
    p = partner()
    before = written(p)
    client.force_login(user_with("coupons.view_acceleratorpartner", username="viewer"))
    body = text(client.get(page_url(p)))
    assert "Launchpad" in body
    assert "/decide/" not in body
    for decision in DECISIONS:
        assert client.get(decide_url(p, decision)).status_code == 403
        posted = client.post(decide_url(p, decision), {"reason": "x", "note": "x"})
        assert posted.status_code == 403
    assert written(p) == before


# --- the decisions through the services -------------------------------------------------------


def test_c7_r4_approving_on_the_page_sets_the_partner_s_own_credit_of_30_000(
    client, reviewer, today
):
    """C7, R4: the approve page asks for the partner's yearly credit and a note (as the bulk
    action does); posted with 30,000.00 and a note, the partner is active from 10 Feb 2026
    with a credit of $30,000.00 a year, the history keeps the why and the contact's approval
    email is queued."""
    p = partner()
    client.force_login(reviewer)
    asked = text(client.get(decide_url(p, "approve")))
    assert 'name="credit_amount"' in asked and 'name="note"' in asked
    assert "lee@launchpad.example): applied 2 Feb 2026, not decided yet;" in asked
    assert "Launchpad becomes an active partner and lee@launchpad.example is emailed" in asked
    assert 'value="Yes, approve as a partner"' in asked
    assert AcceleratorPartner.objects.get().status == "applied"  # a GET writes nothing

    why = "Board agreed a larger cohort, ticket 12"
    done = client.post(
        decide_url(p, "approve"),
        as_shown(client, decide_url(p, "approve"), {"credit_amount": "30000.00", "note": why}),
        follow=True,
    )
    assert done.redirect_chain[-1][0] == page_url(p)
    assert messages_of(done) == [
        "Launchpad is an active partner with a yearly credit of $30,000.00; the approval is "
        "emailed to lee@launchpad.example."
    ]
    p.refresh_from_db()
    assert (p.status, p.credit_amount, p.reviewed_by, p.reviewed_on, p.review_note) == (
        "active",
        D("30000.00"),
        reviewer,
        TODAY,
        why,
    )
    assert p.history.first().history_change_reason == (
        f"Approved with a yearly credit of $30,000.00: {why}"
    )
    email = OutboundEmail.objects.get(kind="partner_approved")
    assert (email.to, email.object_key) == ("lee@launchpad.example", f"partner:{p.pk}:2026-02-10")
    assert "$30,000.00" in email.body_text


def test_c7_approving_without_an_amount_keeps_the_startup_coupon_s_credit(client, reviewer, today):
    """C7: the approval's fields are optional: approved with neither, the partner's startups
    get the STARTUP coupon's credit (no amount of its own) and the history says "Approved"."""
    p = partner()
    client.force_login(reviewer)
    url = decide_url(p, "approve")
    client.post(url, as_shown(client, url, {"credit_amount": "", "note": ""}))
    p.refresh_from_db()
    assert (p.status, p.credit_amount, p.reviewed_on) == ("active", None, TODAY)
    assert p.history.first().history_change_reason == "Approved"
    assert OutboundEmail.objects.filter(kind="partner_approved").count() == 1


def test_c7_r4_declining_on_the_page_needs_a_reason_and_emails_it_to_the_contact(
    client, reviewer, today
):
    """C7, R4: a decline without a reason is asked for one and writes nothing; with one the
    program is inactive from 10 Feb 2026, the history keeps "Declined: <reason>" and the
    contact's decline email, which gives the reason, is queued."""
    p = partner()
    before = written(p)
    client.force_login(reviewer)
    refused = text(client.post(decide_url(p, "decline"), {"reason": "  "}))
    assert "Say why" in refused
    assert written(p) == before

    url = decide_url(p, "decline")
    done = client.post(url, as_shown(client, url, {"reason": "Not an accelerator"}), follow=True)
    assert messages_of(done) == [
        "Launchpad's application is declined; the reason is emailed to lee@launchpad.example."
    ]
    p.refresh_from_db()
    assert (p.status, p.reviewed_by, p.reviewed_on, p.review_note) == (
        "inactive",
        reviewer,
        TODAY,
        "Not an accelerator",
    )
    assert p.history.first().history_change_reason == "Declined: Not an accelerator"
    email = OutboundEmail.objects.get(kind="partner_declined")
    assert email.to == "lee@launchpad.example" and "Not an accelerator" in email.body_text


def test_c7_deactivating_on_the_page_switches_the_partner_s_coupons_off(client, reviewer, today):
    """C7: an active partner (approved 3 Feb 2026) deactivated on its page with a reason is
    inactive from 10 Feb 2026, its coupon LAUNCH20 (20 % off) is switched off, the history
    keeps "Deactivated: <reason>"; deactivating emails nobody."""
    p = partner()
    services.approve_partner(p, by=reviewer, as_of=date(2026, 2, 3))
    launch = coupon(code="LAUNCH20", kind="accelerator", percent_off="20", partner=p)
    client.force_login(reviewer)
    asked = text(client.get(decide_url(p, "deactivate")))
    assert "its coupons are switched off" in asked and 'name="reason"' in asked

    url = decide_url(p, "deactivate")
    done = client.post(url, as_shown(client, url, {"reason": "Program closed"}), follow=True)
    assert messages_of(done) == ["Launchpad is deactivated; its coupons are switched off."]
    p.refresh_from_db()
    assert (p.status, p.reviewed_on, p.review_note) == ("inactive", TODAY, "Program closed")
    assert p.history.first().history_change_reason == "Deactivated: Program closed"
    launch.refresh_from_db()
    assert launch.active is False
    assert list(OutboundEmail.objects.values_list("kind", flat=True)) == ["partner_approved"]


def test_c7_a_decision_the_status_no_longer_allows_says_so_and_writes_nothing(
    client, reviewer, staff_user, today
):
    """C7 (a stale page, a double submit): a colleague declined Launchpad on 9 Feb 2026 while
    this reviewer's decline page was open. The page, and its POST, say the program is
    inactive and not an open application, offer no form, and write nothing: no second
    decision, history row or email. Deactivating an application, or approving an active
    partner twice, is refused the same way."""
    p = partner()
    colleague = staff_user("Startup reviewers", username="colleague")
    services.decline_partner(p, by=colleague, reason="Not a program", as_of=date(2026, 2, 9))
    before = written(p)
    client.force_login(reviewer)
    stale = (
        "Launchpad is inactive since 9 Feb 2026, not an open application: there is nothing "
        "to decline."
    )
    page = text(client.get(decide_url(p, "decline")))
    assert stale in page and forms_posting(page) == []
    posted = client.post(decide_url(p, "decline"), {"reason": "Spam"})
    assert posted.status_code == 200
    assert stale in text(posted)
    assert written(p) == before
    assert AcceleratorPartner.objects.get().reviewed_by == colleague

    other = partner("Orbit", "o@orbit.example")
    refused = text(client.post(decide_url(other, "deactivate"), {"reason": "Closed"}))
    assert (
        "Orbit is an open application, not an active partner: there is nothing to deactivate."
        in refused
    )
    client.post(decide_url(other, "approve"), as_shown(client, decide_url(other, "approve")))
    again = text(client.post(decide_url(other, "approve"), {"note": "Strong"}))
    assert "Orbit is already an active partner since 10 Feb 2026: there is nothing to approve." in (
        again
    )
    assert OutboundEmail.objects.filter(kind="partner_approved").count() == 1


def test_r4_c7_a_refusal_by_the_service_is_shown_and_nothing_is_written(client, reviewer, today):
    """R4, C7: the partner's own credit is money, so its approval needs the why: posted with
    30,000.00 and a blank note, the service's refusal is the page's message, the form keeps
    what was typed, and the partner stays applied, with no credit of its own and no email."""
    p = partner()
    before = written(p)
    client.force_login(reviewer)
    url = decide_url(p, "approve")
    refused = client.post(url, as_shown(client, url, {"credit_amount": "30000.00", "note": " "}))
    assert refused.status_code == 200
    assert messages_of(refused) == [
        "Say why this partner's startups get their own credit amount: the reason is kept."
    ]
    assert 'value="30000.00"' in refused.content.decode()
    assert written(p) == before


def test_c7_the_bulk_approval_still_asks_for_the_credit_and_approves(client, reviewer, today):
    """C7: the list's bulk approval is the same decision: its confirmation asks for the credit
    and the note, and approves each selected partner (30,000.00 each)."""
    from tests.admin_pages import action

    one, two = partner("One", "one@one.example"), partner("Two", "two@two.example")
    client.force_login(reviewer)
    changelist = reverse("admin:coupons_acceleratorpartner_changelist")
    asked = client.post(changelist, action("approve", one, two)).content.decode()
    assert 'name="credit_amount"' in asked and 'name="note"' in asked
    done = client.post(
        changelist,
        action("approve", one, two, confirm=True, credit_amount="30000.00", note="Cohort 3"),
        follow=True,
    )
    assert "2 partner(s) approved." in messages_of(done)
    rows = AcceleratorPartner.objects.order_by("name").values_list(
        "status", "credit_amount", "reviewed_on"
    )
    assert list(rows) == [("active", D("30000.00"), TODAY)] * 2


# --- the emails to the contact ----------------------------------------------------------------


def test_r2_c7_the_partner_page_says_whether_each_email_to_its_contact_left(
    client, reviewer, settings, today
):
    """R2, C7: reviewers have no outbox, so the partner's page lists the emails to its contact
    and whether each left: the approval of 3 Feb 2026 sent, the approval of 5 Feb 2026 not
    sent (the mail server down) with its error and who can send it again, the approval of
    7 Feb 2026 waiting; oldest first. Other partners' emails (one whose id starts with this
    one's among them) are not listed, and reviewers get no link to the outbox."""
    from billing.emails import send_queued_email

    p = partner()
    others = [partner(f"Other {n}", f"other{n}@example.com") for n in range(11)]
    for other in others:
        services.decline_partner(other, by=reviewer, reason="No", as_of=date(2026, 2, 3))
    for approved_on, deactivated_on in (((2026, 2, 3), (2026, 2, 4)), ((2026, 2, 5), (2026, 2, 6))):
        services.approve_partner(p, by=reviewer, as_of=date(*approved_on))
        services.deactivate_partner(p, by=reviewer, reason="Paused", as_of=date(*deactivated_on))
    services.approve_partner(p, by=reviewer, as_of=date(2026, 2, 7))
    sent, failed, waiting = OutboundEmail.objects.filter(to=p.contact_email).order_by("pk")
    send_queued_email(sent.pk)
    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDown"
    send_queued_email(failed.pk, last_try=True)
    for email in (sent, failed, waiting):
        email.refresh_from_db()
    assert [sent.status, failed.status, waiting.status] == ["sent", "failed", "pending"]

    client.force_login(reviewer)
    body = text(client.get(page_url(p)))
    assert "Emails to the partner's contact" in body
    rows = re.findall(
        r"<tr> <td>Partner program approved</td> <td>([^<]+)</td> <td>(.*?)</td>", body
    )
    assert [to for to, _ in rows] == ["lee@launchpad.example"] * 3
    assert rows[0][1].startswith(f"Sent {sent.sent_at:%-d %b %Y, %H:%M} UTC")
    assert rows[1][1].strip() == (
        "<strong>Not sent</strong>: Given up after 1 try: the mail server closed the connection "
        "(SMTPServerDisconnected: Connection unexpectedly closed) Support or finance can send it "
        "again from the outbox."
    )
    assert rows[2][1].startswith("Waiting to be sent (queued ")
    for other in others:
        assert other.contact_email not in body
    assert "admin/billing/outboundemail/" not in body  # no link to an outbox they cannot open


def test_r2_the_outbox_link_is_only_for_who_may_open_the_outbox(client, reviewer, today):
    """R2, C7: a partner with no email yet says so; one whose contact was emailed links the email
    to the outbox only for a user who may open the outbox (here one who may view partners and
    emails), not for the reviewer."""
    quiet = partner("Quiet Co", "q@quiet.example")
    loud = partner()
    services.decline_partner(loud, by=reviewer, reason="Not a program", as_of=date(2026, 2, 3))
    email = OutboundEmail.objects.get(kind="partner_declined")
    link = reverse("admin:billing_outboundemail_change", args=[email.pk])

    client.force_login(reviewer)
    assert "No email about this partner yet." in text(client.get(page_url(quiet)))
    body = text(client.get(page_url(loud)))
    assert "Partner program declined</td> <td>lee@launchpad.example</td>" in body
    assert link not in body

    client.force_login(
        user_with(
            "coupons.view_acceleratorpartner", "billing.view_outboundemail", username="reader"
        )
    )
    body = text(client.get(page_url(loud)))
    assert f'<a href="{link}">Partner program declined</a>' in body
    assert "/decide/" not in body  # reading emails decides nothing


def test_c7_an_approval_from_a_page_read_before_a_decline_approves_nothing(client, reviewer, db):
    """Two reviewers read Launchpad's application. One declines it; the other, on the approval
    page read before, confirms: approving re-activates an inactive program, so it went through
    over the decline, and the contact was told both. The page carries what it showed: the
    confirmation is shown again as things are now, and nothing is written."""
    p = partner()
    client.force_login(reviewer)
    read_before = as_shown(client, decide_url(p, "approve"), {"note": ""})
    services.decline_partner(p, by=reviewer, reason="Not a program", as_of=TODAY)
    before = written(p)

    response = client.post(decide_url(p, "approve"), read_before)

    assert response.status_code == 200
    assert "changed since this page was opened" in " ".join(messages_of(response))
    assert written(p) == before


def test_c7_a_partner_is_not_renamed_or_approved_again_under_a_name_another_holds(reviewer, db):
    """C7: one program per name (any case), for a rename and for a program approved again,
    as for one applying; a declined program's name is free again."""
    launchpad, techstars = partner(), partner("Techstars", email="ann@techstars.example")
    with pytest.raises(CouponError, match="“TECHSTARS” has applied already or is a partner"):
        services.update_partner(launchpad, by=reviewer, reason="Typo", name="TECHSTARS")
    services.decline_partner(techstars, by=reviewer, reason="Not a program", as_of=TODAY)
    renamed = services.update_partner(launchpad, by=reviewer, reason="Rebrand", name="Techstars")
    assert renamed.name == "Techstars"
    with pytest.raises(CouponError, match="“Techstars” has applied already or is a partner"):
        services.approve_partner(techstars, by=reviewer, as_of=TODAY)
    assert AcceleratorPartner.objects.get(pk=techstars.pk).status == "inactive"
