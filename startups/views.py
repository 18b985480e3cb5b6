"""The public application form (no login) and the reviewer queue (staff)."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django.views.generic import TemplateView

from billing import admin_toolkit as toolkit
from billing.views import PublicFormPages, public_form
from startups.admin.applications import APPLICATION_TONES, REVIEW, checklist
from startups.filters import ApplicationFilter
from startups.forms import ApplicationForm, submit_answers
from startups.models import RenewalReview, StartupApplication

PAGES = PublicFormPages(templates="startups/", thanks="startups:thanks", limit="startup-apply")


@require_http_methods(["GET", "POST"])
def apply(request):
    """S1: the public application form."""
    today = timezone.now().date()
    form = ApplicationForm(request.POST or None, today=today)
    return public_form(request, form, PAGES, lambda answers: submit_answers(answers, as_of=today))


thanks = TemplateView.as_view(template_name="startups/thanks.html")


@staff_member_required
@permission_required("startups.view_startupapplication", raise_exception=True)
def queue(request):
    """The reviewer queue: filtered, sorted, paginated; the checklist in each row."""
    applications = StartupApplication.objects.select_related("assigned_to", "workspace")
    # With no filter asked for, the open applications; a page number is no filter (the pager's
    # "?page=2" of the default view listed every application from page 2 on).
    filters = request.GET.copy()
    filters.pop("page", None)
    if not filters:
        filters.setlist(
            "status", [StartupApplication.Status.SUBMITTED, StartupApplication.Status.IN_REVIEW]
        )
    filtered = ApplicationFilter(filters, queryset=applications.order_by("-submitted_on", "-id"))
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
        application.status_badge = toolkit.status_badge(application, "status", APPLICATION_TONES)
        application.change_url = application_url.replace("/0/", f"/{application.pk}/")
        if application.workspace_id:
            application.workspace_url = workspace_url.replace(
                "/0/", f"/{application.workspace_id}/"
            )
        application.checklist = checklist(application)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **admin.site.each_context(request),
        "filter": filtered,
        "page": page,
        "query": query.urlencode(),
        "title": "Review queue",
        # Walk 9: the link opens the application's form, which only who may change it can use.
        "may_link": request.user.has_perm("startups.change_startupapplication"),
        **_renewals_due(request.user),
    }
    return render(request, "startups/queue.html", context)


RENEWALS_LISTED = 20


def _renewals_due(user) -> dict:
    """CR3: the open year-two reviews, soonest due first, above the applications (the first
    RENEWALS_LISTED, and how many in all; the renewal reviews' list has the rest), each with
    how many days it is overdue."""
    if not user.has_perm("startups.view_renewalreview"):
        return {}
    pending = RenewalReview.objects.filter(status=RenewalReview.Status.PENDING)
    renewals = list(
        pending.select_related("application__workspace").order_by("due_on", "id")[
            : RENEWALS_LISTED + 1
        ]
    )
    count = len(renewals) if len(renewals) <= RENEWALS_LISTED else pending.count()
    # A grant confirmed after the anniversary starts on its confirmation: each day past due
    # is a day of credits the startup does not get.
    today = toolkit.today()
    for review in renewals:
        review.days_overdue = max((today - review.due_on).days, 0)
    # Only a reviewer decides (finance sees the queue, and the reviews' dates).
    if user.has_perm(REVIEW):
        decide_url = reverse("admin:startups_renewal_decide", args=[0])
        for review in renewals:
            review.decide_url = decide_url.replace("/0/", f"/{review.pk}/")
    return {
        "renewals": renewals[:RENEWALS_LISTED],
        "renewals_count": count,
        "renewals_url": reverse("admin:startups_renewalreview_changelist")
        + "?status__exact=pending",
    }
