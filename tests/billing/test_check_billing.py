"""`check_billing` and the finance panel on the admin index: for the person on call, whether
the daily billing run happened, a month close is unfinished or set workspaces aside, and how
many emails failed or are stuck, and whether a Celery worker ran the beat's heartbeat lately;
exit code 1 when something needs attention."""

import re
import socket
import time
from datetime import UTC, date, datetime, timedelta
from html import unescape
from io import StringIO
from itertools import count
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from billing import models, services, tasks
from billing.health import record_worker_heartbeat
from billing.models import Invoice, MonthClose, OutboundEmail, Usage
from billing.templatetags import billing_health as health_tag
from tests.services import require_postgres, require_redis, requires_redis
from tests.workers import worker_on_the_test_database

from .factories import paid_monthly, workspace


def check_billing():
    """(exit code, everything printed)."""
    out = StringIO()
    try:
        call_command("check_billing", stdout=out)
    except CommandError as exc:
        return exc.returncode, f"{out.getvalue()}{exc}"
    return 0, out.getvalue()


def today():
    return timezone.now().date()


@pytest.fixture
def workspace_since_two_months_ago(db):
    return workspace(as_of=today() - timedelta(days=70))


_emails = count(1)


def email(status, *, age=timedelta(0)):
    row = OutboundEmail.objects.create(
        kind="test", object_key=f"t:{next(_emails)}", to="a@example.com", subject="s", body_text="b"
    )
    OutboundEmail.objects.filter(pk=row.pk).update(status=status, created_at=timezone.now() - age)


def test_all_clear_on_a_fresh_install(db):
    code, out = check_billing()

    assert code == 0
    assert "Billing is up to date." in out


def test_all_clear_once_the_clock_ran_through_yesterday(workspace_since_two_months_ago):
    services.run_billing(as_of=today() - timedelta(days=1))

    code, out = check_billing()

    assert code == 0, out
    assert "Billing clock: OK" in out
    assert "Billing is up to date." in out


def test_a_clock_that_ran_reads_no_workspace(workspace_since_two_months_ago):
    """D1: the health check (the finance panel, `check_billing`) read the first sign-up,
    `MIN(created_on)` over every workspace (15 ms at 150,000; bench/staff_walk.py), to tell
    a clock that never ran from one with nothing to do. A clock that processed the due day
    answers without it; one behind still reads it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.selectors import billing_health, clock_due_day

    now = timezone.now()
    with CaptureQueriesContext(connection) as behind:
        assert not billing_health(due_day=clock_due_day(now), now=now).clock_ran
    services.run_billing(as_of=today() - timedelta(days=1))
    with CaptureQueriesContext(connection) as ran:
        assert billing_health(due_day=clock_due_day(now), now=now).clock_ran

    def first_sign_up(queries):
        return [q["sql"] for q in queries if '"billing_workspace"."created_on"' in q["sql"]]

    assert first_sign_up(behind.captured_queries)
    assert not first_sign_up(ran.captured_queries)


def test_a_clock_that_did_not_run_yesterday_needs_attention(workspace_since_two_months_ago):
    two_days_ago = today() - timedelta(days=2)
    services.run_billing(as_of=two_days_ago - timedelta(days=1))

    code, out = check_billing()

    assert code == 1
    assert "Billing clock: BEHIND" in out
    assert "The billing clock has not processed" in out
    assert str(two_days_ago - timedelta(days=1)) in out  # the last day it did process


def test_an_unfinished_month_close_needs_attention(db):
    MonthClose.objects.create(month=date(2026, 3, 1), closed_on=date(2026, 4, 1), locks_done=True)

    code, out = check_billing()

    assert code == 1
    assert "Unfinished month closes: 2026-03" in out
    assert "Month close started and not finished: 2026-03." in out


def test_failed_emails_and_emails_pending_over_an_hour_need_attention(db):
    email("failed")
    email("failed", age=timedelta(days=3))
    email("pending", age=timedelta(hours=2))
    email("pending", age=timedelta(minutes=10))  # on its way: not stuck
    email("sent", age=timedelta(days=1))

    code, out = check_billing()

    assert code == 1
    assert "Emails failed: 2; pending over an hour: 1" in out
    assert "2 email(s) failed." in out
    assert "1 email(s) pending for more than 1 hour(s)." in out


def test_an_email_pending_for_minutes_is_not_stuck(db):
    email("pending", age=timedelta(minutes=10))

    code, out = check_billing()

    assert code == 0, out


def test_u2_usage_import_jobs_no_worker_is_on_need_attention(db):
    """A large usage file's job queued for three hours (its hand-over lost with the broker) and
    one running for three (its worker died, its message lost: no worker runs that long) were
    never reported: "Billing is up to date.", while neither file's figures reach the bills.
    A job queued or running for minutes is on its way."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing import usage_import

    def job(status, age):
        upload = SimpleUploadedFile("big.csv", b"workspace,month,mtus\n")
        row = usage_import.start_import_job(upload, by=None, run_later=lambda job_id: None)
        then = timezone.now() - age
        models.UsageImportJob.objects.filter(pk=row.pk).update(
            status=status, created_at=then, started_at=then
        )

    job("running", timedelta(minutes=30))
    job("queued", timedelta(minutes=5))
    assert check_billing()[0] == 0
    job("queued", timedelta(hours=3))
    job("running", timedelta(hours=3))

    code, out = check_billing()

    assert code == 1
    assert "Usage import jobs with no worker on them: 2" in out
    assert "2 usage import job(s) with no worker on them" in out


