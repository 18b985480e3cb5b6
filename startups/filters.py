from functools import lru_cache

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django_countries import countries

from billing.roles import STARTUP_REVIEWERS
from startups.models import StartupApplication

CHECK_CHOICES = [(f"E{i}", f"E{i} fails") for i in range(1, 6)]


@lru_cache(maxsize=8)
def _countries_in(language: str) -> tuple:
    return tuple((code, name) for code, name in countries)


def country_choices() -> tuple:
    """The 250 countries sorted by name, worked out once per language: translating and sorting
    them on every page view was a third of the queue's time."""
    return _countries_in(get_language())


@lru_cache(maxsize=64)
def _options(choices: tuple, selected: frozenset) -> str:
    """The <option>s of a choice list with `selected` marked: the same few strings on every
    page view (mostly the 250 countries with none selected), so written once."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        (
            (key, mark_safe(" selected") if str(key) in selected else "", label)
            for key, label in choices
        ),
    )


class QuickSelect(forms.Select):
    """A <select> whose options are written in Python. Django renders each option through a
    template include, and the country list has 250: most of the queue's rendering time."""

    def render(self, name, value, attrs=None, renderer=None):
        options = _options(tuple(self.choices), frozenset(self.format_value(value)))
        attributes = flatatt(self.build_attrs(self.attrs, attrs))
        return format_html('<select name="{}"{}>{}</select>', name, attributes, options)


def submitted_bound(lookup_expr, *, label):
    """One end of the submitted-date range: a date picker with its own label. A date that is
    not one is reported (the view lists nothing until it is fixed) instead of being ignored."""
    return django_filters.DateFilter(
        field_name="submitted_on",
        lookup_expr=lookup_expr,
        label=label,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )


class SubmittedRangeForm(forms.Form):
    def clean(self):
        data = super().clean()
        start, end = data.get("submitted_after"), data.get("submitted_before")
        if start and end and end < start:
            # Beside the field, where the queue shows its errors (it listed nothing, silently).
            self.add_error(
                "submitted_before",
                f"The range ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d}).",
            )
        return data


class ApplicationFilter(django_filters.FilterSet):
    """The reviewer queue's filters (issue: status, country, partner, failing check,
    assigned reviewer, submitted date range) and its sort order."""

    # No join, so no duplicate rows: DISTINCT over every column (the checks' JSON included)
    # would cost the queue's count and page most of their time.
    # Ticks, not a list box: adding a second status to a list box takes a ctrl-click.
    status = django_filters.MultipleChoiceFilter(
        choices=StartupApplication.Status.choices,
        distinct=False,
        widget=forms.CheckboxSelectMultiple,
    )
    country = django_filters.ChoiceFilter(choices=country_choices, widget=QuickSelect)
    partner = django_filters.CharFilter(field_name="partner_name", lookup_expr="icontains")
    failing = django_filters.ChoiceFilter(
        choices=CHECK_CHOICES + [("none", "All checks pass")],
        method="filter_failing",
        label="Failing check",
    )
    # Walk 9: who can be assigned (a reviewer), and whoever has applications assigned still.
    assigned_to = django_filters.ModelChoiceFilter(
        queryset=get_user_model()
        .objects.filter(  # by subqueries, not joins: each user once, with no DISTINCT
            Q(pk__in=get_user_model().objects.filter(groups__name=STARTUP_REVIEWERS).values("pk"))
            | Q(pk__in=StartupApplication.objects.values("assigned_to"))
        )
        .order_by("username"),
        label="Assigned reviewer",
    )
    submitted_after = submitted_bound("gte", label="Submitted from")
    submitted_before = submitted_bound("lte", label="Submitted until")
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
        form = SubmittedRangeForm

    def filter_failing(self, queryset, name, value):
        if value == "none":
            return queryset.filter(failing_checks="")
        return queryset.filter(failing_checks__contains=value)

    def filter_search(self, queryset, name, value):
        return queryset.filter(company_name__icontains=value) | queryset.filter(
            contact_email__icontains=value
        )
