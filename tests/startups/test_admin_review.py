"""S3, S6 in the admin with the real groups: assign, bulk decisions behind a confirmation
page, deal requests entered by staff; support may only look."""

from datetime import date, timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, User
from django.urls import reverse

from billing import admin_toolkit as toolkit
from billing import services as billing
from billing.roles import STARTUP_REVIEWERS
from startups.models import DealRequest, PartnerDeal, StartupApplication
from tests.admin_pages import action, as_shown
from tests.billing.factories import workspace

from .factories import application, renewal_review_due

CHANGELIST = "admin:startups_startupapplication_changelist"


def test_s3_reviewer_assigns_an_application_to_a_colleague(client, db, reviewer):
    colleague = User.objects.create_user("casey", is_staff=True)
    colleague.groups.add(Group.objects.get(name=STARTUP_REVIEWERS))
    app = application()
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "assign"])
    # Walk 7: nothing led to the page; the application's page does.
    change = reverse("admin:startups_startupapplication_change", args=[app.pk])
    assert f'href="{url}"' in client.get(change).content.decode()
    client.post(url, {"reviewer": colleague.pk})
    app.refresh_from_db()
    assert app.assigned_to == colleague
    # Replayed (the second attacker's walk), it wrote a second "Assigned" version.
    versions = app.history.count()
    response = client.post(url, {"reviewer": colleague.pk})
    assert f"Application #{app.pk} is assigned to casey already." in response.content.decode()
    assert app.history.count() == versions
    client.post(reverse(CHANGELIST), {"action": "assign_to_me", ACTION_CHECKBOX_NAME: [app.pk]})
    app.refresh_from_db()
    assert app.assigned_to == reviewer


def test_s3_bulk_approve_asks_for_confirmation_then_decides_each_one(
    client, db, reviewer, django_capture_on_commit_callbacks
):
    good = application(workspace=workspace(as_of=date(2026, 1, 2)))
    failing = application(workspace=workspace(as_of=date(2026, 1, 2)), total_funding=Decimal("9e6"))
    client.force_login(reviewer)
    selected = {"action": "bulk_approve", ACTION_CHECKBOX_NAME: [good.pk, failing.pk]}
    confirm_page = client.post(reverse(CHANGELIST), selected)
    assert confirm_page.status_code == 200
    assert "Yes, approve applications" in confirm_page.content.decode()
    assert StartupApplication.objects.filter(status="approved").count() == 0  # nothing yet

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(CHANGELIST),
            {**selected, "confirm": "yes", "credits_scope_confirmed": "on"},
            follow=True,
        )
    messages = [str(m) for m in response.context["messages"]]
    assert "1 application(s) approved." in messages
    assert any(m.startswith(f"#{failing.pk} ") and "E2" in m for m in messages)
    good.refresh_from_db()
    failing.refresh_from_db()
    assert (good.status, failing.status) == ("approved", "submitted")


def test_s5_bulk_reject_needs_its_reason(client, db, reviewer):
    app = application()
    client.force_login(reviewer)
    selected = {"action": "bulk_reject", ACTION_CHECKBOX_NAME: [app.pk], "confirm": "yes"}
    page = client.post(reverse(CHANGELIST), {**selected, "reason": ""})
    assert "Say why: the reason is sent to the applicant." in page.content.decode()
    client.post(reverse(CHANGELIST), {**selected, "reason": "Over the funding limit"})
    app.refresh_from_db()
    assert (app.status, app.rejection_reason) == ("rejected", "Over the funding limit")