def test_i6_a_workspace_set_aside_by_a_close_needs_attention(workspace_since_two_months_ago):
    close = MonthClose.objects.create(
        month=date(2026, 3, 1), closed_on=date(2026, 4, 1), finished=True
    )
    models.SetAsideInvoice.objects.create(
        close=close,
        workspace=workspace_since_two_months_ago,
        error="amount too large",
        first_seen_on=date(2026, 4, 1),
    )

    code, out = check_billing()

    assert code == 1
    assert "Set-aside workspaces: 1" in out
    assert "1 workspace(s) set aside by a month close (I6)." in out


def test_d1_m1_the_close_list_says_when_the_next_close_runs_from_the_billing_clock(
    client, finance, pin_today
):
    """The close list read the next close from the calendar: on a copy whose clock had run
    through 1 Feb 2027 it said "December 2026 closes on 2 Jan 2027" above December's finished
    close, and a clock left behind got the same line, not a word of the overdue close
    (finance's walk 8). It reads the billing clock: the month the clock is in closes the day
    after its next 1st; when that day has passed, the close is overdue and the line says how
    far the clock has got."""
    client.force_login(finance)
    url = reverse("admin:billing_monthclose_changelist")
    pin_today(date(2026, 12, 5))
    assert "November 2026 closes on 2 Dec 2026" not in client.get(url).content.decode()
    assert "December 2026 closes on 2 Jan 2027." in client.get(url).content.decode()

    paid_monthly(date(2026, 10, 1))
    services.run_billing(as_of=date(2026, 11, 28))  # behind: a worker down since
    behind = client.get(url).content.decode()
    assert "November 2026 closes when the clock processes 1 Dec 2026" in behind
    assert "overdue: the billing clock has processed every day through 28 Nov 2026" in behind

    services.run_billing(as_of=date(2026, 11, 30))  # stopped on a month's last day
    stopped = client.get(url).content.decode()
    assert "November 2026 closes when the clock processes 1 Dec 2026" in stopped
    assert "overdue: the billing clock has processed every day through 30 Nov 2026" in stopped
    pin_today(date(2026, 12, 1))  # the night of the close: not overdue yet
    assert "November 2026 closes on 2 Dec 2026." in client.get(url).content.decode()
    pin_today(date(2026, 12, 5))

    services.run_billing(as_of=date(2027, 2, 1))  # a copy run ahead of the calendar
    ahead = client.get(url).content.decode()
    assert "February 2027 closes on 2 Mar 2027." in ahead
    assert "December 2026 closes" not in ahead and "overdue" not in ahead


