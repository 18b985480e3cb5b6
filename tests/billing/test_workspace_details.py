"""A workspace's slug and the names people type: what routes usage to a workspace and what
staff read must be what it seems."""

import re
from datetime import date
from html import unescape

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing import services
from billing.errors import BillingError
from billing.models import Workspace

from .factories import workspace


def test_u1_a_slug_differing_only_in_capitals_is_refused(db):
    """U1: a usage file names a workspace by its slug. "DEMO-0001" beside "demo-0001" would
    take the customer's figures in a file that happens to write it in capitals."""
    workspace(slug="demo-0001", name="Umbrella Retail")
    with pytest.raises(BillingError, match=r"“DEMO-0001” is already used by Umbrella Retail "):
        workspace(slug="DEMO-0001")
    assert Workspace.objects.count() == 1


def test_u1_the_database_keeps_slugs_unique_ignoring_capitals(db):
    ws = workspace(slug="demo-0001")
    other = workspace(slug="other")
    other.slug = "Demo-0001"
    with pytest.raises(IntegrityError), transaction.atomic():
        Workspace.objects.filter(pk=other.pk).update(slug="Demo-0001")
    assert Workspace.objects.get(pk=ws.pk).slug == "demo-0001"


@pytest.mark.parametrize(
    "control", ["\u202e", "\u202d", "\u202a", "\u2066", "\u2067", "\u2068", "\u2069", "\x07"]
)
def test_r4_a_name_with_a_direction_override_or_control_character_is_refused(db, control):
    """A right-to-left override (U+202E) in a name reversed the rest of its cell in every
    list it showed in, so "Acme\u202eKCAB" reads as another name: refused, as are other
    invisible direction and control characters."""
    with pytest.raises(BillingError, match=r"invisible character U\+"):
        workspace(name=f"Acme{control}KCAB")
    ws = workspace(name="Acme")
    with pytest.raises(BillingError, match=r"invisible character U\+"):
        services.update_workspace(
            ws,
            by=None,
            reason="Renamed",
            name=f"Acme{control}KCAB",
            business_country="US",
            business_region="OR",
            billing_email="billing@example.com",
            as_of=date(2026, 1, 2),
        )


def test_r4_names_in_any_script_are_kept(db):
    """Hebrew, Arabic, Devanagari (with its zero-width joiner) and emoji are names, not tricks."""
    for name in ("שלום בע״מ", "شركة البيانات", "क्‍ष Analytics", "👩‍💻 Labs"):
        assert workspace(name=name).name == name


def _hidden_inputs(page: str) -> dict:
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page))


def test_u1_the_add_page_names_the_workspace_a_slug_in_other_capitals_belongs_to(
    client, db, support
):
    workspace(slug="demo-0001", name="Umbrella Retail")
    client.force_login(support)
    url = reverse("admin:billing_workspace_add")
    data = _hidden_inputs(client.get(url).content.decode())
    data.update(
        name="Case dup",
        slug="DEMO-0001",
        billing_email="dup@example.com",
        business_country="US",
        business_region="OR",
    )
    page = unescape(client.post(url, data).content.decode())
    assert "“DEMO-0001” is already used by Umbrella Retail (demo-0001)" in page
    assert "Constraint" not in page
    assert Workspace.objects.count() == 1


def test_x1_a_closed_workspaces_read_only_page_does_not_call_its_region_a_us_state(
    client, db, support
):
    ws = workspace(business_country="BR", business_region="SP", name="Loja")
    services.close_workspace(ws, by=support, reason="Asked to delete", as_of=date(2026, 1, 5))
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    assert "US state code (e.g. CA) where the business is" not in page
    assert "where tax depends on it" in page


@pytest.mark.parametrize("control", ["\u202e", "\x1b", "\r\n"])
def test_r4_g1_s1_one_line_texts_staff_read_refuse_a_direction_override_or_control_character(
    db, control
):
    """An audit: the check above covered some names only. An accelerator's name typed on an
    application, a campaign's name and its email's subject, a tax rate's name (on invoices)
    and a card's brand (on the workspace page) took "Acme\u202eKCAB" or a terminal escape as
    typed. Each is refused now, naming the field, and nothing is written."""
    from billing.models import PaymentMethod, TaxRate
    from coupons import services as coupons
    from coupons.models import Campaign
    from startups.models import StartupApplication
    from tests.coupons.factories import coupon
    from tests.startups.factories import application

    typed = f"Acme{control}KCAB"
    with pytest.raises(BillingError, match=r"The accelerator or VC partner contains the invisible"):
        application(partner_name=typed)
    promo = coupon(code="SPRING")
    for name, subject, field in ((typed, "Spring", "name"), ("Spring", typed, "subject")):
        with pytest.raises(BillingError, match=rf"The {field} contains the invisible character"):
            coupons.create_campaign(name, promo.code, subject, "20% off this spring.")
    with pytest.raises(BillingError, match=r"The tax rate's name contains the invisible"):
        services.set_tax_rate("DE", rate="19", name=typed, valid_from=date(2026, 3, 1))
    ws = workspace(as_of=date(2026, 1, 1))
    with pytest.raises(BillingError, match=r"The card's brand contains the invisible"):
        services.add_payment_method(ws, as_of=date(2026, 1, 2), brand=typed, last4="4242")
    assert not StartupApplication.objects.exists() and not Campaign.objects.exists()
    assert not TaxRate.objects.filter(valid_from=date(2026, 3, 1)).exists()
    assert not PaymentMethod.objects.filter(workspace=ws).exists()
    # Right-to-left text itself is a name, as above.
    assert application(partner_name="שלום Ventures").partner_name == "שלום Ventures"