def test_s6_staff_enter_a_deal_request_for_an_accepted_startup(client, db, reviewer):
    """S6, S4: the page offers the startups that are members today: one approved 10 days ago,
    not one approved 400 days ago whose year-one grant has ended."""
    from startups import services

    deal = PartnerDeal.objects.create(company="MailRocket", title="50% off", description="…")
    today = toolkit.today()
    app, ended = (
        services.approve_application(
            application(
                workspace=workspace(as_of=today - timedelta(days=days + 20)),
                as_of=today - timedelta(days=days + 10),
            ),
            by=reviewer,
            as_of=today - timedelta(days=days),
            credits_scope_confirmed=True,
        )
        for days in (10, 400)
    )
    client.force_login(reviewer)
    add = reverse("admin:startups_dealrequest_add")
    offered = client.get(add).context["adminform"].form.fields["application"].queryset
    assert list(offered) == [app]
    refused = client.post(add, {"application": ended.pk, "deal": deal.pk})
    assert "Select a valid choice" in refused.content.decode()
    client.post(add, {"application": app.pk, "deal": deal.pk})
    assert DealRequest.objects.get().requested_on
    again = client.post(add, {"application": app.pk, "deal": deal.pk})
    assert again.status_code == 200  # the form again, with what the service says
    assert f"{app.company_name} already requested “{deal}”." in unescape(again.content.decode())
    assert DealRequest.objects.count() == 1


def _deal_request(reviewer, company="MailRocket"):
    """A member's request for a partner deal, made today (the admin's today)."""
    from startups import services

    today = toolkit.today()
    app = services.approve_application(
        application(workspace=workspace(as_of=today - timedelta(days=30))),
        by=reviewer,
        as_of=today - timedelta(days=10),
        credits_scope_confirmed=True,
    )
    deal = PartnerDeal.objects.create(company=company, title="50% off", description="…")
    return services.request_deal(app, deal=deal, as_of=today)


def test_s6_r4_declining_deal_requests_asks_why_and_keeps_it(client, db, reviewer):
    """S6, R4: "Decline" shows a confirmation page asking why (it declined at once, and the
    request's note stayed empty); without a reason nothing is declined; with one, each
    selected request is declined with it."""
    from startups import services

    request = _deal_request(reviewer)
    app, today = request.application, toolkit.today()
    client.force_login(reviewer)
    changelist = reverse("admin:startups_dealrequest_changelist")
    page = client.post(changelist, action("decline", request)).content.decode()
    assert "Decline deal requests" in page and 'name="reason"' in page
    client.post(changelist, action("decline", request, confirm=True, reason=" "))
    request.refresh_from_db()
    assert request.status == "requested"
    client.post(changelist, action("decline", request, confirm=True, reason="Quota used up"))
    request.refresh_from_db()
    assert (request.status, request.note, request.decided_by) == (
        "declined",
        "Quota used up",
        reviewer,
    )
    with pytest.raises(services.ApplicationError, match="Say why the request is declined"):
        services.decide_deal_request(
            services.request_deal(
                app,
                deal=PartnerDeal.objects.create(company="B", title="B", description="…"),
                as_of=today,
            ),
            by=reviewer,
            fulfil=False,
            as_of=today,
        )


def test_s6_r4_a_deal_request_is_decided_on_its_own_page(client, db, reviewer, support):
    """S6, R4: a request's page offers "Mark fulfilled" and "Decline" while it is open (they
    were only list actions), each behind a confirmation that calls the service; a decline asks
    why. A decided request offers nothing, and its page from an old tab says a decision is
    final. Support, who may only look, gets no buttons and no page."""
    request = _deal_request(reviewer)
    page_url = reverse("admin:startups_dealrequest_change", args=[request.pk])
    fulfil = reverse("admin:startups_dealrequest_decide", args=[request.pk, "fulfil"])
    decline = reverse("admin:startups_dealrequest_decide", args=[request.pk, "decline"])

    client.force_login(support)
    assert fulfil not in client.get(page_url).content.decode()
    assert client.post(decline, {"reason": "no"}).status_code == 403

    client.force_login(reviewer)
    page = client.get(page_url).content.decode()
    assert f'href="{fulfil}"' in page and f'href="{decline}"' in page
    asked = unescape(client.get(decline).content.decode())
    assert 'name="reason"' in asked and "MailRocket" in asked
    client.post(decline, {"reason": " "})
    request.refresh_from_db()
    assert request.status == "requested"
    done = client.post(decline, as_shown(client, decline, {"reason": "Quota used up"}), follow=True)
    assert done.redirect_chain[-1][0] == page_url
    request.refresh_from_db()
    assert (request.status, request.note, request.decided_by, request.decided_on) == (
        "declined",
        "Quota used up",
        reviewer,
        toolkit.today(),
    )
    page = client.get(page_url).content.decode()
    assert fulfil not in page and decline not in page
    stale = unescape(client.post(fulfil).content.decode())
    assert "a decision is final" in stale
    request.refresh_from_db()
    assert request.status == "declined"


