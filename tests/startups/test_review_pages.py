"""S3 on the page you read: the reviewer links the workspace on the approve page; a decided
application's pages say so instead of offering a form. The queue's date filters are date
pickers with labels and a bad date is reported; the public form has no preselected country."""

import re
from datetime import date

from django.urls import reverse

from startups import services
from startups.models import StartupApplication
from tests.admin_pages import as_shown
from tests.billing.factories import workspace

from .factories import application


def action_url(app, action):
    return reverse("admin:startups_application_action", args=[app.pk, action])


def test_s3_the_reviewer_links_the_workspace_on_the_approve_page(client, db, reviewer, today):
    app = application(company_name="Nimbus Labs", as_of=today)
    ws = workspace(as_of=date(2026, 1, 2), name="Nimbus")
    client.force_login(reviewer)
    page = client.get(action_url(app, "approve")).content.decode()
    assert 'name="workspace"' in page and "data-ajax--url" in page  # the autocomplete
    refused = client.post(action_url(app, "approve"), {"note": "Strong"})
    assert "Choose the applicant&#x27;s workspace" in refused.content.decode()
    url = action_url(app, "approve")
    client.post(
        url,
        as_shown(
            client, url, {"workspace": ws.pk, "note": "Strong", "credits_scope_confirmed": "on"}
        ),
    )
    app.refresh_from_db()
    assert (app.status, app.workspace) == ("approved", ws)


def test_s2_e4_s7_a_workspace_picked_on_the_approve_page_is_checked_on_the_page(
    client, db, reviewer, support, today
):
    """S2 E4, S7: the reviewer picks a Free workspace that redeemed SPRING (5 % off) on the
    approve page. The refusal is shown with the checks and the warning for that workspace
    (E4 fails; credits reach monthly Team only), not for the application with no workspace;
    nothing is linked until the approval goes through."""
    from decimal import Decimal

    from coupons.services import create_coupon, redeem_coupon

    app = application(company_name="Nimbus Labs", as_of=today)
    ws = workspace(as_of=date(2026, 1, 2), name="Nimbus", slug="nimbus")
    create_coupon("SPRING", name="Spring", kind="promotion", percent_off=Decimal(5))
    redeem_coupon(ws, "SPRING", by=support, as_of=date(2026, 1, 25))
    client.force_login(reviewer)
    stored = StartupApplication.objects.values("workspace", "checks", "failing_checks").get()
    url = action_url(app, "approve")
    refused = client.post(url, as_shown(client, url, {"workspace": ws.pk, "note": "Strong"}))
    body = refused.content.decode()
    assert "Approval needs every check to pass (E4: Workspace nimbus has received" in body
    assert "E4 fails</strong>: Workspace nimbus has received a coupon or credit" in body
    assert "Checked against Nimbus (nimbus), picked below" in body
    assert "credits apply to monthly Team invoices only" in body
    assert (
        StartupApplication.objects.values("workspace", "checks", "failing_checks").get() == stored
    )


def test_s3_a_decided_application_says_so_instead_of_a_form(client, db, reviewer, today):
    app = application(workspace=workspace(as_of=date(2026, 1, 2)), as_of=today)
    services.approve_application(app, by=reviewer, as_of=today, credits_scope_confirmed=True)
    client.force_login(reviewer)
    for action in ("approve", "reject", "withdraw", "review"):
        body = client.get(action_url(app, action)).content.decode()
        assert f"Application #{app.pk} was already approved on 10 Feb 2026" in body, action
        assert re.findall(r'<form method="post"', body) == [], action
    client.post(action_url(app, "reject"), {"reason": "Oops"})
    app.refresh_from_db()
    assert app.status == "approved"


def test_s3_a_withdrawn_application_is_not_called_decided_and_unlinked_approval_says_so(
    client, db, reviewer, today
):
    """S3: a withdrawal is not a reviewer's decision: its pages say there is nothing left to
    decide (they said "a decision is final"). The approve page of an application with no
    workspace says the credit goes to the workspace picked (it said "this workspace")."""
    unlinked = application(as_of=today)
    client.force_login(reviewer)
    page = client.get(action_url(unlinked, "approve")).content.decode()
    assert "Approving redeems STARTUP for the workspace you pick below: $25,000.00" in page
    services.withdraw_application(unlinked, by=reviewer, as_of=today, reason="Asked by founder")
    body = client.get(action_url(unlinked, "approve")).content.decode()
    assert f"Application #{unlinked.pk} was withdrawn: there is nothing left to decide." in body
    assert "a decision is final" not in body


