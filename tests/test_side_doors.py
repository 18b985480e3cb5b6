"""R5: nobody changes a row except through its service, from any URL, whatever their role.

A small world holds a row of every model the admin shows. For each role and a superuser the
tests POST to every registered ModelAdmin's history form, change form, add form, delete page
and every action it offers anyone, and to the custom action pages, and compare a fingerprint of
every table of the three apps before and after: unchanged unless the role holds the right and
the admin saves through a service (those paths are proven by the apps' own tests)."""

import hashlib
from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import F
from django.forms.models import model_to_dict
from django.test import RequestFactory
from django.urls import reverse

from billing import services as billing
from billing.models import (
    CreditNote,
    Invoice,
    Plan,
    PlanTerms,
    TaxExemption,
    Usage,
    Workspace,
)
from coupons import services as coupons
from coupons.models import Campaign, NonprofitProof, Redemption
from startups import services as startups
from startups.models import PartnerDeal, RenewalReview, StartupApplication
from tests.billing.factories import workspace
from tests.coupons.factories import PDF, coupon, paid_monthly
from tests.startups.factories import application

APPS = ("billing", "coupons", "startups")
REVIEW_CERT = "billing.review_taxexemption"
APPROVE_NOTE = "billing.approve_creditnote"
ROLES = ("support", "reviewer", "finance", "superuser")


def fingerprint() -> str:
    """A digest of every row of every table of the three apps, history tables included. Raw
    rows, read without the ORM: the walk takes one after every POST."""
    digest = hashlib.sha256()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for label in APPS:
            for model in apps.get_app_config(label).get_models():
                table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
                cursor.execute(f"select * from {table} order by {pk}")
                digest.update(table.encode() + repr(cursor.fetchall()).encode())
    return digest.hexdigest()


@pytest.fixture
def world(db, support, reviewer, finance):
    """One row of every kind: a data-stopped workspace, a paid one with a coupon, invoices, a
    credit note, a certificate, a proof, a partner, an approved application with its grant,
    renewal review and deal request, a closed workspace (W1) and a launched campaign (G2)."""
    billing.update_plan(
        Plan.objects.get(code="team"),
        by=finance,
        reason="Yearly review",
        overage_rate="0.01",
        name="Team plan",
        effective_on=date(2026, 1, 1),
    )
    startups.set_territory("FR", active=False, by=reviewer, reason="Paused")
    stopped = workspace(as_of=date(2026, 1, 1), name="Stopped")
    for month in (date(2026, 1, 1), date(2026, 2, 1)):
        billing.record_usage(stopped, month=month, mtus=5_000)
    paid = paid_monthly(as_of=date(2026, 1, 1), name="Paid")
    coupons.redeem_coupon(
        paid,
        coupon(code="TWENTY", percent_off="20", duration="forever").code,
        by=support,
        as_of=date(2026, 1, 1),
    )
    billing.record_usage(paid, month=date(2026, 1, 1), mtus=12_000)
    member = paid_monthly(as_of=date(2026, 1, 1), name="Member")
    partner = coupons.apply_as_partner(
        "Launchpad", contact_name="Lee", contact_email="lee@example.com", as_of=date(2026, 1, 2)
    )
    coupons.approve_partner(partner, by=reviewer, as_of=date(2026, 1, 3))
    approved = startups.approve_application(
        application(workspace=member, partner=partner, as_of=date(2026, 1, 5)),
        by=reviewer,
        note="",
        as_of=date(2026, 1, 6),
    )
    application(company_name="Still Open", as_of=date(2026, 1, 7))
    deal = startups.save_partner_deal(
        None, by=reviewer, company="MailRocket", title="50% off", description="…", active=True
    )
    startups.request_deal(approved, deal=deal, as_of=date(2026, 1, 8))
    billing.submit_exemption(
        paid,
        region="OR",
        reason="nonprofit",
        document=ContentFile(PDF, name="c.pdf"),
        valid_from=date(2026, 1, 1),
        as_of=date(2026, 1, 9),
    )
    coupons.submit_nonprofit_proof(
        paid, document=ContentFile(PDF, name="p.pdf"), by=support, as_of=date(2026, 1, 9)
    )
    # The renewal decision a year ahead is entered before the clock runs: once it has run, a
    # change dated past a month close it has not reached waits for it (D4).
    startups.open_renewal_reviews(as_of=date(2027, 1, 6))
    startups.decline_renewal(
        RenewalReview.objects.get(), by=reviewer, note="Raised too much", as_of=date(2027, 1, 6)
    )
    billing.run_billing(as_of=date(2026, 3, 2))
    invoice = Invoice.objects.filter(workspace=paid).first()
    billing.request_credit_note(
        invoice, by=support, amount=Decimal("1.00"), reason="Goodwill", as_of=date(2026, 3, 2)
    )
    billing.void_invoice(
        Invoice.objects.filter(workspace=paid).last(),
        by=finance,
        reason="Test",
        as_of=date(2026, 3, 3),  # D2: after the last day the clock processed
    )
    closed = workspace(as_of=date(2026, 3, 3), name="Closed")
    billing.close_workspace(closed, by=support, reason="Deleted", as_of=date(2026, 3, 3))
    campaign = coupons.create_campaign(
        "Spring", coupon(code="SPRING").code, "25% off", "Spring is here.", {}, by=support
    )
    coupons.launch_campaign(campaign, by=support, as_of=date(2026, 3, 3))
    stopped.refresh_from_db()
    assert stopped.lock == "locked_data_stopped"
    assert RenewalReview.objects.exists() and CreditNote.objects.exists()
    assert TaxExemption.objects.exists() and PartnerDeal.objects.exists()
    return {
        "stopped": stopped,
        "paid": paid,
        "invoice": invoice,
        "closed": closed,
        "campaign": campaign,
    }