def test_i6_a_workspace_whose_months_wait_on_one_set_aside_counts_once(db):
    """February's invoice set aside (10^13 MTUs), March's waits for it: one workspace, two
    entries, and the panel and check_billing said "Set-aside workspaces: 2"."""
    paid_monthly(date(2026, 1, 1))
    stuck = paid_monthly(date(2026, 1, 1))
    Usage.objects.create(workspace=stuck, month=date(2026, 2, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 4, 2))
    assert models.SetAsideInvoice.objects.filter(resolved_on=None).count() == 2

    _, out = check_billing()

    assert "Set-aside workspaces: 1" in out
    assert "1 workspace(s) set aside by a month close (I6)." in out
    # run_billing said "2 workspace(s) set aside" and listed the slug twice, without the months
    # (the operator's walk 8).
    ran = StringIO()
    call_command("run_billing", "--as-of", "2026-04-02", stdout=ran)
    assert "1 workspace(s) set aside, not billed yet (I6): 2 invoice(s)" in ran.getvalue()
    assert f"  {stuck.slug}, February 2026: the invoice's subtotal" in ran.getvalue()
    assert f"  {stuck.slug}, March 2026: waits for its invoice for February 2026" in ran.getvalue()


def test_finance_sees_the_billing_panel_on_the_admin_index(client, finance):
    MonthClose.objects.create(month=date(2026, 3, 1), closed_on=date(2026, 4, 1))
    email("failed")
    client.force_login(finance)

    page = client.get("/admin/").content.decode()

    assert 'id="billing-health"' in page
    assert "Billing run: needs attention" in page
    assert "<strong>March 2026</strong>" in page  # as the month close list names it
    failed = reverse("admin:billing_outboundemail_changelist") + "?status__exact=failed"
    assert f'<a href="{failed}">Emails failed</a></th><td><strong>1</strong>' in page


def test_r1_r2_support_and_reviewers_see_what_waits_for_them_on_the_index(
    client, support, reviewer, finance, settings, tmp_path
):
    """Only finance had "Waiting for you": support saw nothing of a non-profit proof waiting
    for it or an email that failed, reviewers nothing of a year-two review, a partner's
    application or a deal request. Each is counted for whoever acts on it, linked to the list
    of exactly those; what is decided already is not counted."""
    from django.core.files.base import ContentFile

    from billing.demo import certificate_pdf
    from coupons import services as coupons
    from startups.models import PartnerDeal
    from startups.services import approve_application, request_deal
    from tests.coupons.factories import partner
    from tests.startups.factories import application, renewal_review_due

    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path
    ws = paid_monthly(date(2026, 1, 1), slug="acme")
    proof = ContentFile(certificate_pdf("Non-profit status"), name="proof.pdf")
    coupons.submit_nonprofit_proof(ws, document=proof, by=support, as_of=date(2026, 1, 5))
    for status in ("failed", "failed", "sent"):
        OutboundEmail.objects.create(
            kind="trial_reminder",
            object_key=f"x:{status}:{OutboundEmail.objects.count()}",
            to="a@example.com",
            subject="s",
            body_text="b",
            status=status,
        )
    renewal_review_due(by=reviewer)
    partner(None, name="Launchpad", status="applied")
    partner(None, name="Active already", status="active")
    deal = PartnerDeal.objects.create(company="MailRocket", title="50% off", description="…")
    member = approve_application(
        application(workspace=workspace(as_of=date(2027, 1, 22)), as_of=date(2027, 1, 22)),
        by=reviewer,
        as_of=date(2027, 1, 22),
        credits_scope_confirmed=True,
    )
    request_deal(member, deal=deal, as_of=date(2027, 1, 22))

    def waiting(user):
        client.force_login(user)
        page = client.get("/admin/").content.decode()
        rows = re.findall(r'<th scope="row"><a href="([^"]+)">Waiting for you: ([^<]+)</a>', page)
        return {what: client.get(unescape(url)).context["cl"].result_count for url, what in rows}

    assert waiting(support) == {"1 non-profit proof(s)": 1, "2 failed email(s) to send again": 2}
    assert waiting(reviewer) == {
        "1 year-two review(s)": 1,
        "1 partner application(s)": 1,
        "1 deal request(s)": 1,
    }
    assert "2 failed email(s) to send again" in waiting(finance)  # finance resends them too


