"""Renewal reviews (CR3): a reviewer confirms E2/E3 with the startup's current figures to grant
year two, or declines it."""

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import ServiceAdmin, call_service, money_column, service_form_page
from billing.formatting import day, money, period_text
from startups import services
from startups.admin.applications import REVIEW
from startups.forms import RenewalForm
from startups.models import RenewalReview


@admin.register(RenewalReview)
class RenewalReviewAdmin(ServiceAdmin):
    """CR3: confirm E2/E3 with the startup's current figures to grant year two."""

    workspace_of_row = "application__workspace"
    list_display = ["application", "year", "due_on", "status", "decided_by", "decided_on"]
    list_select_related = ["application", "decided_by"]
    list_filter = ["status", "due_on"]
    fields = readonly_fields = [
        "application",
        "year",
        "due_on",
        "status",
        "decided_by",
        "decided_on",
        "funding_display",
        "country",
        "note",
    ]
    change_form_template = "admin/startups/renewalreview/change_form.html"
    pages = (("<int:pk>/decide/", "decide_view", "startups_renewal_decide"),)

    funding_display = money_column("total_funding", description="Total funding")

    def decide_view(self, request, pk):
        if not request.user.has_perm(REVIEW):
            raise PermissionDenied
        review = get_object_or_404(
            RenewalReview.objects.select_related("application", "application__workspace"), pk=pk
        )
        today = toolkit.today()
        valid_from, valid_until = services.year_two_validity(review, today)
        closed = ""
        if review.status != RenewalReview.Status.PENDING:
            closed = f"Decided on {day(review.decided_on)}: {review.get_status_display()}."
        refusal = services.renewal_refusal(review) if not closed else None
        form = RenewalForm(
            request.POST or None,
            initial={
                "total_funding": review.application.total_funding,
                "country": review.application.country,
            },
            decline_only=bool(refusal),
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
                grant = review.application.workspace.credit_grants.get(year=2)
                return (
                    f"Year two granted to {company}: {money(grant.amount)} of credit, "
                    f"{period_text(grant.valid_from, grant.valid_until)}."
                )
            call_service(
                services.decline_renewal, review, request, data, "note", "total_funding", "country"
            )
            return f"Year two declined for {company}."

        amount = services.credit_amount_for_year_two(review.application)
        return service_form_page(
            self,
            request,
            review,
            form=form,
            perform=perform,
            template="admin/startups/renewalreview/decide.html",
            title=f"Year two for {review.application.company_name}",
            closed=closed,
            # CR1: the credit and its days the page says a confirmation grants (a page read
            # before the anniversary, confirmed after it, would grant from another day), and
            # whether it may be confirmed at all.
            shown=f"{review.status} {amount} {valid_from} {valid_until} {refusal}",
            submit_label="Record the decision on year two",
            review=review,
            refusal=refusal,
            amount=amount,
            valid_from=valid_from,
            last_day=valid_until - timedelta(days=1),
            year_one_last_day=review.due_on - timedelta(days=1),
        )
