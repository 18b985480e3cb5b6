"""R1–R3 in the coupon admin, through the test client with the real groups: support applies
coupons (the service's refusal is shown) and reviews proofs, reviewers review partners,
finance reads; redeemed coupons keep their discount and nothing is deleted."""

import re
from datetime import date
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services as billing
from billing.documents import MAX_DOCUMENT_BYTES
from billing.errors import BillingError, DayAlreadyProcessed
from billing.models import OutboundEmail
from coupons import services
from coupons.errors import CouponError
from coupons.models import (
    AcceleratorPartner,
    Coupon,
    DiscountApplication,
    NonprofitProof,
    Redemption,
)
from tests.admin_pages import action, messages_of

from .factories import PDF, coupon, free_workspace, paid_monthly, partner


def apply_url(ws=None):
    url = reverse("admin:coupons_redemption_apply")
    return f"{url}?workspace={ws.pk}" if ws else url


def test_r1_support_applies_a_coupon_from_the_workspace_page(client, support, today):
    ws = paid_monthly(as_of=today, name="Acme Analytics")
    promo = coupon(code="WELCOME", percent_off="20")
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert apply_url(ws) in page.replace("&amp;", "&")

    form_page = client.get(apply_url(ws))
    assert form_page.status_code == 200
    assert "data-ajax--url" in form_page.content.decode()  # the workspace autocomplete

    response = client.post(
        apply_url(ws), {"workspace": ws.pk, "coupon": "WELCOME", "reason": "Ticket 42"}, follow=True
    )
    assert "WELCOME (20% off, once) applied to Acme Analytics from 10 Feb 2026." in messages_of(
        response
    )
    redemption = Redemption.objects.get(workspace=ws, coupon=promo)
    assert (redemption.by, redemption.reason, redemption.redeemed_on) == (
        support,
        "Ticket 42",
        today,
    )
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert "Coupons received" in page and "WELCOME" in page and "Remove discount" in page

    no_reason = client.post(apply_url(ws), {"workspace": ws.pk, "coupon": "WELCOME"})
    assert "Say why: the reason is kept in the history." in no_reason.content.decode()  # R4
    again = client.post(apply_url(ws), {"workspace": ws.pk, "coupon": "WELCOME", "reason": "x"})
    assert again.status_code == 200
    assert any("already received the coupon WELCOME" in m for m in messages_of(again))


def test_r1_workspace_autocomplete_for_the_apply_page(client, support, today):
    paid_monthly(as_of=today, name="Zebra Games")
    client.force_login(support)
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "coupons",
            "model_name": "redemption",
            "field_name": "workspace",
            "term": "zeb",
        },
    )
    assert [r["text"] for r in response.json()["results"]][0].startswith("Zebra Games")


def test_r1_support_removes_a_discount_with_a_reason(client, support, today):
    ws = paid_monthly(as_of=today)
    redemption = services.redeem_coupon(
        ws, coupon(duration="forever").code, by=support, as_of=today
    )
    client.force_login(support)
    url = reverse("admin:coupons_redemption_remove", args=[redemption.pk])
    refused = client.post(url, {"reason": ""}).content.decode()
    assert "Say why: the reason is kept in the history." in refused
    client.post(url, {"reason": "Customer churned"})
    redemption.refresh_from_db()
    assert (redemption.status, redemption.reason) == ("removed", "Customer churned")


def test_c5_the_remove_page_of_an_ended_discount_removes_no_other_one(client, support, today):
    """OLD20's page, opened before it was removed, is posted after NEW10 was applied: the page
    says OLD20 is not the running discount and offers nothing, a POST runs nothing, and NEW10
    keeps running. The service refuses it too."""
    ws = paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    old = services.redeem_coupon(
        ws, coupon(code="OLD20", duration="forever").code, by=support, as_of=date(2026, 1, 1)
    )
    services.remove_discount(ws, by=support, reason="Ticket 1", as_of=date(2026, 1, 5))
    new = services.redeem_coupon(
        ws, coupon(code="NEW10", duration="forever").code, by=support, as_of=date(2026, 1, 6)
    )
    client.force_login(support)
    response = client.post(
        reverse("admin:coupons_redemption_remove", args=[old.pk]), {"reason": "Ticket 2"}
    )
    assert (
        "OLD20 is not Acme&#x27;s running discount (removed on 5 Jan 2026): there is nothing to "
        "remove." in response.content.decode()
    )
    assert '<form method="post"' not in response.content.decode()
    with pytest.raises(BillingError) as refused:
        services.remove_discount(ws, by=support, reason="Ticket 2", as_of=today, redemption=old)
    assert str(refused.value) == (
        "OLD20 is no longer Acme's running discount (NEW10 is): nothing was removed."
    )
    new.refresh_from_db()
    assert new.status == Redemption.Status.ACTIVE