def test_r3_x4_k3_finance_sees_what_waits_for_its_decision_on_the_index(client, finance, support):
    """Finance had no work queue: the index showed the billing run, not the certificates and
    credit-note requests waiting for it (finance's walk 8). It counts them, each linked to the
    list of exactly those; support, who decides neither, sees neither."""
    from tests.billing.factories import certificate

    ws = paid_monthly(date(2026, 1, 1), slug="acme")
    services.run_billing(as_of=date(2026, 2, 1))
    waiting = [
        certificate(ws, "CA", on=date(2026, 2, 2)),
        certificate(ws, "NY", on=date(2026, 2, 2)),
    ]
    services.start_exemption_review(waiting[1], by=finance, as_of=date(2026, 2, 3))
    decided = certificate(ws, "TX", on=date(2026, 2, 2))
    services.reject_exemption(decided, by=finance, reason="Expired", as_of=date(2026, 2, 3))
    services.request_credit_note(
        Invoice.objects.get(workspace=ws),
        by=support,
        amount="10.00",
        reason="Outage",
        as_of=date(2026, 2, 3),
    )
    client.force_login(finance)

    page = client.get("/admin/").content.decode()

    rows = dict(re.findall(r'<th scope="row"><a href="([^"]+)">Waiting for you: ([^<]+)</a>', page))
    assert sorted(rows.values()) == [
        "1 credit-note request(s)",
        "2 tax-exemption certificate(s)",
    ]
    listed = {
        text: client.get(unescape(url)).context["cl"].result_count for url, text in rows.items()
    }
    assert listed == {"2 tax-exemption certificate(s)": 2, "1 credit-note request(s)": 1}
    client.force_login(support)
    assert "Waiting for you" not in client.get("/admin/").content.decode()


def test_the_panel_links_to_the_unfinished_closes(client, finance):
    MonthClose.objects.create(month=date(2026, 3, 1), closed_on=date(2026, 4, 1))
    MonthClose.objects.create(month=date(2026, 2, 1), closed_on=date(2026, 3, 1), finished=True)
    client.force_login(finance)

    page = client.get("/admin/billing/monthclose/?finished__exact=0")

    assert page.status_code == 200
    assert page.context["cl"].result_count == 1


def test_support_does_not_see_the_billing_panel(client, support):
    client.force_login(support)

    page = client.get("/admin/").content.decode()

    assert 'id="billing-health"' not in page


def test_i6_the_close_page_lists_as_not_billed_only_what_still_waits(db, client, finance):
    """I6: January's invoices of two workspaces set aside on 1 February (10^13 MTUs: beyond
    what an invoice can hold); one figure fixed and billed by the run of 2 February. The page
    still listed it, with its old error, under "set aside (not billed yet)". Now only the one
    still waiting is there; the billed one is listed apart, with the day it was billed."""
    billed, waiting = (paid_monthly(date(2026, 1, 1), slug=slug) for slug in ("billed", "waiting"))
    for ws in (billed, waiting):
        Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    # Support's fix, through the service (I6 takes a set-aside workspace's closed month).
    services.record_usage(billed, month=date(2026, 1, 1), mtus=12_000, as_of=date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 2, 2))

    client.force_login(finance)
    close = MonthClose.objects.get()
    page = client.get(reverse("admin:billing_monthclose_change", args=[close.pk]))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert "Month: January 2026" in text  # by its name, as the list names it
    waiting_part, billed_part = text.split("not billed yet", 1)[1].split("billed since", 1)
    assert "(waiting)" in waiting_part and "(billed)" not in waiting_part
    assert "(billed)" in billed_part and "2 Feb 2026" in billed_part
    assert "(waiting)" not in billed_part
    # Each row is named by its workspace and month; the error, a column of its own, was also
    # its title, cut at 60 characters ("…is beyond what an invoice can hold ($9,99"; finance's
    # walk 8).
    assert re.search(r"Invoice of [^(]+\(waiting\) for January 2026", text)
    assert text.count("beyond what an invoice can hold") == 2  # each row's error, once