def test_s6_marking_a_deal_request_fulfilled_on_its_page_and_from_the_list(client, db, reviewer):
    """S6: fulfilled from its page after a confirmation, or from the list at once (nothing to
    confirm: no money moves), through the same service."""
    one, two = _deal_request(reviewer, "MailRocket"), _deal_request(reviewer, "CloudNest")
    client.force_login(reviewer)
    fulfil = reverse("admin:startups_dealrequest_decide", args=[one.pk, "fulfil"])
    assert 'value="Yes, mark fulfilled"' in client.get(fulfil).content.decode()
    client.post(fulfil, as_shown(client, fulfil))
    changelist = reverse("admin:startups_dealrequest_changelist")
    client.post(changelist, action("fulfil", two))
    assert set(DealRequest.objects.values_list("status", "decided_by")) == {
        ("fulfilled", reviewer.pk)
    }


def test_r2_support_reads_applications_but_cannot_decide(client, db, support):
    app = application()
    client.force_login(support)
    assert (
        client.get(reverse("admin:startups_startupapplication_change", args=[app.pk])).status_code
        == 200
    )
    url = reverse("admin:startups_application_action", args=[app.pk, "reject"])
    assert client.post(url, {"reason": "no"}).status_code == 403
    app.refresh_from_db()
    assert app.status == "submitted"


def test_cr3_reviewer_decides_year_two_on_the_renewal_page(client, db, reviewer, pin_today):
    from coupons.models import CreditGrant

    review = renewal_review_due(by=reviewer, pin_today=pin_today)
    app = review.application
    client.force_login(reviewer)
    url = reverse("admin:startups_renewal_decide", args=[review.pk])
    refused = client.post(
        url,
        as_shown(client, url, {"decision": "confirm", "total_funding": "8000000", "country": "DE"}),
        follow=True,
    )
    assert any("more than the $5,000,000.00 limit" in str(m) for m in refused.context["messages"])
    note = "Checked the cap table, ticket 88"
    granted = client.post(
        url,
        as_shown(
            client,
            url,
            {"decision": "confirm", "total_funding": "2000000", "country": "DE", "note": note},
        ),
        follow=True,
    )
    grant = CreditGrant.objects.get(workspace=app.workspace, year=2)
    assert grant.amount == Decimal("25000.00")
    # The message gives what is granted and for which days: confirmed on 22 January 2027, the
    # day after the anniversary, up to the second anniversary (CR3).
    assert [str(m) for m in granted.context["messages"]] == [
        f"Year two granted to {app.company_name}: $25,000.00 of credit, "
        "22 January 2027 – 20 January 2028."
    ]
    review.refresh_from_db()
    assert (review.status, review.decided_by, review.note) == ("confirmed", reviewer, note)
    assert review.history.first().history_change_reason == f"Confirmed: E2 and E3 pass: {note}"


def test_r4_s3_a_withdrawal_asks_why_and_keeps_it(client, db, reviewer, pin_today):
    import pytest

    from startups import services
    from startups.errors import ApplicationError

    app = application()
    with pytest.raises(ApplicationError, match="Say why the application is withdrawn"):
        services.withdraw_application(app, by=reviewer, as_of=date(2026, 1, 21), reason=" ")
    pin_today(date(2026, 1, 21))
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "withdraw"])
    asked = client.post(url, {"reason": " "})
    assert asked.status_code == 200 and "reason" in asked.context["form"].errors
    app.refresh_from_db()
    assert app.status == "submitted"
    client.post(url, {"reason": "The founder asked: they raised a Series B"})
    app.refresh_from_db()
    assert (app.status, app.decision_note) == (
        "withdrawn",
        "The founder asked: they raised a Series B",
    )
    assert app.history.first().history_change_reason == (
        "Withdrawn on 21 Jan 2026: The founder asked: they raised a Series B"
    )