@pytest.fixture
def user(request, support, reviewer, finance, db):
    if request.param == "superuser":
        return User.objects.create_superuser("root", "root@example.com", "pass-for-tests")
    return {"support": support, "reviewer": reviewer, "finance": finance}[request.param]


def registered():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in APPS
    ]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _tampered(obj) -> dict:
    """The row's own values with every text, number and flag changed: what an attacker posts."""
    data = {}
    for name, value in model_to_dict(obj).items():
        if obj._meta.get_field(name).is_relation:
            value = getattr(value, "pk", value)  # a real row: the tampering is elsewhere
        elif isinstance(value, bool):
            value = "" if value else "on"
        elif isinstance(value, int | Decimal):
            value = "0.50"
        elif isinstance(value, str):
            value = "HACKED" if value else "X"
        elif isinstance(value, list):
            value = [getattr(v, "pk", v) for v in value]
        if value is not None:
            data[name] = value if not isinstance(value, date) else value.isoformat()
    return data


def _may(user, model, action) -> bool:
    return user.has_perm(f"{model._meta.app_label}.{action}_{model._meta.model_name}")


@pytest.mark.parametrize("user", ROLES, indirect=True)
def test_r5_history_pages_are_read_only_for_everyone(client, world, user):
    client.force_login(user)
    before = fingerprint()  # no history POST may write: every one is held to the same
    for model, _ in registered():
        if not hasattr(model._meta, "simple_history_manager_attribute"):
            continue
        oldest = model.history.order_by("history_id").first()
        assert oldest is not None, f"the world has no {model.__name__} with history"
        obj = oldest.instance
        response = client.post(
            _url(model, "simple_history", obj.pk, oldest.history_id), _tampered(oldest.instance)
        )
        assert response.status_code in (403, 405), model.__name__
        assert fingerprint() == before, f"{model.__name__}: a history POST wrote"
        page = client.get(_url(model, "simple_history", obj.pk, oldest.history_id))
        if page.status_code == 200:  # the role may view it: a page to read, nothing to submit
            body = page.content.decode()
            assert "Revert" not in body and 'type="submit" value="Save' not in body


def test_r5_a_history_address_with_an_id_that_is_not_a_number_is_not_found(client, world):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pass-for-tests"))
    client.raise_request_exception = False
    for model, _ in registered():
        if not hasattr(model._meta, "simple_history_manager_attribute"):
            continue
        version = model.history.order_by("history_id").first()
        for object_id, version_id in [
            (version.instance.pk, "abc"),
            ("abc", version.history_id),
            (version.instance.pk, "9" * 30),
        ]:
            url = _url(model, "simple_history", object_id, version_id)
            assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("user", ROLES, indirect=True)
