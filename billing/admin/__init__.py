"""The support console (R1) and the read-only money rows, one module per concept. Actions and
pages call services; a refusal comes back as an error message that says why.

Django's admin autodiscovery imports this package: importing each module registers its admins.
"""

from billing.admin import (  # noqa: F401  (imported to register their admins)
    closures,
    credit_notes,
    emails,
    invoices,
    locks,
    month_close,
    search,
    tax,
    usage,
    workspaces,
)

# The workspace page that coupons' admin extends (and bench/workspace_admin.py measures).
from billing.admin.workspaces import WorkspaceAdmin

__all__ = ["WorkspaceAdmin"]
