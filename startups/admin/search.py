"""What the header's search box finds in startups (`billing.search`): applications by company
or contact email."""

from django.utils.html import format_html

from billing import search
from billing.admin_toolkit import status_badge
from billing.formatting import day
from startups.admin.applications import APPLICATION_TONES
from startups.models import StartupApplication


def _describe_application(application):
    detail = format_html(
        "{} · submitted {} · {}",
        application.contact_email,
        day(application.submitted_on),
        status_badge(application, "status", APPLICATION_TONES),
    )
    return f"{application.company_name} (#{application.pk})", detail


search.register(
    StartupApplication,
    label="Startup applications",
    fields=("company_name", "contact_email"),
    exact=("company_name", "contact_email"),
    order_by=("-submitted_on", "-pk"),
    describe=_describe_application,
)