def test_r5_change_add_and_delete_forms_write_only_through_services(client, world, user):
    client.force_login(user)
    before = fingerprint()
    for model, model_admin in registered():
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"the world has no {model.__name__}"
        data = _tampered(obj)
        for view, args, allowed in [
            ("change", [obj.pk], model_admin.update is not None and _may(user, model, "change")),
            ("add", [], model_admin.create is not None and _may(user, model, "add")),
            ("delete", [obj.pk], False),
        ]:
            client.post(_url(model, view, *args), {**data, "post": "yes"})
            after = fingerprint()
            if not allowed:
                assert after == before, f"{model.__name__} {view} wrote for {user}"
            before = after  # the state the next POST starts from


@pytest.mark.parametrize("user", ROLES, indirect=True)
def test_r5_actions_change_nothing_without_their_right(client, world, user):
    client.force_login(user)
    superuser = User(is_superuser=True, is_staff=True, is_active=True)
    factory = RequestFactory()
    before = fingerprint()  # none of these may write
    for model, model_admin in registered():
        as_root, as_user = factory.get("/"), factory.get("/")
        as_root.user, as_user.user = superuser, user
        offered = set(model_admin.get_actions(as_user))
        for name in model_admin.get_actions(as_root):
            if name in offered:
                continue
            for obj in model._default_manager.order_by("pk")[:3]:
                client.post(
                    _url(model, "changelist"),
                    {
                        "action": name,
                        "_selected_action": [obj.pk],
                        "confirm": "yes",
                        "reason": "side door",
                        "index": 0,
                    },
                )
                assert fingerprint() == before, f"{model.__name__}.{name} ran for {user}"


def _action_pages(world):
    """The custom pages that call services: (url, data, the permission they need)."""
    stopped, paid, invoice = world["stopped"], world["paid"], world["invoice"]
    closed, campaign = world["closed"], world["campaign"]
    open_application = StartupApplication.objects.get(company_name="Still Open")
    redemption = Redemption.objects.filter(workspace=paid).first()
    review = RenewalReview.objects.first()

    def ws_action(ws, name):
        return reverse("admin:billing_workspace_action", args=[ws.pk, name])

    def ws_page(ws, name):
        return reverse(f"admin:billing_workspace_{name}", args=[ws.pk])

    def app_action(name):
        return reverse("admin:startups_application_action", args=[open_application.pk, name])

    def decide(prefix, obj, name):
        return reverse(f"admin:{prefix}_decide", args=[obj.pk, name])

    terms = PlanTerms.objects.get(plan__code="team", effective_on=date(2026, 1, 1))
    certificate = TaxExemption.objects.get()
    proof = NonprofitProof.objects.get()
    note = CreditNote.objects.get()

    return [
        (ws_action(stopped, "unlock"), {"reason": "x"}, "billing.unlock_workspace"),
        (ws_action(paid, "plan"), {"plan": "free", "reason": "x"}, "billing.change_plan_workspace"),
        (
            ws_action(paid, "interval"),
            {"interval": "annual", "reason": "x"},
            "billing.change_plan_workspace",
        ),
        (
            ws_action(stopped, "payment-method"),
            {"brand": "Visa", "last4": "4242"},
            "billing.change_workspace",
        ),
        (
            ws_action(paid, "usage"),
            {"month": "2026-03", "mtus": "9", "reason": "T9"},
            "billing.add_usage",
        ),
        (
            reverse("admin:billing_usage_import"),
            {
                "file": SimpleUploadedFile(
                    "u.csv", f"workspace,month,mtus\n{paid.slug},2026-03,9\n".encode()
                )
            },
            "billing.import_usage",
        ),
        (
            reverse("admin:billing_invoice_void", args=[invoice.pk]),
            {"reason": "x"},
            "billing.void_invoice",
        ),
        (
            reverse("admin:billing_invoice_credit_note", args=[invoice.pk]),
            {"amount": "1.00", "reason": "x"},
            "billing.add_creditnote",
        ),
        (
            reverse("admin:coupons_redemption_apply"),
            {"workspace": world["stopped"].pk, "coupon": "TWENTY", "reason": "x"},
            "coupons.add_redemption",
        ),
        (
            reverse("admin:coupons_redemption_remove", args=[redemption.pk]),
            {"reason": "x"},
            "coupons.remove_discount",
        ),
        (
            reverse("admin:billing_planterms_withdraw", args=[terms.pk]),
            {"reason": "x"},
            "billing.change_plan",
        ),
        (ws_page(paid, "close"), {"reason": "x"}, "billing.close_workspace"),
        (ws_page(closed, "reopen"), {"reason": "x"}, "billing.close_workspace"),
        (ws_page(paid, "forecast"), {"change": "close", "months": "12"}, "billing.view_invoice"),
        (
            reverse("admin:coupons_campaign_launch", args=[campaign.pk]),
            {},
            "coupons.launch_campaign",
        ),
        (app_action("review"), {}, "startups.review_application"),
        (app_action("withdraw"), {}, "startups.review_application"),
        (app_action("reject"), {"reason": "x"}, "startups.review_application"),
        (
            reverse("admin:startups_renewal_decide", args=[review.pk]),
            {"decision": "confirm", "total_funding": "1.00", "country": "DE", "note": "x"},
            "startups.review_application",
        ),
        # Decisions on the page you read (issue 13).
        *[
            (decide("billing_taxexemption", certificate, name), {"reason": "x"}, REVIEW_CERT)
            for name in ("review", "approve", "reject")
        ],
        *[
            (decide("coupons_proof", proof, name), {"reason": "x"}, "coupons.review_nonprofitproof")
            for name in ("approve-and-apply", "approve", "reject")
        ],
        *[
            (decide("billing_creditnote", note, name), {"reason": "x"}, APPROVE_NOTE)
            for name in ("approve", "reject")
        ],
    ]