def test_r2_queue_dates_are_labelled_date_pickers_and_a_bad_date_is_reported(client, db, reviewer):
    application(company_name="Early Co", as_of=date(2026, 1, 5))
    application(company_name="Late Co", as_of=date(2026, 1, 25))
    client.force_login(reviewer)
    url = reverse("startups:queue")
    body = client.get(url).content.decode()
    assert '<label for="id_submitted_after">Submitted from:</label>' in body
    assert '<label for="id_submitted_before">Submitted until:</label>' in body
    assert body.count('<input type="date"') == 2
    response = client.get(url, {"submitted_after": "2026-01-20", "status": "submitted"})
    assert [a.company_name for a in response.context["page"]] == ["Late Co"]
    response = client.get(url, {"submitted_after": "20/01/2026"})
    body = response.content.decode()
    assert "Enter a date as YYYY-MM-DD." in body
    assert "Nothing is listed until the filters below are fixed." in body
    assert list(response.context["page"]) == []


def test_r2_the_queue_links_a_workspace_or_offers_to_link_one(client, db, reviewer):
    ws = workspace(as_of=date(2026, 1, 2), slug="linked-ws")
    application(company_name="Linked Co", workspace=ws)
    lone = application(company_name="Lone Co")
    client.force_login(reviewer)
    body = client.get(reverse("startups:queue")).content.decode()
    assert reverse("admin:billing_workspace_change", args=[ws.pk]) in body
    change = reverse("admin:startups_startupapplication_change", args=[lone.pk])
    link = f'<a href="{change}#id_workspace" aria-label="Link a workspace to Lone Co">'
    assert f"{link}Link a workspace</a>" in body


def test_r1_r2_support_reads_the_queue_without_reviewers_links_or_names(
    client, db, reviewer, support, finance
):
    """R1, R2 (walk 9): support, who may read applications but not change them, was offered
    each open row's "Link a workspace" (a read-only page); and the "Assigned reviewer" filter
    listed support and finance, whom nobody can assign. Support sees no such link; the filter
    lists the reviewers (and anyone applications are still assigned to)."""
    lone = application(company_name="Lone Co")
    client.force_login(support)
    page = client.get(reverse("startups:queue"))
    assert "Link a workspace" not in page.content.decode()
    assert lone.company_name in page.content.decode()
    listed = set(page.context["filter"].form.fields["assigned_to"].queryset)
    assert reviewer in listed and support not in listed and finance not in listed


def test_s1_the_public_form_preselects_no_country(client, db):
    body = client.get(reverse("startups:apply")).content.decode()
    select = re.search(r'<select name="country".*?</select>', body, re.S).group(0)
    first = re.search(r"<option[^>]*>[^<]*</option>", select).group(0)
    assert first == '<option value="" selected>Choose your country</option>'
    assert "selected>Afghanistan" not in select
    response = client.post(reverse("startups:apply"), {"company_name": "X"})
    assert response.status_code == 200
    assert not StartupApplication.objects.exists()


def test_e3_r4_opening_or_closing_a_country_asks_why_and_keeps_it(client, reviewer, db):
    """E3, R4: opening the program in a country flips E3 for every open application from
    there, and took no reason (walk 7: Russia added as active with one click, and from the list
    with a tick). The add and change pages ask why and keep it; the list no longer edits."""
    from startups.models import EligibleTerritory

    client.force_login(reviewer)
    add = reverse("admin:startups_eligibleterritory_add")
    response = client.post(add, {"country": "RU", "active": "on", "change_reason": ""})
    assert response.status_code == 200  # the form again, with its error
    assert not EligibleTerritory.objects.filter(country="RU").exists()
    client.post(add, {"country": "RU", "active": "on", "change_reason": "Board decision 7"})
    ru = EligibleTerritory.objects.get(country="RU")
    assert ru.active
    assert ru.history.first().history_change_reason == "Program open: Board decision 7"
    change = reverse("admin:startups_eligibleterritory_change", args=[ru.pk])
    client.post(change, {"country": "RU", "change_reason": "Sanctions again"})
    ru.refresh_from_db()
    assert not ru.active
    assert ru.history.first().history_change_reason == "Program closed: Sanctions again"
    listed = client.get(reverse("admin:startups_eligibleterritory_changelist"))
    assert 'name="form-0-active"' not in listed.content.decode()
    # The second attacker's walk: the first version kept no reason, and adding a country
    # listed already, or saving what stands, wrote a change that changed nothing.
    assert ru.history.earliest("history_date").history_change_reason == (
        "Program open: Board decision 7"
    )
    versions = ru.history.count()
    client.post(add, {"country": "RU", "active": "", "change_reason": "Again"})
    client.post(change, {"country": "RU", "change_reason": "No-op"})
    assert ru.history.count() == versions


