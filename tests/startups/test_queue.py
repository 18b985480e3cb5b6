"""The reviewer queue (R2): filters, sort, pagination, checklist in the row, no query per row,
reviewers only."""

from datetime import date
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from startups import services

from .factories import application


def _queue(client, **params):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("startups:queue"), params)
    assert response.status_code == 200
    return response, len(ctx.captured_queries)


def test_r2_queue_filters_sorts_and_shows_the_checklist(client, db, reviewer):
    rich = application(company_name="Rich Co", total_funding=Decimal("9000000"), country="DE")
    application(company_name="Poor Co", country="DE")
    application(company_name="Russian Co", country="RU")
    services.start_review(rich, by=reviewer, as_of=date(2026, 1, 21))
    client.force_login(reviewer)

    response, _ = _queue(client, failing="E2")
    assert [a.company_name for a in response.context["page"]] == ["Rich Co"]
    page = response.content.decode()
    # Failing by its mark and, to a screen reader, in words, not by its colour alone.
    assert (
        '<span class="check fail" title="Raised $9,000,000.00, more than the $5,000,000.00 '
        'limit">E2&nbsp;✗<span class="visually-hidden"> fails: Raised $9,000,000.00, more '
        "than the $5,000,000.00 limit</span></span>" in page
    )

    response, _ = _queue(client, status="in_review", assigned_to=reviewer.pk)
    assert [a.company_name for a in response.context["page"]] == ["Rich Co"]
    response, _ = _queue(client, country="RU")
    assert [a.company_name for a in response.context["page"]] == ["Russian Co"]
    response, _ = _queue(client, order="-funding", status=["submitted", "in_review"])
    assert response.context["page"][0].company_name == "Rich Co"
    response, _ = _queue(client, submitted_after="2026-01-21")
    assert list(response.context["page"]) == []


def test_r2_queue_query_count_does_not_grow_with_rows(client, db, reviewer):
    client.force_login(reviewer)
    application()
    _, few = _queue(client)
    for _ in range(30):
        application(country="FR")
    response, many = _queue(client)
    assert many == few
    assert response.context["page"].paginator.count == 31


def test_r2_queue_is_for_reviewers_not_finance_or_the_public(client, db, finance):
    assert client.get(reverse("startups:queue")).status_code == 302  # to the login page
    client.force_login(finance)
    assert client.get(reverse("startups:queue")).status_code == 200  # finance may view
    finance.groups.clear()
    finance.user_permissions.clear()
    assert client.get(reverse("startups:queue")).status_code == 403


def test_r2_the_default_queue_counts_and_pages_without_distinct(client, db, reviewer):
    """50,000 applications: DISTINCT over every column (the checks' JSON too) made the count
    and the page the slowest part of the queue; no filter joins, so no row can repeat."""
    client.force_login(reviewer)
    application(country="DE")
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("startups:queue"), {"country": "DE"})
    assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"].upper()]
    assert response.context["page"].paginator.count == 1
    page = response.content.decode()
    assert '<option value="DE" selected>Germany</option>' in page  # the quick country list
    assert '<option value="FR">France</option>' in page


def test_r2_s2_the_default_queue_keeps_to_open_applications_on_every_page(client, db, reviewer):
    """The default view lists the open applications (submitted, in review): 55 of them here,
    beside 5 rejected. Its pager's "?page=2" listed all 60 from page 2 on, decided ones too:
    a page number is no filter. Both pages count 55, and page 2 holds the last 5 open ones."""
    for _ in range(55):
        application()
    for _ in range(5):
        services.reject_application(
            application(), by=reviewer, reason="Not a startup", as_of=date(2026, 1, 21)
        )
    client.force_login(reviewer)
    first, _ = _queue(client)
    assert first.context["page"].paginator.count == 55
    assert 'href="?page=2"' in first.content.decode()
    second, _ = _queue(client, page=2)
    assert second.context["page"].paginator.count == 55
    assert {a.status for a in second.context["page"]} == {"submitted"}
    assert len(second.context["page"]) == 5


def test_r2_a_submitted_range_that_ends_before_it_starts_says_so(client, db, reviewer):
    """From 20 November to 1 November listed "0 applications" with no word why; the finance
    filters say "The range ends … before it starts". The queue now says it beside the field."""
    application(as_of=date(2026, 11, 10))
    client.force_login(reviewer)
    response, _ = _queue(client, submitted_after="2026-11-20", submitted_before="2026-11-01")
    page = response.content.decode()
    assert "The range ends (2026-11-01) before it starts (2026-11-20)." in page
    assert "Nothing is listed until the filters below are fixed." in page
    response, _ = _queue(client, submitted_after="2026-11-01", submitted_before="2026-11-20")
    assert response.context["page"].paginator.count == 1


