"""Who may open which admin page: the three staff roles with the real groups of
billing/migrations/0003_role_groups.py (and the later grant migrations), plus an anonymous
visitor and a non-staff user.

The expectations below are derived from that migration's GRANTS (quoted next to each page).
Django's admin answers 403 for a page of a model the user holds no fitting permission on, and
sends anyone who is not an active staff member to the login page.
"""

import importlib
from datetime import date

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from billing import services
from billing.models import MonthClose, PlanTerms
from billing.roles import FINANCE, ROLES, STARTUP_REVIEWERS, SUPPORT

LOGIN = "login"

WORKSPACE_ACTIONS = ["plan", "interval", "payment-method", "usage", "unlock"]

# page id -> URL, given the workspace the test creates.
PAGES = {
    "index": lambda ws: reverse("admin:index"),
    "workspace-changelist": lambda ws: reverse("admin:billing_workspace_changelist"),
    "workspace-add": lambda ws: reverse("admin:billing_workspace_add"),
    "workspace-change": lambda ws: reverse("admin:billing_workspace_change", args=[ws.pk]),
    "usage-changelist": lambda ws: reverse("admin:billing_usage_changelist"),
    "usage-import": lambda ws: reverse("admin:billing_usage_import"),
    "invoice-changelist": lambda ws: reverse("admin:billing_invoice_changelist"),
    "taxrate-changelist": lambda ws: reverse("admin:billing_taxrate_changelist"),
    "taxrate-add": lambda ws: reverse("admin:billing_taxrate_add"),
    "plan-changelist": lambda ws: reverse("admin:billing_plan_changelist"),
    # The terms from the start: the page opens and says they are not withdrawn.
    "planterms-withdraw": lambda ws: reverse(
        "admin:billing_planterms_withdraw", args=[PlanTerms.objects.filter(plan__code="team")[0].pk]
    ),
    "subscription-changelist": lambda ws: reverse("admin:billing_subscription_changelist"),
    "lockevent-changelist": lambda ws: reverse("admin:billing_lockevent_changelist"),
    "monthclose-changelist": lambda ws: reverse("admin:billing_monthclose_changelist"),
    # A close with nothing set aside: the page opens and says so.
    "monthclose-retry": lambda ws: reverse(
        "admin:billing_monthclose_retry",
        args=[MonthClose.objects.create(month=date(2025, 12, 1), closed_on=date(2026, 1, 1)).pk],
    ),
    "billingclock-changelist": lambda ws: reverse("admin:billing_billingclock_changelist"),
    "outboundemail-changelist": lambda ws: reverse("admin:billing_outboundemail_changelist"),
    # Credit notes are not registered in the admin yet: no page to check.
    "workspace-close": lambda ws: reverse("admin:billing_workspace_close", args=[ws.pk]),
    "workspace-reopen": lambda ws: reverse("admin:billing_workspace_reopen", args=[ws.pk]),
    "workspace-forecast": lambda ws: reverse("admin:billing_workspace_forecast", args=[ws.pk]),
    "workspaceclosure-changelist": lambda ws: reverse("admin:billing_workspaceclosure_changelist"),
    "campaign-changelist": lambda ws: reverse("admin:coupons_campaign_changelist"),
    "campaign-add": lambda ws: reverse("admin:coupons_campaign_add"),
    **{
        f"workspace-action-{name}": (
            lambda ws, name=name: reverse("admin:billing_workspace_action", args=[ws.pk, name])
        )
        for name in WORKSPACE_ACTIONS
    },
}

# Pages each staff role may open (200); every other page answers 403.
ALLOWED = {
    SUPPORT: {
        "index",
        "workspace-changelist",  # view/add/change_workspace
        "workspace-add",  # add_workspace
        "workspace-change",  # change_workspace
        "usage-changelist",  # view/add/change_usage
        "usage-import",  # import_usage
        "invoice-changelist",  # view_invoice
        "plan-changelist",  # view_plan
        "subscription-changelist",  # view_subscription
        "lockevent-changelist",  # view_lockevent
        "outboundemail-changelist",  # view_outboundemail
        # change_plan_workspace (plan, interval), change_workspace (payment-method),
        # add_usage (usage), unlock_workspace (unlock: the form opens on an unlocked workspace).
        *(f"workspace-action-{name}" for name in WORKSPACE_ACTIONS),
        # close_workspace (0015: close, and reopen: the page opens on an open workspace and says
        # so), view_invoice (the forecast), view_workspaceclosure; coupons 0005: campaigns.
        "workspace-close",
        "workspace-reopen",
        "workspace-forecast",
        "workspaceclosure-changelist",
        "campaign-changelist",
        "campaign-add",
        "billingclock-changelist",  # view_billingclock (0037): D2's refusals name its day
        # Not: taxrate-* (no taxrate perm), monthclose-changelist (no view_monthclose).
    },
    STARTUP_REVIEWERS: {
        "index",
        "workspace-changelist",  # view_workspace
        "workspace-change",  # view_workspace: the read-only change page
        "usage-changelist",  # view_usage
        "plan-changelist",  # view_plan
        "subscription-changelist",  # view_subscription
        "workspaceclosure-changelist",  # view_workspaceclosure (0015)
        "billingclock-changelist",  # view_billingclock (0037)
    },
    FINANCE: {
        "index",
        "workspace-changelist",  # view_workspace
        "workspace-change",  # view_workspace: the read-only change page
        "usage-changelist",  # view_usage
        "invoice-changelist",  # view_invoice
        "taxrate-changelist",  # view/add/change_taxrate
        "taxrate-add",  # add_taxrate
        "plan-changelist",  # view/change_plan
        "planterms-withdraw",  # change_plan: withdrawing terms changes the plan
        "subscription-changelist",  # view_subscription
        "lockevent-changelist",  # view_lockevent
        "monthclose-changelist",  # view_monthclose
        "monthclose-retry",  # retry_set_aside_monthclose (0052)
        "outboundemail-changelist",  # view_outboundemail (0012: failed and stuck emails)
        "workspace-forecast",  # view_workspace and view_invoice (FC1)
        "workspaceclosure-changelist",  # view_workspaceclosure (0015)
        "campaign-changelist",  # view_campaign (coupons 0005)
        "billingclock-changelist",  # view_billingclock (0037)
        # Not: workspace-add, usage-import, any workspace action, closing, adding a campaign.
    },
}