def test_r2_r3_reviewers_and_finance_cannot_apply_coupons(client, reviewer, finance, today):
    ws = paid_monthly(as_of=today)
    coupon(code="NOPE")
    for user in (reviewer, finance):
        client.force_login(user)
        assert client.get(apply_url(ws)).status_code == 403
        assert client.post(apply_url(ws), {"workspace": ws.pk, "coupon": "NOPE"}).status_code == 403
        assert client.get(reverse("admin:coupons_coupon_changelist")).status_code == 200
        assert client.get(reverse("admin:coupons_creditgrant_changelist")).status_code == 200
        assert client.get(reverse("admin:coupons_coupon_add")).status_code == 403
    assert not Redemption.objects.exists()


def test_c1_coupon_list_shows_used_remaining_and_status(client, finance, today):
    promo = coupon(code="LIMITED", max_redemptions=3)
    coupon(code="OLD", redeem_by=date(2020, 1, 1))
    for _ in range(2):
        services.redeem_coupon(paid_monthly(as_of=today), promo.code, by=None, as_of=today)
    client.force_login(finance)
    response = client.get(reverse("admin:coupons_coupon_changelist"))
    rows = {
        obj.code: (obj.redeemed_count, response.context["cl"].model_admin.remaining(obj))
        for obj in response.context["cl"].result_list
    }
    assert rows["LIMITED"] == (2, 1)
    page = response.content.decode()
    assert "Expired" in page and "no limit" in page


def test_c1_support_creates_a_coupon_and_sees_every_problem(client, support):
    client.force_login(support)
    url = reverse("admin:coupons_coupon_add")
    bad = client.post(
        url,
        {
            "code": "HALF",
            "name": "Half off",
            "kind": "promotion",
            "percent_off": "50",
            "amount_off": "10",
            "duration": "repeating",
            "applies_monthly": "on",
        },
    )
    page = bad.content.decode()
    assert "exactly one of percent off, amount off" in page
    assert "needs its number of months" in page
    # A negative count is refused in the service's words, as 0 is (it got Django's
    # "Ensure this value is greater than or equal to 0").
    for months, maximum in (("-3", "-1"), ("0", "0")):
        page = client.post(
            url,
            {
                "code": "NEG",
                "name": "Negative",
                "kind": "promotion",
                "percent_off": "10",
                "duration": "repeating",
                "duration_months": months,
                "max_redemptions": maximum,
                "applies_monthly": "on",
            },
        ).content.decode()
        assert f"A repeating coupon runs for 1 month or more, not {months}." in page
        assert f"The maximum redemptions must be 1 or more, not {maximum}." in page
        assert "Ensure this value" not in page
    assert not Coupon.objects.filter(code="NEG").exists()
    response = client.post(
        url,
        {
            "code": "half",
            "name": "Half off",
            "kind": "promotion",
            "percent_off": "50",
            "duration": "repeating",
            "duration_months": "2",
            "applies_monthly": "on",
            "active": "on",
        },
    )
    assert response.status_code == 302
    created = Coupon.objects.get(code="HALF")
    assert (created.percent_off, created.duration_months) == (D("50.00"), 2)
    assert created.history.first().history_user == support