def test_r2_s5_the_application_page_says_whether_each_email_to_the_applicant_left(
    client, db, reviewer, settings, django_capture_on_commit_callbacks
):
    """R2, S1, S5: reviewers have no outbox (it holds every customer's emails), so the
    application's page lists the emails about it and whether each left: the confirmation sent,
    the rejection not sent (the mail server down) with its error and who can send it again;
    another application's email is not listed."""
    from billing.emails import send_queued_email
    from billing.models import OutboundEmail

    with django_capture_on_commit_callbacks(execute=True):
        app = application(
            company_name="Nimbus Labs", contact_email="ada@nimbus.example", as_of=date(2026, 1, 20)
        )
        application(company_name="Other Co", contact_email="bob@other.example")
    client.force_login(reviewer)
    page = client.get(reverse("admin:startups_startupapplication_change", args=[app.pk]))
    body = re.sub(r"\s+", " ", page.content.decode())
    assert "Emails to the applicant" in body
    sent = OutboundEmail.objects.get(to="ada@nimbus.example")
    assert (
        "Startup application received</td> <td>ada@nimbus.example</td> "
        f"<td>Sent {sent.sent_at:%-d %b %Y, %H:%M} UTC" in body
    )
    assert "bob@other.example" not in body
    assert "admin/billing/outboundemail/" not in body  # no link to an outbox they cannot open

    settings.EMAIL_BACKEND = "tests.billing.test_emails.MailServerDown"
    services.reject_application(
        app, by=reviewer, reason="Outside the program's scope", as_of=date(2026, 1, 21)
    )
    rejection = OutboundEmail.objects.get(kind="startup_application_rejected")
    send_queued_email(rejection.pk, last_try=True)
    body = re.sub(
        r"\s+",
        " ",
        client.get(
            reverse("admin:startups_startupapplication_change", args=[app.pk])
        ).content.decode(),
    )
    assert (
        "Startup application rejected</td> <td>ada@nimbus.example</td> <td><strong>Not "
        "sent</strong>: Given up after 1 try: the mail server closed the connection "
        "(SMTPServerDisconnected: Connection unexpectedly closed) Support or finance can send it "
        "again from the outbox." in body
    )
    assert body.index("Startup application received") < body.index("Startup application rejected")


def test_r2_an_application_without_email_says_so_and_support_follows_the_link(client, db, support):
    """R1, R2: an application entered with no email left yet says so; one whose emails exist
    links each to the outbox for whoever may open it (support)."""
    from billing.models import OutboundEmail

    app = application(company_name="Quiet Co")  # its confirmation queued, not yet sent
    OutboundEmail.objects.filter(object_key=f"application:{app.pk}").delete()
    other = application(company_name="Loud Co")
    client.force_login(support)
    quiet = client.get(reverse("admin:startups_startupapplication_change", args=[app.pk]))
    assert "No email about this application yet." in quiet.content.decode()
    loud = client.get(reverse("admin:startups_startupapplication_change", args=[other.pk]))
    email = OutboundEmail.objects.get(object_key=f"application:{other.pk}")
    body = re.sub(r"\s+", " ", loud.content.decode())
    assert reverse("admin:billing_outboundemail_change", args=[email.pk]) in body
    assert "Waiting to be sent (queued" in body


def test_s5_an_empty_rejection_reason_is_asked_for_as_the_applicant_will_read_it(
    client, db, reviewer, today
):
    """S5 (walk 9): the rejection's reason field says it is sent to the applicant, but left
    empty it answered "the reason is kept in the history"; it says it is sent to them."""
    app = application(company_name="Nimbus Labs", as_of=today)
    client.force_login(reviewer)
    refused = client.post(action_url(app, "reject"), {"reason": "  "})
    assert "Say why: the reason is sent to the applicant." in refused.content.decode()
    app.refresh_from_db()
    assert app.status == "submitted"