def test_i6_finance_tries_the_set_aside_invoices_again_now_once_support_fixed_a_cause(
    db, client, finance, support, reviewer, monkeypatch
):
    """I6: "a rerun after the cause is fixed issues the missing one". Support fixed a figure on
    2 February at 10:00; the invoice waited for the next daily run, after midnight, and nobody
    on staff could ask for it sooner (an operator could, with `run_billing`). Now finance
    tries the close's set-aside invoices again from its page: the fixed one is issued, dated
    1 February as the close's others (140.00: 120.00 and 2,000 MTUs over), once; the other
    stays set aside with its error. Support and reviewers have no such right (R1–R3)."""
    from billing import admin_toolkit
    from billing.models import SetAsideInvoice
    from tests.admin_pages import as_shown

    monkeypatch.setattr(admin_toolkit, "today", lambda: date(2026, 2, 2))
    fixed, waiting = (paid_monthly(date(2026, 1, 1), slug=slug) for slug in ("fixed", "waiting"))
    for ws in (fixed, waiting):
        Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    services.record_usage(fixed, month=date(2026, 1, 1), mtus=12_000, as_of=date(2026, 2, 2))
    close = MonthClose.objects.get()
    page_url = reverse("admin:billing_monthclose_change", args=[close.pk])
    retry_url = reverse("admin:billing_monthclose_retry", args=[close.pk])

    for other in (support, reviewer):
        client.force_login(other)
        assert client.get(retry_url).status_code == 403
        assert client.post(retry_url, {}).status_code == 403
    assert not Invoice.objects.exists()

    client.force_login(finance)
    assert f'href="{retry_url}"' in client.get(page_url).content.decode()
    page = unescape(client.get(retry_url).content.decode())
    assert "Each whose cause is fixed is issued, dated 1 Feb 2026 as the close's others" in page
    assert re.search(
        r"<li>Workspace \d+ \(fixed\): the invoice's subtotal of \$100,000,000,02", page
    )
    response = client.post(retry_url, as_shown(client, retry_url), follow=True)
    assert "Tried again: 1 invoice(s) issued; 1 still set aside" in unescape(
        response.content.decode()
    )
    invoice = Invoice.objects.get()
    assert (invoice.workspace, invoice.issue_date, invoice.total) == (
        fixed,
        date(2026, 2, 1),
        invoice.subtotal,
    )
    assert invoice.subtotal == 140
    entries = dict(SetAsideInvoice.objects.values_list("workspace__slug", "resolved_on"))
    assert entries == {"fixed": date(2026, 2, 2), "waiting": None}

    # Again: nothing twice (I4); the night's run finds nothing more to issue either.
    client.post(retry_url, as_shown(client, retry_url))
    services.run_billing(as_of=date(2026, 2, 2))
    assert Invoice.objects.count() == 1

    # Once nothing waits, the page offers nothing.
    Usage.objects.filter(workspace=waiting).update(mtus=0)
    client.post(retry_url, as_shown(client, retry_url))
    assert Invoice.objects.count() == 2
    assert f'href="{retry_url}"' not in client.get(page_url).content.decode()
    page = unescape(client.get(retry_url).content.decode())
    assert "Nothing of January 2026 is set aside: every invoice is issued." in page


def test_i4_i6_a_retry_that_waited_for_the_workspace_while_another_billed_it_leaves_it(
    db, monkeypatch
):
    """Two retries at once (finance's from the page on 2 February, the daily run's of 3
    February): each reads the waiting entries, then holds the workspace in turn. The second
    issued nothing twice (I4: the invoice exists), but marked the entry billed on 3 February,
    over the first's 2 February: the close's page then gave the wrong day. Here the other
    retry runs just as this one takes the workspace; this one reads the entry again and leaves
    it."""
    from billing import month_close
    from billing.models import SetAsideInvoice, Workspace

    ws = paid_monthly(date(2026, 1, 1), slug="fixed")
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    Usage.objects.filter(workspace=ws).update(mtus=12_000)
    manager = type(Workspace.objects)
    real_for_change, raced = manager.for_change, []

    def for_change(self, workspace):
        if not raced:
            raced.append("the other")
            raced[0] = month_close.retry_set_aside(as_of=date(2026, 2, 2))
        return real_for_change(self, workspace)

    monkeypatch.setattr(manager, "for_change", for_change)
    counts = month_close.retry_set_aside(as_of=date(2026, 2, 3))
    assert raced[0]["set_aside_billed"] == 1 and counts["set_aside_billed"] == 0
    assert Invoice.objects.filter(workspace=ws).count() == 1
    assert SetAsideInvoice.objects.get().resolved_on == date(2026, 2, 2)