def test_cr3_the_renewal_page_says_when_year_two_would_run_if_confirmed_today(
    client, db, reviewer, pin_today
):
    """CR3: year two runs from the later of the anniversary and the day it is confirmed, to
    the second anniversary. The renewal page said "Year two starts 2027-01-21" (the
    anniversary) even when opened later, so a reviewer confirming on 2027-02-03 was told a
    start the grant did not have; it named no amount, kept raw figures on the decided page
    and still offered its form once decided."""
    from billing import services as billing
    from startups import services
    from startups.models import RenewalReview

    services.approve_application(
        application(workspace=workspace(as_of=date(2026, 1, 2)), company_name="Nimbus Labs"),
        by=reviewer,
        as_of=date(2026, 1, 21),
        credits_scope_confirmed=True,
    )
    billing.run_billing(as_of=date(2027, 1, 1))
    review = RenewalReview.objects.get()
    client.force_login(reviewer)
    url = reverse("admin:startups_renewal_decide", args=[review.pk])

    pin_today(date(2027, 1, 2))  # the review is open 30 days before the anniversary
    read_early = as_shown(
        client, url, {"decision": "confirm", "total_funding": "2000000", "country": "DE"}
    )
    early = client.get(url).content.decode()
    assert (
        "Nimbus Labs joined the program on 21 Jan 2026; its first year ends 20 Jan 2027." in early
    )
    assert (
        "Confirmed today, year two grants $25,000.00 of credit, valid from 21 Jan 2027 to "
        "20 Jan 2028" in early
    )
    billing.run_billing(as_of=date(2027, 2, 2))
    pin_today(date(2027, 2, 3))
    late = client.get(url).content.decode()
    assert "valid from 3 Feb 2027 to 20 Jan 2028" in late
    # The page read on 2 January (valid from 21 Jan 2027) confirmed on 3 February grants
    # nothing: it shows the days a confirmation grants now.
    stale = client.post(url, read_early).content.decode()
    assert "changed since this page was opened" in stale
    assert "valid from 3 Feb 2027 to 20 Jan 2028" in stale
    assert not review.application.workspace.credit_grants.filter(year=2).exists()
    client.post(
        url,
        as_shown(client, url, {"decision": "confirm", "total_funding": "2000000", "country": "DE"}),
    )
    grant = review.application.workspace.credit_grants.get(year=2)
    assert (grant.valid_from, grant.valid_until) == (date(2027, 2, 3), date(2028, 1, 21))

    decided = client.get(url).content.decode()
    assert "Decided on 3 Feb 2027: Confirmed: year two granted." in decided
    assert 'name="decision"' not in decided
    page = client.get(reverse("admin:startups_renewalreview_change", args=[review.pk]))
    # Once, formatted: the raw field stood beside it as "2000000.00".
    assert page.content.decode().count("2,000,000.00") == 1
    assert "2000000.00" not in page.content.decode()


