"""How the edge-day files set up their workspaces, and Team's dated terms: workspaces by slug,
each named after its slug with an address of its own, so that a run day by day and a catch-up
email the same text to the same address (D4)."""

from billing import services
from billing.models import Plan, Workspace
from tests.billing.factories import workspace


def ws_(slug):
    return Workspace.objects.get(slug=slug)


def new(slug, on, **kwargs):
    """A workspace (Oregon: untaxed unless told) signed up on `on`."""
    return workspace(
        as_of=on, slug=slug, name=slug.title(), billing_email=f"{slug}@example.com", **kwargs
    )


def paid(slug, on, *, interval="monthly", **kwargs):
    """Paid Team from `on` with a card, no trial day (T1: Team, Free and Team the same day)."""
    ws = new(slug, on, card=True, **kwargs)
    services.change_to_team(ws, as_of=on)
    services.change_to_free(ws, as_of=on)
    services.change_to_team(ws, interval=interval, as_of=on)
    return ws


def new_terms(finance, on, **terms):
    """Team's terms changed from `on` (P2, D2), as finance enters a new price list."""
    return services.update_plan(
        Plan.objects.get(code="team"), by=finance, reason="New price list", effective_on=on, **terms
    )