def test_i6_d1_a_retry_before_the_day_a_clock_run_ahead_set_it_aside_is_billed_on_that_day(db):
    """D1, I6: a copy's clock was run ahead of the calendar (`run_billing --allow-future`)
    through 1 February 2026, whose close set a workspace aside (usage of 10^13 MTUs), while the
    calendar says 20 January. Finance fixes the figure (12,000 MTUs) and tries again "today":
    the invoice is issued, dated 1 February as the close's others, and the entry is billed on 1
    February, the day it was set aside, not on 20 January, before it was. Before, the close's
    page said it was billed 12 days before it was first set aside."""
    from billing import month_close
    from billing.models import SetAsideInvoice

    ws = paid_monthly(date(2026, 1, 1), slug="ahead")
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    Usage.objects.filter(workspace=ws).update(mtus=12_000)

    counts = month_close.retry_set_aside(as_of=date(2026, 1, 20))

    assert counts["set_aside_billed"] == 1
    assert Invoice.objects.get(workspace=ws).issue_date == date(2026, 2, 1)
    entry = SetAsideInvoice.objects.get()
    assert (entry.first_seen_on, entry.resolved_on) == (date(2026, 2, 1), date(2026, 2, 1))


def test_i6_m1_an_invoice_tried_again_while_the_close_runs_on_workers_is_counted(db):
    """I6, M1: January 2026's close of three paid workspaces runs on workers, one a chunk. The
    first chunk sets one aside (usage of 10^13 MTUs); finance fixes the figure and tries it
    again from the close's page while the other two chunks are still out: its invoice is
    issued. The close then counted 2 invoices, its chunks' (the finish wrote their sum over
    the retry's), while its list's link opened 3."""
    from billing import month_close

    first, *others = (paid_monthly(date(2026, 1, 1)) for _ in range(3))
    Usage.objects.create(workspace=first, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 1, 31))
    chunks = []
    services.close_month(
        date(2026, 1, 1), as_of=date(2026, 2, 1), dispatch=chunks.extend, chunk_size=1
    )
    close = MonthClose.objects.get(month=date(2026, 1, 1))
    assert month_close.bill_chunk(chunks[0]) == 0  # the workspace set aside
    Usage.objects.filter(workspace=first).update(mtus=12_000)
    assert month_close.retry_set_aside(as_of=date(2026, 2, 1), close=close)["set_aside_billed"] == 1
    for chunk in chunks[1:]:
        month_close.bill_chunk(chunk)
    assert month_close.finish_close_if_complete(close.pk) is not None
    close.refresh_from_db()
    issued = Invoice.objects.filter(issue_date=date(2026, 2, 1), kind="monthly").count()
    assert (close.finished, close.invoices, issued) == (True, 3, 3)


def test_u2_the_finance_panel_names_the_usage_import_jobs_no_worker_is_on(client, finance):
    """The finance panel counted stuck import jobs into "needs attention" with no row for
    them: every row read "done" or "none". It has its row now."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from billing import usage_import
    from billing.selectors import billing_health, clock_due_day

    for status in ("queued", "running"):
        upload = SimpleUploadedFile("big.csv", b"workspace,month,mtus\n")
        row = usage_import.start_import_job(upload, by=None, run_later=lambda job_id: None)
        then = timezone.now() - timedelta(hours=3)
        models.UsageImportJob.objects.filter(pk=row.pk).update(
            status=status, created_at=then, started_at=then
        )
    now = timezone.now()
    health = billing_health(due_day=clock_due_day(now), now=now)
    assert health.stuck_import_jobs == 2
    client.force_login(finance)

    page = client.get("/admin/").content.decode()

    panel = page[
        page.index('id="billing-health"') : page.index(
            "</table>", page.index('id="billing-health"')
        )
    ]
    assert "needs attention" in panel
    assert "Usage import jobs with no worker on them</th><td><strong>2</strong>" in panel, panel


def test_the_panel_says_none_for_a_clock_and_a_close_that_never_ran(client, finance):
    """A fresh system: the clock has processed no day. The panel reads "last processed day
    none" (with days and months by name, "none" had become "—")."""
    client.force_login(finance)
    page = re.sub(r"\s+", " ", client.get("/admin/").content.decode())
    assert "(last processed day none)" in page