def test_cr3_w1_the_renewal_page_of_a_workspace_closed_since_approval_offers_only_decline(
    client, db, reviewer, support, pin_today
):
    """W1: a closure ended the program; year two cannot be confirmed, reopened or not. The
    renewal page says so first and offers only Decline."""
    from billing import services as billing
    from startups import services
    from startups.models import RenewalReview

    ws = workspace(as_of=date(2026, 1, 2), name="Nimbus")
    services.approve_application(
        application(workspace=ws, company_name="Nimbus Labs"),
        by=reviewer,
        as_of=date(2026, 1, 21),
        credits_scope_confirmed=True,
    )
    billing.run_billing(as_of=date(2026, 12, 22))
    review = RenewalReview.objects.get()
    billing.close_workspace(ws, by=support, reason="Asked to delete", as_of=date(2026, 12, 28))
    billing.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 12, 29))
    billing.run_billing(as_of=date(2027, 1, 4))
    pin_today(date(2027, 1, 5))
    client.force_login(reviewer)
    url = reverse("admin:startups_renewal_decide", args=[review.pk])
    page = unescape(client.get(url).content.decode())
    assert (
        f"Year two is refused: Nimbus ({ws.slug}) was closed on 28 Dec 2026, which ended its "
        "program and lapsed its credit (W1). Decline this renewal instead."
    ) in page
    assert 'value="confirm"' not in page and "Confirmed today" not in page
    crafted = client.post(url, {"decision": "confirm", "total_funding": "1", "country": "DE"})
    assert crafted.status_code == 200 and "decision" in crafted.context["form"].errors
    client.post(url, as_shown(client, url, {"decision": "decline", "note": "Closed in December"}))
    review.refresh_from_db()
    assert review.status == RenewalReview.Status.DECLINED
    assert not ws.credit_grants.filter(year=2).exists()


def test_s4_the_approve_page_says_what_approving_grants_and_to_whom_it_writes(
    client, db, reviewer, pin_today
):
    """S4, CR1, C7: the approve page named neither the credit the approval grants nor who gets
    the acceptance email. It states the coupon, the year-one credit and its days, and the
    address; for an active partner with its own amount, that amount."""
    from coupons.models import AcceleratorPartner

    pin_today(date(2026, 3, 2))
    app = application(
        workspace=workspace(as_of=date(2026, 1, 2)),
        company_name="Nimbus Labs",
        contact_email="ada@nimbus.example",
    )
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "approve"])
    page = unescape(client.get(url).content.decode())
    assert (
        "Approving redeems STARTUP for this workspace: $25,000.00 of credit for year one, "
        "valid from 2 Mar 2026 to 1 Mar 2027, and the acceptance goes to ada@nimbus.example."
    ) in page

    harbor = AcceleratorPartner.objects.create(
        name="Harbor Labs",
        contact_name="Ada",
        contact_email="ada@harbor.example",
        status=AcceleratorPartner.Status.ACTIVE,
        credit_amount=Decimal("50000.00"),
        applied_on=date(2026, 1, 1),
    )
    StartupApplication.objects.filter(pk=app.pk).update(partner=harbor)
    page = unescape(client.get(url).content.decode())
    assert "$50,000.00 of credit for year one" in page
    response = client.post(
        url,
        as_shown(
            client,
            url,
            {"workspace": app.workspace_id, "note": "", "credits_scope_confirmed": "on"},
        ),
    )
    assert response.status_code == 302
    app.refresh_from_db()
    grant = app.workspace.credit_grants.get(year=1)  # what the page said is what was granted
    assert (app.status, grant.amount, grant.valid_from, grant.valid_until) == (
        "approved",
        Decimal("50000.00"),
        date(2026, 3, 2),
        date(2027, 3, 2),
    )


