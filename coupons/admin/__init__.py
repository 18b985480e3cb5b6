"""Coupons in the support console (R1), partners for startup reviewers (R2), credits read-only
for finance (R3), one module per concept as in the services. Pages and actions call the
services; a refusal comes back as a message that says why. Money rows are never deleted.

Django's admin autodiscovery imports this package: importing each module registers its admins.
"""

from coupons.admin import (  # noqa: F401  (imported to register their admins)
    campaigns,
    catalogue,
    credits,
    nonprofit_proofs,
    partners,
    redemptions,
    search,
    workspaces,
)
