"""Renewal reviews (CR3): a reviewer confirms E2/E3 with the startup's current figures to grant
year two, or declines it."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from billing.admin_toolkit import ServiceAdmin, call_service, service_form_page
from startups import services
from startups.admin.applications import REVIEW
from startups.forms import RenewalForm
from startups.models import RenewalReview


@admin.register(RenewalReview)
class RenewalReviewAdmin(ServiceAdmin):
    """CR3: confirm E2/E3 with the startup's current figures to grant year two."""

    list_display = ["application", "year", "due_on", "status", "decided_by", "decided_on"]
    list_select_related = ["application", "decided_by"]
    list_filter = ["status", "due_on"]
    readonly_fields = [
        "application",
        "year",
        "due_on",
        "status",
        "decided_by",
        "decided_on",
        "total_funding",
        "country",
        "note",
    ]
    change_form_template = "admin/startups/renewalreview/change_form.html"
    pages = (("<int:pk>/decide/", "decide_view", "startups_renewal_decide"),)

    def decide_view(self, request, pk):
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied
        review = get_object_or_404(RenewalReview.objects.select_related("application"), pk=pk)
        form = RenewalForm(
            request.POST or None,
            initial={
                "total_funding": review.application.total_funding,
                "country": review.application.country,
            },
        )

        def perform(data):
            company = review.application.company_name
            if data["decision"] == "confirm":
                call_service(
                    services.confirm_renewal,
                    review,
                    request,
                    data,
                    "total_funding",
                    "country",
                    "note",
                )
                return f"Year two granted to {company}."
            call_service(services.decline_renewal, review, request, data, "note")
            return f"Year two declined for {company}."

        return service_form_page(
            self,
            request,
            review,
            form=form,
            perform=perform,
            template="admin/startups/renewalreview/decide.html",
            title=f"Year two for {review.application.company_name}",
            review=review,
        )