def test_c7_the_approve_page_warns_of_a_partner_named_but_not_linked_or_inactive(
    client, db, reviewer, pin_today
):
    """C7, CR1: the applicant typed "northstar accelerator " as its partner; Northstar
    Accelerator is an active partner granting $50,000.00, but no partner was linked, and the
    approve page offered the program's $25,000.00 without a word (walk 7). It now names the
    partner and its amount; a linked partner that is inactive gives the program's amount, and
    the page says so too."""
    from coupons.models import AcceleratorPartner

    pin_today(date(2026, 3, 2))
    northstar = AcceleratorPartner.objects.create(
        name="Northstar Accelerator",
        contact_name="Ada",
        contact_email="ada@northstar.example",
        status=AcceleratorPartner.Status.ACTIVE,
        credit_amount=Decimal("50000.00"),
        applied_on=date(2026, 1, 1),
    )
    app = application(
        workspace=workspace(as_of=date(2026, 1, 2)), partner_name="northstar accelerator "
    )
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "approve"])
    page = " ".join(unescape(client.get(url).content.decode()).split())
    assert "$25,000.00 of credit for year one" in page
    assert (
        "The applicant named “northstar accelerator” as its partner, and no partner is linked: "
        "Northstar Accelerator is an active partner, and linked it would grant $50,000.00. Link "
        "it on the application's page first if it is theirs (C7)."
    ) in page
    data = {"workspace": app.workspace_id, "note": "", "credits_scope_confirmed": "on"}
    read_at_25_000 = as_shown(client, url, data)
    StartupApplication.objects.filter(pk=app.pk).update(partner=northstar)
    # The second attacker's walk: the page opened at $25,000.00 approved at $50,000.00 once a
    # colleague linked the partner. It is refused now, and shown again.
    client.post(url, read_at_25_000)
    app.refresh_from_db()
    assert app.status == "submitted"
    AcceleratorPartner.objects.filter(pk=northstar.pk).update(
        status=AcceleratorPartner.Status.INACTIVE
    )
    page = " ".join(unescape(client.get(url).content.decode()).split())
    assert "$25,000.00 of credit for year one" in page
    assert (
        "The linked partner Northstar Accelerator is inactive: its own coupon and amount do not "
        "apply, the program's do (C7)."
    ) in page


def test_s3_a_decided_application_offers_no_save_button(client, db, reviewer, pin_today):
    """S3: a decided application is read-only (its answers as sent, its links fixed), yet
    its page offered "Save", "Save and add another" and "Save and continue editing". Open,
    it offers them for its links."""
    from startups import services

    pin_today(date(2026, 1, 21))
    app = application(workspace=workspace(as_of=date(2026, 1, 2)))
    client.force_login(reviewer)
    url = reverse("admin:startups_startupapplication_change", args=[app.pk])
    assert 'name="_save"' in client.get(url).content.decode()
    services.reject_application(app, by=reviewer, reason="Out of scope", as_of=date(2026, 1, 21))
    page = client.get(url).content.decode()
    for button in ('name="_save"', 'name="_continue"', 'name="_addanother"'):
        assert button not in page, button
    # Walk 7: nor a "Why" box for a change nothing on the page can make.
    assert 'name="change_reason"' not in page


def test_r4_s2_an_applications_history_version_reads_its_checks(client, db, reviewer):
    """The version page showed the checks as stored: [{'id': 'E1', 'passed': True, ...}]."""
    app = application()
    record = app.history.earliest("history_date")
    client.force_login(reviewer)
    url = reverse(
        "admin:startups_startupapplication_simple_history", args=[app.pk, record.history_id]
    )
    page = unescape(client.get(url).content.decode())
    first = app.checks[0]
    assert f"E1 {'pass' if first['passed'] else 'fail'}: {first['reason']}" in page
    assert "'passed'" not in page and "[{" not in page
    when = record.history_date
    assert f"as it was on {when.day} {when:%b %Y} at {when:%H:%M} UTC" in page


def test_w1_s7_the_approve_page_of_a_closed_workspace_says_it_is_closed(
    client, db, reviewer, support, pin_today
):
    """W1, S3: the workspace linked to the application was closed on 10 February 2026: the
    approve page warned it "is on Free" and asked to tick the confirmation, and only the
    approval said it was closed (walk 7). The page says so first, and no Free warning."""
    pin_today(date(2026, 3, 2))
    ws = workspace(as_of=date(2026, 1, 2), name="Gone")
    billing.close_workspace(ws, by=support, reason="Asked to delete", as_of=date(2026, 2, 10))
    app = application(workspace=ws)
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "approve"])
    page = " ".join(unescape(client.get(url).content.decode()).split())
    assert (
        "Gone was closed on 10 Feb 2026: approving it is refused (W1); support can reopen it, "
        "or pick another workspace below."
    ) in page
    assert "Tick the confirmation below to approve anyway" not in page