def test_c1_a_coupon_value_is_typed_in_full(client, support):
    """C1: percent off "1e2" was read as 100 (a 100 %-off coupon); an amount off "1,000" got
    Django's bare "Enter a number.". Each says how to write it; nothing is created."""
    client.force_login(support)
    url = reverse("admin:coupons_coupon_add")
    coupon_form = {
        "code": "TYPO",
        "name": "Typo",
        "kind": "promotion",
        "duration": "once",
        "applies_monthly": "on",
        "active": "on",
    }
    page = client.post(url, {**coupon_form, "percent_off": "1e2"}).content.decode()
    assert "Write the number in full, e.g. 25, not “1e2”." in page
    page = client.post(url, {**coupon_form, "percent_off": "NaN"}).content.decode()
    assert "Enter the percentage as a plain number, e.g. 25." in page
    page = client.post(url, {**coupon_form, "amount_off": "1,000"}).content.decode()
    assert "Enter the amount as a plain number without thousands separators, e.g. 1000.00." in page
    assert "Enter a number." not in page
    assert not Coupon.objects.filter(code="TYPO").exists()


def test_c2_a_redeemed_coupon_keeps_its_discount_and_is_never_deleted(client, support, today):
    promo = coupon(code="FIXED", percent_off="10")
    fresh = coupon(code="FRESH", percent_off="10")
    services.redeem_coupon(paid_monthly(as_of=today), "FIXED", by=None, as_of=today)
    client.force_login(support)
    change = reverse("admin:coupons_coupon_change", args=[promo.pk])
    response = client.get(change)
    assert "percent_off" not in response.context["adminform"].form.fields
    client.post(change, {"name": "Renamed", "percent_off": "90", "active": "on"})
    promo.refresh_from_db()
    assert promo.name == "Promotion"  # R4: no reason, no change
    client.post(
        change,
        {"name": "Renamed", "percent_off": "90", "active": "on", "change_reason": "Rebrand"},
    )
    promo.refresh_from_db()
    assert (promo.name, promo.percent_off) == ("Renamed", D("10.00"))
    assert promo.history.first().history_change_reason == "Changed name: Rebrand"
    assert client.get(reverse("admin:coupons_coupon_delete", args=[promo.pk])).status_code == 403
    # Not redeemed yet: its discount can still change.
    fresh_change = reverse("admin:coupons_coupon_change", args=[fresh.pk])
    assert "percent_off" in client.get(fresh_change).context["adminform"].form.fields


def test_c5_the_follow_up_of_a_redeemed_coupon_shows_its_discount_read_only(client, support, today):
    """The page showed the follow-up's discount as a field to edit, which `update_coupon` now
    refuses (its lead has been redeemed: the workspace is promised it as it stands)."""
    after = coupon(code="AFTER", percent_off="5", duration="forever")
    coupon(code="LEAD", percent_off="15", duration="repeating", duration_months=1, follow_up=after)
    services.redeem_coupon(paid_monthly(as_of=today), "LEAD", by=None, as_of=today)
    client.force_login(support)
    change = reverse("admin:coupons_coupon_change", args=[after.pk])
    fields = client.get(change).context["adminform"].form.fields
    assert "percent_off" not in fields and "name" in fields


def upload(client, ws, content, name="proof.pdf"):
    return client.post(
        reverse("admin:coupons_nonprofitproof_add"),
        {"workspace": ws.pk, "document": SimpleUploadedFile(name, content)},
    )


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"<!doctype html><h1>Totally a PDF</h1>", "must be a PDF, PNG or JPEG"),
        (b"%PDF-" + b"0" * MAX_DOCUMENT_BYTES, "at most 10 MB is accepted"),
    ],
    ids=["html-renamed-pdf", "oversize"],
)
def test_c6_admin_upload_bad_input_is_a_form_error(client, support, today, content, problem):
    ws = paid_monthly(as_of=today)
    client.force_login(support)
    response = upload(client, ws, content)
    assert response.status_code == 200
    assert problem in response.content.decode()
    assert not NonprofitProof.objects.exists()


def test_c6_x5_a_proof_with_a_long_file_name_is_taken(client, support, today):
    """As a certificate: the upload's name is never kept, so its length is no reason to refuse."""
    ws = paid_monthly(as_of=today)
    client.force_login(support)
    assert upload(client, ws, PDF, name="p" * 251 + ".pdf").status_code == 302
    assert len(NonprofitProof.objects.get().document.name) < 100


