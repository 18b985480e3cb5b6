"""The public application form (no login) and the reviewer queue (staff)."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.views.decorators.http import require_http_methods

from billing import ratelimit
from billing.admin_toolkit import status_badge
from startups import services
from startups.admin import APPLICATION_TONES
from startups.filters import ApplicationFilter
from startups.forms import ApplicationForm
from startups.models import StartupApplication

# Accepted applications per client address per hour (billing.ratelimit, SPEC R7).
RATE_LIMITED_FORM = "startup-apply"


@require_http_methods(["GET", "POST"])
def apply(request):
    """S1: the public application form."""
    today = timezone.now().date()
    form = ApplicationForm(request.POST or None, today=today)
    if request.method == "POST":
        if ratelimit.limit_reached(request, RATE_LIMITED_FORM):
            return render(request, "startups/rate_limited.html", status=429)
        if form.is_bot:
            return redirect("startups:thanks")  # tell a bot nothing
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.submit_application(
                    data["company_name"],
                    website=data["website"],
                    contact_name=data["contact_name"],
                    contact_email=data["contact_email"],
                    incorporation_date=data["incorporation_date"],
                    total_funding=data["total_funding"],
                    country=data["country"],
                    workspace=data["workspace"],
                    partner_name=data["partner_name"],
                    as_of=today,
                )
            except services.ApplicationError as exc:
                form.add_error(None, str(exc))
            else:
                ratelimit.count_submission(request, RATE_LIMITED_FORM)
                return redirect("startups:thanks")
    return render(request, "startups/apply.html", {"form": form})


def thanks(request):
    return render(request, "startups/thanks.html")


@staff_member_required
@permission_required("startups.view_startupapplication", raise_exception=True)
def queue(request):
    """The reviewer queue: filtered, sorted, paginated; the checklist in each row."""
    applications = StartupApplication.objects.select_related("assigned_to", "workspace")
    filtered = ApplicationFilter(
        request.GET or None, queryset=applications.order_by("-submitted_on", "-id")
    )
    if not request.GET:
        filtered = ApplicationFilter(
            {"status": [StartupApplication.Status.SUBMITTED, StartupApplication.Status.IN_REVIEW]},
            queryset=applications.order_by("-submitted_on", "-id"),
        )
    applications = filtered.qs
    if filtered.is_bound and not filtered.is_valid():
        applications = applications.none()  # a bad filter is reported, never ignored
    page = Paginator(applications, 50, allow_empty_first_page=True).get_page(
        request.GET.get("page")
    )
    # Each row's links and checklist written here, with one URL reversal for the page: per row
    # in the template they were most of the queue's time (bench/review_queue.py).
    application_url = reverse("admin:startups_startupapplication_change", args=[0])
    workspace_url = reverse("admin:billing_workspace_change", args=[0])
    for application in page:
        application.status_badge = status_badge(application, "status", APPLICATION_TONES)
        application.change_url = application_url.replace("/0/", f"/{application.pk}/")
        if application.workspace_id:
            application.workspace_url = workspace_url.replace(
                "/0/", f"/{application.workspace_id}/"
            )
        application.checklist = format_html_join(
            "",
            '<span class="check {}" title="{}">{}</span>',
            (
                ("pass" if check["passed"] else "fail", check["reason"], check["id"])
                for check in application.checks
            ),
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **admin.site.each_context(request),
        "filter": filtered,
        "page": page,
        "query": query.urlencode(),
        "title": "Review queue",
    }
    return render(request, "startups/queue.html", context)