def test_i6_d1_the_run_and_the_close_pages_say_what_waits_and_who_acts(client, finance, pin_today):
    """Walk 5: `run_billing` said "months_closed: 1" and nothing of the workspace it set aside,
    and a rerun "nothing due" while it still waited; the close pages did not say who runs a
    close, when, nor who fixes a set-aside workspace; the panel's count linked nowhere."""
    paid_monthly(date(2026, 1, 1), slug="good")
    bad = paid_monthly(date(2026, 1, 1), slug="bad")
    Usage.objects.create(workspace=bad, month=date(2026, 1, 1), mtus=10**13)
    out = StringIO()
    call_command("run_billing", "--as-of", "2026-02-01", stdout=out)
    assert "1 workspace(s) set aside, not billed yet (I6): 1 invoice(s)" in out.getvalue()
    assert "  bad, January 2026: " in out.getvalue()
    assert "beyond what an invoice can hold" in out.getvalue()
    out = StringIO()
    call_command("run_billing", "--as-of", "2026-02-01", stdout=out)
    # The operator's walk 8: a rerun of a processed day said "nothing due".
    assert (
        "Billing run through 2026-02-01: nothing to do, the clock has already processed every "
        "day through 2026-02-01" in out.getvalue()
    )
    assert "1 workspace(s) set aside" in out.getvalue()

    pin_today(date(2026, 2, 10))
    client.force_login(finance)
    listing = client.get(reverse("admin:billing_monthclose_changelist")).content.decode()
    assert "February 2026 closes on 2 Mar 2026. Nobody runs a close by hand" in listing
    close = MonthClose.objects.get()
    page = client.get(reverse("admin:billing_monthclose_change", args=[close.pk]))
    assert "waits for its cause to be fixed by support on the workspace's page" in (
        page.content.decode()
    )
    index = client.get("/admin/").content.decode()
    assert (
        f'<a href="{reverse("admin:billing_monthclose_changelist")}">Set-aside workspaces</a>'
        in index
    )


def test_d1_the_panel_says_when_the_clock_ran_ahead_of_the_calendar(client, finance):
    """A copy run with --allow-future read "done through 4 Dec 2026 (last processed day
    1 Jan 2027)"."""
    workspace(as_of=date(2026, 1, 1))
    ahead = timezone.now().date() + timedelta(days=20)
    services.run_billing(as_of=ahead)
    client.force_login(finance)
    page = client.get("/admin/").content.decode()
    assert f"done through {ahead.day} {ahead:%b %Y}, ahead of the calendar" in page


@pytest.mark.parametrize("at", ["01:01", "02:59", "03:01"])  # in CLOCK_RUN_GRACE, and after
def test_d1_the_beats_run_of_yesterday_is_not_called_ahead_of_the_calendar(
    client, finance, monkeypatch, at
):
    """D1: the beat runs each day shortly after it ends. On 10 March 2026 between 00:15 and
    03:00 (CLOCK_RUN_GRACE), a clock done through 9 March read "done through 9 Mar 2026, ahead
    of the calendar (a run with --allow-future)", every night, though nobody ran one."""
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 9))
    hour, minute = map(int, at.split(":"))
    now = datetime(2026, 3, 10, hour, minute, tzinfo=UTC)
    monkeypatch.setattr(health_tag, "timezone", SimpleNamespace(now=lambda: now))
    client.force_login(finance)
    page = client.get("/admin/").content.decode()
    assert re.search(r"done through 9 Mar 2026\s+\(last processed day 9 Mar 2026\)", page)
    assert "ahead of the calendar" not in page

    # The same clock seen on the 9th itself, before that day ended, did run ahead.
    before_it_ended = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    monkeypatch.setattr(health_tag, "timezone", SimpleNamespace(now=lambda: before_it_ended))
    page = client.get("/admin/").content.decode()
    assert "done through 9 Mar 2026, ahead of the calendar (a run with --allow-future)" in page


# --- The workers' heartbeat (billing.tasks.record_heartbeat, sent by the beat) --------------


def heartbeat(minutes_ago, worker="celery@billing-1"):
    record_worker_heartbeat(worker=worker, now=timezone.now() - timedelta(minutes=minutes_ago))


def test_eager_tasks_need_no_worker(db):
    """A laptop (`make run`) runs tasks in the process: no beat, no worker, nothing to say."""
    code, out = check_billing()

    assert code == 0
    assert "Celery workers: none needed (tasks run in the process: eager)" in out