@pytest.mark.parametrize("user", ROLES, indirect=True)
def test_r5_action_pages_refuse_a_role_without_the_right(client, world, user):
    client.force_login(user)
    before = fingerprint()  # none of these may write
    for url, data, permission in _action_pages(world):
        if user.has_perm(permission):
            continue
        assert client.post(url, data).status_code == 403, url
        assert fingerprint() == before, url


def _downloads(world):
    """The private documents and exports: (url, the permission they need)."""
    return [
        (
            reverse("finance:certificate-document", args=[TaxExemption.objects.get().pk]),
            "billing.view_taxexemption",
        ),
        (
            reverse("coupons:proof-document", args=[NonprofitProof.objects.get().pk]),
            "coupons.view_nonprofitproof",
        ),
        (reverse("finance:invoice-pdf", args=[world["invoice"].pk]), "billing.view_invoice"),
        (reverse("finance:invoices-export"), "billing.export_invoice"),
    ]


@pytest.mark.parametrize("user", ROLES[:3], indirect=True)
def test_r1_r2_r3_downloads_refuse_a_role_without_the_right(client, world, user):
    client.force_login(user)
    for url, permission in _downloads(world):
        assert client.get(url).status_code == (200 if user.has_perm(permission) else 403), url


def test_r1_r2_r3_a_staff_member_in_no_group_is_refused_every_page_that_acts(client, world):
    """Staff status opens the admin, nothing more: every action page and download answers 403
    to a staff member in no group, and nothing is written."""
    client.force_login(User.objects.create_user("nobody", password="pass-for-tests", is_staff=True))
    before = fingerprint()
    for url, data, _ in _action_pages(world):
        assert client.post(url, data).status_code == 403, url
    for url, _ in _downloads(world):
        assert client.get(url).status_code == 403, url
    assert fingerprint() == before


def test_r1_r2_r3_a_deactivated_members_open_session_acts_no_more(client, world, support):
    """Support is deactivated while signed in: the next POST to any action page, and any
    download, goes to the sign-in page, and nothing is written."""
    client.force_login(support)
    User.objects.filter(pk=support.pk).update(is_active=False)
    before = fingerprint()
    for url in [url for url, _ in _downloads(world)] + [u for u, _, _ in _action_pages(world)]:
        response = client.post(url, {"reason": "x"}) if "/admin/" in url else client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("admin:login")), url
    assert fingerprint() == before