def test_c6_admin_empty_upload_is_refused(client, support, today):
    ws = paid_monthly(as_of=today)
    client.force_login(support)
    response = upload(client, ws, b"")
    assert "The submitted file is empty." in response.content.decode()
    assert not NonprofitProof.objects.exists()


def test_c6_support_uploads_downloads_and_approves_finance_cannot_see(
    client, support, finance, today
):
    ws = paid_monthly(as_of=today)
    client.force_login(support)
    assert upload(client, ws, PDF, name="letter.pdf").status_code == 302
    proof = NonprofitProof.objects.get()
    download = client.get(reverse("coupons:proof-document", args=[proof.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == PDF

    changelist = reverse("admin:coupons_nonprofitproof_changelist")
    asked = client.post(changelist, action("approve_and_apply", proof))
    assert "NONPROFIT takes $120.00 off" in asked.content.decode()
    response = client.post(
        changelist, action("approve_and_apply", proof, confirm=True), follow=True
    )
    assert "1 proof(s) approved; NONPROFIT applied." in messages_of(response)
    assert Redemption.objects.get(workspace=ws).coupon.code == "NONPROFIT"

    client.force_login(finance)
    url = reverse("coupons:proof-document", args=[proof.pk])
    assert client.get(url).status_code == 403
    assert client.get(changelist).status_code == 403


def test_c6_support_rejects_a_proof_with_a_reason(client, support, today):
    ws = paid_monthly(as_of=today)
    proof = services.submit_nonprofit_proof(
        ws, document=SimpleUploadedFile("p.pdf", PDF), by=support, as_of=today
    )
    client.force_login(support)
    changelist = reverse("admin:coupons_nonprofitproof_changelist")
    asked = client.post(changelist, action("reject", proof))
    assert asked.status_code == 200 and "Kept in the history" in asked.content.decode()
    client.post(changelist, action("reject", proof, confirm=True, reason="Letter is a draft"))
    proof.refresh_from_db()
    assert (proof.status, proof.reason, proof.reviewed_by) == (
        "rejected",
        "Letter is a draft",
        support,
    )


def test_c7_reviewer_approves_a_partner_with_its_own_credit_support_cannot(
    client, reviewer, support, today
):
    partner = services.apply_as_partner(
        "Launchpad", contact_name="Lee", contact_email="lee@example.com", as_of=today
    )
    changelist = reverse("admin:coupons_acceleratorpartner_changelist")
    client.force_login(support)
    assert client.get(changelist).status_code == 403
    client.force_login(reviewer)
    asked = client.post(changelist, action("approve", partner))
    assert "credit_amount" in asked.content.decode()
    response = client.post(
        changelist,
        action("approve", partner, confirm=True, credit_amount="40000.00", note="Strong cohort"),
        follow=True,
    )
    assert "1 partner(s) approved." in messages_of(response)
    partner.refresh_from_db()
    assert (partner.status, partner.credit_amount, partner.reviewed_by) == (
        "active",
        D("40000.00"),
        reviewer,
    )
    email = OutboundEmail.objects.get(kind="partner_approved")
    assert email.to == "lee@example.com" and "Launchpad" in email.subject


def test_r4_c7_a_partner_approved_with_its_own_credit_amount_needs_the_why(client, reviewer, today):
    partner = services.apply_as_partner(
        "Orbit", contact_name="O", contact_email="o@example.com", as_of=today
    )
    client.force_login(reviewer)
    changelist = reverse("admin:coupons_acceleratorpartner_changelist")
    refused = client.post(
        changelist,
        action("approve", partner, confirm=True, credit_amount="250000.00", note=" "),
        follow=True,
    )
    assert any("Say why this partner" in m for m in messages_of(refused))
    partner.refresh_from_db()
    assert (partner.status, partner.credit_amount) == ("applied", None)
    why = "Board agreed a larger cohort, ticket 12"
    client.post(
        changelist, action("approve", partner, confirm=True, credit_amount="250000.00", note=why)
    )
    partner.refresh_from_db()
    assert (partner.status, partner.credit_amount) == ("active", D("250000.00"))
    assert partner.history.first().history_change_reason == (
        f"Approved with a yearly credit of $250,000.00: {why}"
    )


def test_d2_c7_a_partner_decision_dated_a_processed_day_is_refused(db, reviewer):
    from billing import services as billing

    partners = [
        services.apply_as_partner(
            name, contact_name="P", contact_email="p@example.com", as_of=date(2026, 1, 2)
        )
        for name in ("Dawn", "Dusk")
    ]
    paid_monthly(as_of=date(2026, 1, 2))  # the clock runs from the first workspace's day
    billing.run_billing(as_of=date(2026, 2, 10))
    day = date(2026, 2, 5)
    with pytest.raises(
        DayAlreadyProcessed, match="already processed every day through 10 Feb 2026"
    ):
        services.approve_partner(partners[0], by=reviewer, as_of=day)
    with pytest.raises(DayAlreadyProcessed, match="already processed"):
        services.decline_partner(partners[1], by=reviewer, reason="No", as_of=day)
    services.approve_partner(partners[0], by=reviewer, as_of=date(2026, 2, 11))
    with pytest.raises(DayAlreadyProcessed, match="already processed"):
        services.deactivate_partner(partners[0], by=reviewer, reason="Closed", as_of=day)


def test_c7_reviewer_declines_an_application_with_a_reason(client, reviewer, today):
    partner = services.apply_as_partner(
        "Spam Capital", contact_name="S", contact_email="s@example.com", as_of=today
    )
    client.force_login(reviewer)
    changelist = reverse("admin:coupons_acceleratorpartner_changelist")
    client.post(changelist, action("decline", partner, confirm=True, reason="Not an accelerator"))
    partner.refresh_from_db()
    assert (partner.status, partner.review_note) == (
        AcceleratorPartner.Status.INACTIVE,
        "Not an accelerator",
    )


def test_c7_a_website_corrected_without_its_scheme_is_kept_as_https(client, reviewer, today):
    partner = services.apply_as_partner(
        "Launchpad", contact_name="Lee", contact_email="lee@example.com", as_of=today
    )
    client.force_login(reviewer)
    response = client.post(
        reverse("admin:coupons_acceleratorpartner_change", args=[partner.pk]),
        {
            "name": "Launchpad",
            "website": "launchpad.example.com",
            "contact_name": "Lee",
            "contact_email": "lee@example.com",
            "description": "",
            "credit_amount": "",
            "change_reason": "Their site, from the call",
            "coupons-TOTAL_FORMS": "0",
            "coupons-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    partner.refresh_from_db()
    assert partner.website == "https://launchpad.example.com"


def test_s4_r2_the_apply_page_gives_no_startup_credit_without_an_approved_application(
    client, support, today
):
    """S3, S4: startup credit comes with a reviewer's approval of an application whose checks
    pass. The apply page offers no startup-program coupon (neither the seeded STARTUP nor one
    support made with its own amount) and refuses one posted anyway: no redemption, no grant."""
    from coupons.models import CreditGrant

    ws = paid_monthly(as_of=today, business_country="RU", business_region="")  # E3 fails
    coupon(code="BIGSTART", kind="startup_program", credit_amount="1000000.00")
    client.force_login(support)
    page = client.get(apply_url(ws)).content.decode()
    assert "STARTUP (granted by approving a startup application)" in page
    assert 'value="STARTUP"' not in page and 'value="BIGSTART"' not in page

    for code in ("STARTUP", "BIGSTART"):
        refused = client.post(apply_url(ws), {"workspace": ws.pk, "coupon": code, "reason": "x"})
        assert "Select a valid choice" in refused.content.decode()
    assert not Redemption.objects.filter(workspace=ws).exists()
    assert not CreditGrant.objects.filter(workspace=ws).exists()


def test_c7_partner_decision_emails_carry_no_workspace_footer(
    db, support, today, django_capture_on_commit_callbacks
):
    """A partner's contact is no workspace's billing contact: the HTML footer that names one
    is left out, not printed with blanks."""
    from django.core import mail

    def apply(name):
        return services.apply_as_partner(
            name, contact_name="Mira Chen", contact_email="mira@seedbed.example.com", as_of=today
        )

    approved, declined = apply("Seedbed"), apply("Sprout")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.approve_partner(approved, by=support, as_of=today)
        services.decline_partner(declined, by=support, reason="Not a fit", as_of=today)
    assert len(mail.outbox) == 2
    for sent in mail.outbox:
        html = sent.alternatives[0][0]
        assert "billing contact" not in html
    # The approved program's email greets its contact; the declined one echoes nothing typed.
    assert "Mira Chen" in mail.outbox[0].alternatives[0][0]
    assert "Mira Chen" not in mail.outbox[1].alternatives[0][0]


def test_c5_a_repeating_discount_is_said_as_the_bills_it_covers_not_the_day_it_runs_out(
    client, support, pin_today
):
    """C5: COMEBACK20, 20 % off for 3 months, applied on 7 October 2026 to paid monthly Team
    (120.00), covers the bills for October to December 2026; December's is issued on 1 January
    2027, 96.00 (120.00 less 24.00), and January's on 1 February, 120.00. The pages said "from
    7 Oct 2026 until 1 Jan 2027" (and the redemption "runs out on 1 Jan 2027: the first day it
    no longer applies"), which support read as a full-price invoice on 1 January."""
    ws = paid_monthly(as_of=date(2026, 9, 1), name="Acme Analytics")
    comeback = coupon(code="COMEBACK20", percent_off="20", duration="repeating", duration_months=3)
    services.redeem_coupon(ws, comeback.code, by=support, as_of=date(2026, 10, 7))
    covered = (
        "COMEBACK20: 20% off, 3 months, from 7 Oct 2026, the bills for October – December 2026"
    )
    pin_today(date(2026, 10, 8))
    client.force_login(support)
    assert covered in client.get(apply_url(ws)).content.decode()
    running = Redemption.objects.get(workspace=ws)
    remove = reverse("admin:coupons_redemption_remove", args=[running.pk])
    assert covered in client.get(remove).content.decode()
    with pytest.raises(CouponError) as refused:
        services.redeem_coupon(ws, coupon(code="NEW10").code, by=support, as_of=date(2026, 10, 8))
    assert (
        "already has an active discount (COMEBACK20, from 7 Oct 2026, the bills for October – "
        "December 2026): one discount at a time." in str(refused.value)
    )
    billing.run_billing(as_of=date(2027, 2, 1))
    totals = dict(ws.invoices.values_list("issue_date", "total"))
    assert totals[date(2027, 1, 1)] == D("96.00")
    assert totals[date(2027, 2, 1)] == D("120.00")


def test_c4_a_discount_applied_reads_as_money_on_its_invoices_number(client, support, finance):
    """The page of a discount on an invoice read "NONPROFIT on invoice 35: $20.00" (the
    invoice's id, which is no number anyone sees) and "Amount: 20.00"."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.redeem_coupon(
        ws, coupon(code="TWENTY", amount_off="20.00").code, by=support, as_of=date(2026, 1, 1)
    )
    billing.run_billing(as_of=date(2026, 2, 1))
    applied = DiscountApplication.objects.get()
    number = applied.invoice.number
    client.force_login(finance)
    page = client.get(reverse("admin:coupons_discountapplication_change", args=[applied.pk]))
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert f"TWENTY on {number}: $20.00" in shown
    assert "Discount: $20.00" in shown and "Amount:" not in shown


def test_c2_the_apply_page_says_where_the_workspace_stands(client, support, pin_today):
    """C2: each refusal of "Apply a coupon" (a discount already running, a coupon received
    before, an interval not covered) follows from the workspace's standing, which the page
    opened from the workspace did not show: support learnt it only from the refusal. Acme is
    on Team (monthly) with OLD20 running since 2026-01-05; it received GONE10 earlier and had
    it removed. The page says so, before and after a refused post; opened from the coupon list,
    with no workspace picked, it says nothing about one."""
    ws = paid_monthly(as_of=date(2026, 1, 1), name="Acme Analytics")
    gone = coupon(code="GONE10", duration="forever")
    services.redeem_coupon(ws, gone.code, by=support, as_of=date(2026, 1, 2))
    services.remove_discount(ws, by=support, reason="Ticket 1", as_of=date(2026, 1, 4))
    services.redeem_coupon(
        ws,
        coupon(code="OLD20", percent_off="20", duration="forever").code,
        by=support,
        as_of=date(2026, 1, 5),
    )
    coupon(code="NEW10")
    pin_today(date(2026, 2, 10))
    client.force_login(support)
    standing = (
        "Acme Analytics now: Team (monthly); running discount: OLD20: 20% off, forever, "
        "from 5 Jan 2026; coupons received before: GONE10, OLD20 (each once per workspace)."
    )
    page = client.get(apply_url(ws)).content.decode()
    assert standing in page
    # The refusal says "Remove it first": the page links there.
    running = Redemption.objects.get(workspace=ws, coupon__code="OLD20")
    remove = reverse("admin:coupons_redemption_remove", args=[running.pk])
    assert f'<a href="{remove}" class="button">Remove OLD20 first</a>' in page
    refused = client.post(apply_url(ws), {"workspace": ws.pk, "coupon": "NEW10", "reason": "x"})
    assert any("discount" in m for m in messages_of(refused))
    assert standing in refused.content.decode()
    assert "now:" not in client.get(apply_url()).content.decode()

    fresh = paid_monthly(as_of=date(2026, 1, 1), name="Fresh Co")
    page = client.get(apply_url(fresh)).content.decode()
    standing = "Fresh Co now: Team (monthly); running discount: none; no coupon received before."
    assert standing in page
    assert "first</a>" not in page
    # W1: a closed workspace takes no coupon; the page says so before support picks one.
    billing.close_workspace(fresh, by=support, reason="Ticket 3", as_of=date(2026, 2, 10))
    assert (
        "Fresh Co was closed on 10 Feb 2026: it takes no coupon until it is reopened."
        in client.get(apply_url(fresh)).content.decode()
    )


def test_c2_the_apply_page_writes_the_trial_end_as_a_day(client, support, pin_today):
    """C2: a trial's end is a stored date, written as every page writes one ("1 Feb 2026"),
    not as the ISO form the page showed ("trial ends 2026-02-01")."""
    ws = free_workspace(as_of=date(2026, 1, 18), name="Trial Co", card=True)
    billing.change_to_team(ws, as_of=date(2026, 1, 18))
    pin_today(date(2026, 1, 20))
    client.force_login(support)
    page = client.get(apply_url(ws)).content.decode()
    assert "Trial Co now: Team (monthly), trial ends 1 Feb 2026;" in page
    assert "2026-02-01" not in page


def test_c7_the_coupon_list_filters_by_partner_and_names_coupons_of_none(client, support):
    """C7: the coupon list's partner filter ended in a choice written "-" (Django's empty
    value): support could not tell it meant the coupons no accelerator set. It reads "No
    partner", and lists only those."""
    harbor = AcceleratorPartner.objects.create(
        name="Harbor Labs",
        contact_name="Ada",
        contact_email="ada@harbor.example",
        status=AcceleratorPartner.Status.ACTIVE,
        applied_on=date(2026, 1, 1),
    )
    coupon(code="HARBOR", kind="accelerator", partner=harbor)
    coupon(code="WELCOME")
    client.force_login(support)
    page = client.get(reverse("admin:coupons_coupon_changelist")).content.decode()
    assert re.search(r'<a href="\?partner__isnull=True">\s*No partner\s*</a>', page), page
    listed = client.get(reverse("admin:coupons_coupon_changelist"), {"partner__isnull": "True"})
    codes = [c.code for c in listed.context["cl"].result_list]
    assert "WELCOME" in codes and "HARBOR" not in codes


def test_c7_the_coupon_form_names_a_partner_that_is_not_active_as_such(client, support, today):
    """C7: the partner list of the coupon form showed "Fuzz Accel" (applied through the public
    form, not reviewed) like an active partner. A partner not active carries its status."""
    for name, status in (("Harbor Labs", "active"), ("Fuzz Accel", "applied"), ("Old", "inactive")):
        AcceleratorPartner.objects.create(
            name=name,
            contact_name="Ada",
            contact_email="ada@example.com",
            status=status,
            applied_on=date(2026, 1, 1),
        )
    client.force_login(support)
    form = client.get(reverse("admin:coupons_coupon_add")).context["adminform"].form
    labels = sorted(label for value, label in form.fields["partner"].choices if value)
    assert labels == ["Fuzz Accel (applied)", "Harbor Labs", "Old (inactive)"]


def test_c6_the_nonprofit_refusal_leads_to_the_proof(client, support, today):
    """C6: NONPROFIT is refused without an approved proof ("upload the proof and have support
    approve it first"), and the page left support to find the proofs page. It now leads to
    uploading one, or to reviewing the one waiting, submitted on 3 Feb 2026."""
    ws = paid_monthly(as_of=date(2026, 1, 1), name="Helping Hands")
    client.force_login(support)
    data = {"workspace": ws.pk, "coupon": "NONPROFIT", "reason": "Ticket 5"}
    refused = client.post(apply_url(ws), data)
    assert any("no approved proof of non-profit status" in m for m in messages_of(refused))
    upload = reverse("admin:coupons_nonprofitproof_add") + f"?workspace={ws.pk}"
    page = refused.content.decode().replace("&amp;", "&")
    assert f'<a href="{upload}" class="button">Upload a non-profit proof</a>' in page
    added = client.get(upload).content.decode()
    assert f'<option value="{ws.pk}" selected>' in added  # the workspace comes picked

    proof = services.submit_nonprofit_proof(
        ws, document=SimpleUploadedFile("proof.pdf", PDF), by=support, as_of=date(2026, 2, 3)
    )
    page = client.post(apply_url(ws), data).content.decode()
    review = reverse("admin:coupons_nonprofitproof_change", args=[proof.pk])
    assert (
        f'<a href="{review}" class="button">Review its non-profit proof of 3 Feb 2026</a>' in page
    )
    # Another coupon's refusal, or none picked yet, leads nowhere new.
    assert "non-profit proof" not in client.get(apply_url(ws)).content.decode()


def test_cr1_c7_the_grant_list_finds_a_partners_grants_by_its_name(client, finance, today):
    """CR1, C7: the grant list lost its Partner sort (a join sorting every grant) and has no
    partner filter: finance finds a partner's grants by searching its name, looked up in the
    partners' table rather than compared on every grant's joined row. Two STARTUP grants,
    one through "Northwind Ventures" (credit 50,000.00): the search lists that one."""
    northwind = partner(D("50000.00"), name="Northwind Ventures")
    through, alone = paid_monthly(as_of=today), paid_monthly(as_of=today)
    services.redeem_coupon(through, "STARTUP", by=None, as_of=today, partner=northwind)
    services.redeem_coupon(alone, "STARTUP", by=None, as_of=today)
    client.force_login(finance)
    url = reverse("admin:coupons_creditgrant_changelist")
    with CaptureQueriesContext(connection) as queries:
        listed = client.get(url, {"q": "northwind"})
    grants = list(listed.context["cl"].result_list)
    assert [(g.workspace, g.amount) for g in grants] == [(through, D("50000.00"))]
    listing = [q["sql"] for q in queries if "northwind" in q["sql"]]
    # The partners' table in a subquery of its own (`IN (SELECT …)`, PostgreSQL's `= ANY(ARRAY(
    # SELECT …))`), never the name of the partner joined to each grant.
    looked_up = (
        r'"partner_id" (IN \(|= ANY\(ARRAY\()SELECT (\w+)\."id" .* '
        r'FROM "coupons_acceleratorpartner" \2\b'
    )
    joined = r'"coupons_acceleratorpartner"\."name"(::text\))? LIKE'
    assert listing and all(
        re.search(looked_up, sql) and not re.search(joined, sql) for sql in listing
    ), listing