def test_cr3_the_queue_shows_the_renewals_due_with_their_dates_without_a_query_each(
    client, db, reviewer
):
    from startups.models import RenewalReview
    from tests.coupons.factories import paid_monthly

    client.force_login(reviewer)
    _, none_due = _queue(client)
    for day, name in ((date(2026, 3, 2), "Later Co"), (date(2026, 1, 21), "Sooner Co")):
        app = services.approve_application(
            application(company_name=name, workspace=paid_monthly()), by=reviewer, as_of=day
        )
        services.open_renewal_reviews(date(2027, 2, 15))
        assert RenewalReview.objects.filter(application=app).exists()
    response, queries = _queue(client)
    body = response.content.decode()
    assert "Year-two renewals due (2)" in body
    assert body.index("Sooner Co") < body.index("Later Co")  # soonest due first
    review = RenewalReview.objects.get(application__company_name="Sooner Co")
    assert reverse("admin:startups_renewal_decide", args=[review.pk]) in body
    assert "21 Jan 2027" in body or "2027-01-21" in body
    services.decline_renewal(review, by=reviewer, note="Raised too much", as_of=date(2027, 2, 16))
    assert "Year-two renewals due (1)" in _queue(client)[0].content.decode()
    assert queries == none_due  # the section's one query runs with no renewal too


def test_cr3_a_renewal_past_its_due_date_says_how_long_it_is_overdue(
    client, db, reviewer, pin_today
):
    """CR3: a year-two review is due on the first anniversary; a grant confirmed later is valid
    only from its confirmation, so each day past it costs the startup a day of credits. The
    queue says how many days a review is overdue (approved 21 January 2026, due 21 January
    2027: on the 25th, 4 days), and says nothing on or before its due day."""
    from tests.coupons.factories import paid_monthly

    services.approve_application(
        application(company_name="Late Co", workspace=paid_monthly()),
        by=reviewer,
        as_of=date(2026, 1, 21),
    )
    services.open_renewal_reviews(date(2026, 12, 22))
    client.force_login(reviewer)
    pin_today(date(2027, 1, 21))
    assert "overdue" not in _queue(client)[0].content.decode()
    pin_today(date(2027, 1, 22))
    assert "1 day overdue" in _queue(client)[0].content.decode()
    pin_today(date(2027, 1, 25))
    assert "4 days overdue" in _queue(client)[0].content.decode()


def test_r2_r3_finance_reads_the_renewals_due_without_a_way_to_decide(
    client, db, reviewer, finance, pin_today
):
    """R2: only reviewers decide a year two; finance reads the queue (walk 5 reported "Review
    year two" links answering 403 to finance: the queue gives them to reviewers only)."""
    from startups.models import RenewalReview
    from tests.startups.factories import renewal_review_due

    renewal_review_due(by=reviewer, pin_today=pin_today)
    decide = reverse("admin:startups_renewal_decide", args=[RenewalReview.objects.get().pk])
    client.force_login(finance)
    body = _queue(client)[0].content.decode()
    assert "Year-two renewals due (1)" in body and decide not in body
    assert client.get(decide).status_code == 403
    client.force_login(reviewer)
    assert decide in _queue(client)[0].content.decode()


def test_s2_e4_a_coupon_or_credit_received_fails_e4_in_the_queue_before_anyone_opens_it(
    client, db, reviewer, support, django_capture_on_commit_callbacks
):
    """S2 E4: Orbit's application passes every check until support applies SPRING (5 % off) to
    its workspace on 25 Jan 2026, and Vega's until a reviewer grants its workspace 1,000.00 of
    credit by hand on 26 Jan 2026. Before anyone opens either, the queue shows E4 failing and
    its "All checks pass" filter leaves both out; each keeps why in its history, by whom. A
    workspace's other receipts change nothing stored once E4 fails."""
    from coupons.services import create_coupon, grant_credits, redeem_coupon
    from tests.billing.factories import workspace

    orbit = workspace(as_of=date(2026, 1, 2), slug="orbit")
    vega = workspace(as_of=date(2026, 1, 2), slug="vega")
    orbit_app = application(company_name="Orbit", workspace=orbit)
    vega_app = application(company_name="Vega", workspace=vega)
    create_coupon("SPRING", name="Spring", kind="promotion", percent_off=Decimal(5))
    client.force_login(reviewer)
    response, _ = _queue(client, failing="none")
    assert {a.company_name for a in response.context["page"]} == {"Orbit", "Vega"}

    with django_capture_on_commit_callbacks(execute=True):
        redeem_coupon(orbit, "SPRING", by=support, as_of=date(2026, 1, 25))
    with django_capture_on_commit_callbacks(execute=True):
        grant_credits(vega, amount=Decimal("1000.00"), as_of=date(2026, 1, 26), year=1, by=reviewer)

    response, _ = _queue(client, failing="none")
    assert list(response.context["page"]) == []
    response, _ = _queue(client, failing="E4")
    assert {a.company_name for a in response.context["page"]} == {"Orbit", "Vega"}
    assert "Workspace orbit has received a coupon or credit: SPRING on 25 Jan 2026" in (
        response.content.decode()
    )
    latest = orbit_app.history.first()
    assert (latest.failing_checks, latest.history_user) == ("E4", support)
    assert latest.history_change_reason == (
        "Checks evaluated again: the workspace received SPRING on 25 Jan 2026"
    )
    latest = vega_app.history.first()
    assert (latest.failing_checks, latest.history_user) == ("E4", reviewer)
    assert latest.history_change_reason == (
        "Checks evaluated again: the workspace received a credit of $1,000.00 from 26 Jan 2026"
    )

    versions = orbit_app.history.count()
    with django_capture_on_commit_callbacks(execute=True):
        grant_credits(orbit, amount=Decimal("500.00"), as_of=date(2026, 2, 2), year=1, by=reviewer)
    assert orbit_app.history.count() == versions
