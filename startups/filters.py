import django_filters
from django.contrib.auth import get_user_model
from django_countries import countries

from startups.models import StartupApplication

CHECK_CHOICES = [(f"E{i}", f"E{i} fails") for i in range(1, 6)]


class ApplicationFilter(django_filters.FilterSet):
    """The reviewer queue's filters (issue: status, country, partner, failing check,
    assigned reviewer, submitted date range) and its sort order."""

    status = django_filters.MultipleChoiceFilter(choices=StartupApplication.Status.choices)
    country = django_filters.ChoiceFilter(choices=countries)
    partner = django_filters.CharFilter(field_name="partner_name", lookup_expr="icontains")
    failing = django_filters.ChoiceFilter(
        choices=CHECK_CHOICES + [("none", "All checks pass")],
        method="filter_failing",
        label="Failing check",
    )
    assigned_to = django_filters.ModelChoiceFilter(
        queryset=get_user_model().objects.filter(is_staff=True), label="Assigned reviewer"
    )
    submitted = django_filters.DateFromToRangeFilter(field_name="submitted_on")
    q = django_filters.CharFilter(method="filter_search", label="Company or email")
    order = django_filters.OrderingFilter(
        fields=(
            ("submitted_on", "submitted"),
            ("company_name", "company"),
            ("total_funding", "funding"),
            ("incorporation_date", "incorporated"),
        ),
    )

    class Meta:
        model = StartupApplication
        fields = []

    def filter_failing(self, queryset, name, value):
        if value == "none":
            return queryset.filter(failing_checks="")
        return queryset.filter(failing_checks__contains=value)

    def filter_search(self, queryset, name, value):
        return queryset.filter(company_name__icontains=value) | queryset.filter(
            contact_email__icontains=value
        )