@pytest.mark.parametrize("user", ROLES[:3], indirect=True)
def test_r1_r2_r3_no_role_grants_itself_a_group_a_permission_or_superuser(client, world, user):
    """The user and group pages are the superuser's: a role posting its own user with the
    Finance group and superuser status, its own group with every permission, a new user or a
    new password for another is refused, and its rights are as they were."""
    client.force_login(user)
    own, finance = user.groups.get(), Group.objects.get(name="Finance")
    other = User.objects.exclude(pk=user.pk).first()
    rights = set(own.permissions.values_list("pk", flat=True))
    for url, data in [
        (
            reverse("admin:auth_user_change", args=[user.pk]),
            {
                "username": user.username,
                "is_active": "on",
                "is_staff": "on",
                "is_superuser": "on",
                "groups": [own.pk, finance.pk],
            },
        ),
        (
            reverse("admin:auth_group_change", args=[own.pk]),
            {
                "name": own.name,
                "permissions": list(Permission.objects.values_list("pk", flat=True)),
            },
        ),
        (
            reverse("admin:auth_user_add"),
            {"username": "new", "password1": "Long-pass-9!", "password2": "Long-pass-9!"},
        ),
        (
            reverse("admin:auth_user_password_change", args=[other.pk]),
            {"password1": "Long-pass-9!", "password2": "Long-pass-9!"},
        ),
    ]:
        assert client.post(url, data).status_code == 403, url
    user.refresh_from_db()
    assert not user.is_superuser and list(user.groups.all()) == [own]
    assert set(own.permissions.values_list("pk", flat=True)) == rights
    assert not User.objects.filter(username="new").exists()
    assert not other.check_password("Long-pass-9!")


@pytest.mark.parametrize("user", ("support", "superuser"), indirect=True)
def test_r5_g2_a_launched_campaign_cannot_be_saved_by_its_change_form(client, world, user):
    """Support edits a draft campaign through `update_campaign`; once launched its emails went
    out as they were: the change form is read-only and a POST to it, with a reason and new
    values, is refused and writes nothing."""
    campaign = Campaign.objects.get(pk=world["campaign"].pk)
    assert campaign.status == "launched" and user.has_perm("coupons.change_campaign")
    client.force_login(user)
    url = _url(Campaign, "change", campaign.pk)
    assert 'name="_save"' not in client.get(url).content.decode()
    before = fingerprint()
    response = client.post(
        url,
        {
            "name": "HACKED",
            "coupon": campaign.coupon_id,
            "subject": "HACKED",
            "message": "HACKED",
            "plan": "free",
            "change_reason": "side door",
            "_save": "Save",
        },
    )
    assert response.status_code == 403
    assert fingerprint() == before


def test_r5_the_fingerprint_sees_a_change_of_one_figure(world):
    before = fingerprint()
    Usage.objects.filter(workspace=world["paid"]).update(mtus=F("mtus") + 1)
    assert fingerprint() != before


def test_r5_the_walk_covers_every_model_of_the_three_apps():
    shown = {model for model, _ in registered()}
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.object_name.startswith("Historical"):
                continue
            assert model in shown or model.__name__ in {
                "InvoiceLine",  # shown inline on its invoice
                "PaymentMethod",  # inline on its workspace
                "SetAsideInvoice",  # inline on its month close
                "UsageImportJob",  # followed on the usage import page only
                "InvoiceSequence",
                "MonthCloseChunk",
                "WorkerHeartbeat",  # on the finance panel of the admin index; workers write it
                "InvoiceRollup",  # what the finance reports sum: the invoices' triggers write it
                # G2: counted on its campaign's page; written only by the launch's batches.
                "CampaignRecipient",
                # D3: written only by `switch_coupon`; its coupon's history names each switch.
                "CouponSwitch",
            }, f"{model.__name__} has no admin: add it to the walk or say why not"


def test_r5_a_view_only_role_cannot_unlock_through_history(client, world, reviewer):
    """The reproduction: a reviewer (workspaces read-only) posted an old, unlocked version."""
    stopped = world["stopped"]
    oldest = stopped.history.order_by("history_id").first()
    client.force_login(reviewer)
    response = client.post(
        _url(Workspace, "simple_history", stopped.pk, oldest.history_id),
        {**_tampered(oldest.instance), "lock": "unlocked", "data_flow": "on"},
    )
    assert response.status_code == 405
    stopped.refresh_from_db()
    assert (stopped.lock, stopped.data_flow) == ("locked_data_stopped", False)