def test_s7_an_approval_without_the_confirmation_names_the_box_once(
    client, db, reviewer, pin_today
):
    """S7 (the third walk): submitted without the tick, the page said the Free warning twice,
    once above the form and once more as the refusal. The warning stays above the form, and
    the box itself says it must be ticked; nothing is approved."""
    pin_today(date(2026, 3, 2))
    app = application(workspace=workspace(as_of=date(2026, 1, 2), name="Nimbus"))
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "approve"])
    refused = client.post(url, as_shown(client, url, {"workspace": app.workspace_id, "note": ""}))
    page = " ".join(unescape(refused.content.decode()).split())
    assert refused.context["form"].errors == {
        "credits_scope_confirmed": [
            "Tick this to approve: the credit reaches monthly Team invoices only."
        ]
    }
    assert page.count("approve anyway") == 1  # the warning above the form, once
    assert [str(m) for m in refused.context["messages"]] == []
    app.refresh_from_db()
    assert app.status == "submitted"


def test_s1_s4_the_review_pages_say_when_the_contact_is_not_at_the_workspaces_email_domain(
    client, db, reviewer, pin_today
):
    """S1: the public form takes any workspace's slug. A stranger (m@attacker.example) applied
    for Orbit's workspace, whose billing email is at orbit.example: the application and its
    approve page tell the reviewer to make sure the applicant speaks for the workspace, whose
    credit approving grants and whose name and credit the acceptance sends to the contact
    (the attacker audit). Before, nothing compared the two. An applicant at the workspace's
    domain (any case) gets no note."""
    pin_today(date(2026, 1, 21))
    ws = workspace(as_of=date(2026, 1, 2), name="Orbit", billing_email="billing@orbit.example")
    stranger = application(workspace=ws, contact_email="m@attacker.example")
    client.force_login(reviewer)
    note = (
        "The contact's email, m@attacker.example, is not at orbit.example, the domain of "
        "Orbit's billing email: make sure the applicant speaks for this workspace before "
        "approving. The acceptance goes to the contact."
    )

    def page(url):
        return " ".join(unescape(client.get(url).content.decode()).split())

    approve_url = reverse("admin:startups_application_action", args=[stranger.pk, "approve"])
    assert note in page(approve_url)
    assert note in page(reverse("admin:startups_startupapplication_change", args=[stranger.pk]))

    vega = workspace(as_of=date(2026, 1, 2), name="Vega", billing_email="billing@vega.example")
    founder = application(workspace=vega, contact_email="Ada@Vega.Example")
    approve_url = reverse("admin:startups_application_action", args=[founder.pk, "approve"])
    assert "is not at" not in page(approve_url)


def test_cr3_r4_a_declined_renewal_keeps_the_figures_the_reviewer_checked(
    client, db, reviewer, pin_today
):
    """CR3, R4: year two declined because the startup now raised $7,000,000.00 (E2 fails):
    the figures typed were thrown away and only the note kept, while a confirmation keeps
    them (walk 7). A decline keeps them too."""
    from billing import services as billing
    from startups import services
    from startups.models import RenewalReview

    services.approve_application(
        application(workspace=workspace(as_of=date(2026, 1, 2))),
        by=reviewer,
        as_of=date(2026, 1, 21),
        credits_scope_confirmed=True,
    )
    billing.run_billing(as_of=date(2027, 1, 1))
    review = RenewalReview.objects.get()
    pin_today(date(2027, 1, 2))
    client.force_login(reviewer)
    url = reverse("admin:startups_renewal_decide", args=[review.pk])
    client.post(
        url,
        as_shown(
            client,
            url,
            {
                "decision": "decline",
                "total_funding": "7000000",
                "country": "US",
                "note": "Raised a Series B",
            },
        ),
    )
    review.refresh_from_db()
    assert (review.status, review.total_funding, review.country, review.note) == (
        "declined",
        Decimal("7000000.00"),
        "US",
        "Raised a Series B",
    )
