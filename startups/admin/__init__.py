"""The reviewers' console (R2), one module per concept: applications and their review,
territories, partner deals and requests, renewal reviews. Pages call services.

Django's admin autodiscovery imports this package: importing each module registers its admins.
"""

from startups.admin import (  # noqa: F401  (imported to register their admins)
    applications,
    deals,
    eligibility,
    renewals,
    search,
)