ROLE_IDS = {SUPPORT: "support", STARTUP_REVIEWERS: "reviewer", FINANCE: "finance"}


def _cases():
    for role in ROLES:
        for page in PAGES:
            expected = 200 if page in ALLOWED[role] else 403
            yield pytest.param(role, page, expected, id=f"{ROLE_IDS[role]}-{page}-{expected}")
    for who in ("anonymous", "non-staff"):
        for page in PAGES:
            yield pytest.param(who, page, LOGIN, id=f"{who}-{page}-{LOGIN}")


@pytest.fixture
def workspace(db):
    return services.create_workspace(
        "Acme",
        slug="acme",
        business_country="DE",
        billing_email="a@example.com",
        as_of=date(2026, 1, 1),
    )


@pytest.fixture
def non_staff(db):
    """In the Support group, but not staff: the admin must not let them in."""
    user = User.objects.create_user(username="not_staff", password="pass-for-tests", is_staff=False)
    user.groups.add(Group.objects.get(name=SUPPORT))
    return user


@pytest.mark.parametrize(("who", "admin_page", "expected"), list(_cases()))
def test_admin_page_access(
    who, admin_page, expected, client, workspace, staff_user, non_staff, today
):
    if who == "non-staff":
        client.force_login(non_staff)
    elif who != "anonymous":
        client.force_login(staff_user(who))
    url = PAGES[admin_page](workspace)

    response = client.get(url)

    if expected == LOGIN:
        assert response.status_code == 302, url
        login, _, query = response.url.partition("?")
        assert login == reverse("admin:login")
        assert "next=" in query
    else:
        assert response.status_code == expected, url


def test_root_redirects_to_admin(client, support):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == reverse("admin:index")

    client.force_login(support)
    assert client.get("/", follow=True).redirect_chain == [(reverse("admin:index"), 302)]


GRANTING_MIGRATIONS = {
    "billing": (
        "0003_role_groups",
        "0007_tax_exemption_role_grants",
        "0012_outbox_resend_role_grants",
        "0015_closure_role_grants",
        "0018_set_aside_role_grants",
        "0025_plan_terms_role_grants",
        "0037_billing_clock_seen_by_every_role",
        "0052_month_close_retry_permission",
    ),
    "coupons": (
        "0003_role_groups",
        "0005_campaign_role_grants",
        "0006_support_edits_draft_campaigns",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("app_label", list(GRANTING_MIGRATIONS))
def test_r1_r2_r3_groups_hold_exactly_the_migrations_grants_and_nobody_deletes(app_label):
    """The matrix above is derived from these grants: if they change, revisit it."""
    grants = [
        importlib.import_module(f"{app_label}.migrations.{name}").GRANTS
        for name in GRANTING_MIGRATIONS[app_label]
    ]
    for role in ROLES:
        granted = set(
            Group.objects.get(name=role)
            .permissions.filter(content_type__app_label=app_label)
            .values_list("codename", flat=True)
        )
        assert granted == {codename for g in grants for codename in g.get(role, [])}, role
        assert not any(codename.startswith("delete_") for codename in granted), role


@pytest.mark.django_db
def test_admin_index_links_each_role_to_its_work_pages(client, support, reviewer, finance):
    finance_link, queue_link = reverse("finance:invoices"), reverse("startups:queue")
    expected = {support: (False, True), reviewer: (False, True), finance: (True, True)}
    for user, (sees_finance, sees_queue) in expected.items():
        client.force_login(user)
        page = client.get(reverse("admin:index")).content.decode()
        assert (f'href="{finance_link}"' in page, f'href="{queue_link}"' in page) == (
            sees_finance,
            sees_queue,
        ), user