def test_no_heartbeat_yet_needs_attention_when_tasks_go_through_the_broker(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    code, out = check_billing()

    assert code == 1
    assert "Celery workers: no heartbeat yet" in out
    assert (
        "- No Celery worker has run the beat's heartbeat yet (is the beat running?): the beat "
        "or every worker is down; month closes, usage imports and emails wait."
    ) in out


@requires_redis  # the broker answers: only the heartbeat speaks
def test_a_heartbeat_is_late_after_15_minutes(db, settings):
    """Sent every 5 minutes: three missed in a row, where an import would be noticed after 15
    minutes of waiting only if there were one, an email after an hour, the clock after a day."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    heartbeat(minutes_ago=14)

    code, out = check_billing()
    assert code == 0, out
    assert re.search(r"Celery workers: last heartbeat \S+ \S+ UTC by celery@billing-1\n", out)

    heartbeat(minutes_ago=16, worker="celery@billing-2")
    ran_at = models.WorkerHeartbeat.objects.get().ran_at

    code, out = check_billing()
    assert code == 1
    assert "by celery@billing-2 (late)" in out
    assert (
        f"- No Celery worker has run the beat's heartbeat since {ran_at:%Y-%m-%d %H:%M} UTC: "
    ) in out


def test_a_broker_down_needs_attention_while_the_heartbeat_still_looks_fresh(db, settings):
    """A worker ran the heartbeat 2 minutes ago, then the broker went down (or the database
    was just restored from a dump with that day's heartbeat). `check_billing` pings the broker
    itself and says so at once, as `/healthz` does, instead of "up to date" for 15 minutes.
    Before, it read the heartbeat row only and exited 0."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    heartbeat(minutes_ago=2)

    started = time.monotonic()
    code, out = check_billing()

    assert code == 1
    assert time.monotonic() - started < 10
    assert re.search(r"\nBroker: NOT ANSWERING \(ConnectionError: .+\)\n", out), out
    assert re.search(r"Celery workers: last heartbeat \S+ \S+ UTC by celery@billing-1\n", out)
    assert "- The broker does not answer (ConnectionError: " in out
    assert "no task can be queued; month closes, usage imports and emails wait." in out


@requires_redis
def test_a_broker_that_answers_is_ok(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    heartbeat(minutes_ago=2)

    code, out = check_billing()

    assert code == 0, out
    assert "\nBroker: OK\n" in out


def test_eager_tasks_ping_no_broker(db, settings):
    """A laptop has no broker to ask: nothing is pinged, nothing is said against it."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    code, out = check_billing()

    assert code == 0, out
    assert "Broker: none needed (tasks run in the process: eager)" in out


def test_the_heartbeat_task_keeps_one_row_with_the_last_run(db):
    tasks.record_heartbeat.delay()
    first = models.WorkerHeartbeat.objects.get()
    tasks.record_heartbeat.delay()

    last = models.WorkerHeartbeat.objects.get()
    assert last.pk == 1 and last.ran_at >= first.ran_at
    assert timezone.now() - last.ran_at < timedelta(minutes=1)


def test_the_panel_says_when_a_worker_last_ran_the_heartbeat(client, finance, settings):
    client.force_login(finance)
    assert "none needed (tasks run in the web process)" in panel(client)

    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert "<strong>no heartbeat yet</strong>" in panel(client)

    heartbeat(minutes_ago=2)
    ran_at = models.WorkerHeartbeat.objects.get().ran_at
    assert f"heartbeat at {ran_at:%H:%M} UTC by celery@billing-1" in panel(client)

    heartbeat(minutes_ago=20)
    ran_at = models.WorkerHeartbeat.objects.get().ran_at
    assert f"<strong>no heartbeat since {ran_at:%-d %b %Y %H:%M} UTC</strong>" in panel(client)


def panel(client):
    page = client.get("/admin/").content.decode()
    return page[page.index('id="billing-health"') : page.index('id="backoffice-pages"')]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_runs_the_heartbeat_and_check_billing_names_it(settings, tmp_path):
    """Through Redis to a worker process on this test's PostgreSQL database, as the beat sends
    it: the row the worker writes is what check_billing reads."""
    require_postgres()
    require_redis()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    log = tmp_path / "worker.log"
    with worker_on_the_test_database("heartbeat", log) as send:
        send("billing.tasks.record_heartbeat")
        deadline = time.monotonic() + 30
        while not models.WorkerHeartbeat.objects.exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

    code, out = check_billing()
    assert code == 0, out
    assert re.search(r"Celery workers: last heartbeat \S+ \S+ UTC by test-heartbeat-\w+@\S+\n", out)
