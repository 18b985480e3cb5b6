"""The admin toolkit all three apps' admins share (DESIGN "What all three apps share"; SPEC R4,
R5). Every change goes through a service:

- `ServiceAdmin` is the base of every ModelAdmin: its history pages are read-only for everyone,
  its add and change forms save through the admin's `create`/`update` (which call services) or
  are not offered, and nothing is deleted.
- `confirm_and_run` is the one confirmation page of bulk actions: it lists the selected rows,
  asks for a reason where the action changes money, plan, lock or coupon state, then runs the
  service once per row and reports each refusal (`run_for_each`). Admins declare their bulk
  actions with `bulk_action`, `immediate_action` (nothing to confirm) or `decision_action`;
  `call_service`/`calls` call the usual (row, by, as_of, form fields) service.
- `service_form_page` is the one page of single-object actions: a form whose valid POST calls a
  service; a refusal comes back on the same page, and a POST from a page that showed another
  state runs nothing.
- `badge`/`badge_column` show a status as a coloured word, the one way lists and pages do;
  `money_column`/`shown_column`/`validity_column` show a field as people read it (money, a
  count, a month, the days something is valid); `with_note` puts a second fact under the first
  in one cell, so lists fit 1,366 px; `shown_value` words a stored value on the history pages;
  `waiting_first` orders a decision queue (certificates, proofs, credit notes).
- `admin_page` renders an extra page of an admin; `ServiceAdmin.pages` routes it.
- `CountryInUseFilter`, `MonthListFilter` and `YesNoFilter` are the list filters more than one
  list needs.
- `DecisionPages` decides one row on its own page, its document (if it has one) beside the buttons.
- `today()` is the admin edge's date, passed down as `as_of`; `row_id` reads a row id from the
  address or a form.
"""

import contextlib
import functools
import hashlib
import logging
from datetime import date, datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import (
    display_for_field,
    flatten_fieldsets,
    lookup_spawns_duplicates,
    unquote,
)
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import (
    EmptyResultSet,
    FieldDoesNotExist,
    ObjectDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.core.paginator import Paginator
from django.db import models, transaction
from django.forms.models import BaseInlineFormSet, construct_instance
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, format_html
from django.utils.text import Truncator, capfirst, smart_split, unescape_string_literal
from django_countries import countries
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from billing.audit import shown_text
from billing.documents import preview
from billing.errors import BillingError
from billing.forecast import nothing_survives
from billing.formatting import day, money
from billing.months import add_months, month_start, parse_month
from billing.search import matching
from billing.turns import in_turn

logger = logging.getLogger(__name__)

REASON_HELP = "Kept in the history with your name: say why, e.g. the ticket number."
# The form field carrying the digest of what a confirmation page showed (`service_form_page`).
SHOWN = "shown"


def today():
    """The date the admin acts on: today in UTC. Tests pin it by patching this function."""
    return timezone.now().date()


def row_id(text) -> int | None:
    """A row id given in the address or a form, or None for anything that cannot be one (a
    database holds ids below 2**63)."""
    text = str(text or "")
    # 19 digits at most: Python reads no more than 4,300 as a number.
    if text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) < 2**63:
        return int(text)
    return None


class CheckedAutocomplete(AutocompleteSelect):
    """The admin's search-as-you-type picker, drawing again a value that is no row id (posted
    by hand: `workspace=abc`, `1.5`, an id beyond 64 bits) as nothing chosen: Django's looks it
    up and fails (a 500). The field says the choice is not valid. Every picker is this one:
    `ServiceAdmin`'s `autocomplete_fields` and the forms of the admin's own pages."""

    class Media:
        # After the admin's autocomplete.js, which draws the pickers this script names.
        js = ["admin/js/autocomplete.js", "billing/autocomplete_names.js"]

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if row_id(v) is not None], attr)


class CountryInUseFilter(admin.SimpleListFilter):
    """A list filter by the countries the rows are in, by name (not the world's 250).
    `parameter_name` is the model's country field."""

    title = "country"
    parameter_name = "country"

    def lookups(self, request, model_admin):
        rows = model_admin.model._default_manager.order_by()
        codes = rows.values_list(self.parameter_name, flat=True).distinct()
        return sorted(
            ((code, countries.name(code)) for code in set(codes) if code),
            key=lambda choice: choice[1],
        )

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class MonthListFilter(admin.SimpleListFilter):
    """A list filter of a month column (U1, F1: each row is a month, dated its 1st): the last
    twelve months by name, any other by address (`?month=2025-03`). Django's date filter
    offers today and the past seven days, which a month's 1st never matches."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        this = month_start(today())
        return [(f"{m:%Y-%m}", f"{m:%B %Y}") for m in (add_months(this, -n) for n in range(12))]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            month = parse_month(self.value())
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc
        return queryset.filter(**{self.parameter_name: month})


class YesNoFilter(admin.SimpleListFilter):
    """A list filter of two choices: the rows that meet `condition()` (a Q or an Exists), or
    the others. A subclass sets `title`, `parameter_name`, `labels` ("yes" and "no" in the
    order and words of the list) and `condition`."""

    labels = (("yes", "Yes"), ("no", "No"))

    def condition(self):
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return self.labels

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.exclude(self.condition())
        return queryset


# --- list columns: statuses as badges, money, counts and dates as people read them -----------


def yes_no_icon(value):
    """Django's yes, no or unknown icon with a word for its alt text: Django writes the value
    there ("True", "False"), and a screen reader reads that aloud. `apps.BillingConfig` puts it
    in place of Django's own, which every list and read-only field draws."""
    name, word = {True: ("yes", "Yes"), False: ("no", "No"), None: ("unknown", "Unknown")}[value]
    return format_html('<img src="{}" alt="{}">', static(f"admin/img/icon-{name}.svg"), word)


def badge(text, tone=""):
    """A status as a coloured label (billing/static/billing/backoffice.css): good, waiting,
    bad or quiet; the word is always written."""
    return format_html('<span class="badge {}">{}</span>', tone, text)


def status_badge(obj, field, tones):
    """`obj`'s `field` choice label as a badge toned by `tones` ({value: "good" | "waiting" |
    "bad" | "quiet"})."""
    return badge(getattr(obj, f"get_{field}_display")(), tones.get(getattr(obj, field), ""))


def badge_column(field, tones, *, description="Status", sortable=True):
    """A list column (and read-only field) showing `status_badge`; sorts by the field."""

    @admin.display(description=description, ordering=field if sortable else None)
    def column(model_admin, obj):
        return status_badge(obj, field, tones)

    return column


def money_column(field, *, description, sortable=True):
    """A list column (and read-only field) showing a sum of money as people read it, in the
    row's currency where it has one; sorts by the field."""

    @admin.display(description=description, ordering=field if sortable else None)
    def column(model_admin, obj):
        return money(getattr(obj, field), getattr(obj, "currency", "USD"))

    return column


def validity_column(first, last, *, last_is_exclusive=False, description="Valid"):
    """A list column (and read-only field) showing the first and last days something is valid,
    one to a line; `last` may be empty (no end date) or, stored exclusive, the day after."""

    @admin.display(description=description, ordering=first)
    def column(model_admin, obj):
        end = getattr(obj, last)
        if end is not None and last_is_exclusive:
            end -= timedelta(days=1)
        last_day = day(end) if end else "no end date"
        return format_html("{} –<br>{}", day(getattr(obj, first)), last_day)

    return column


def shown_column(field, show, *, description, sortable=True):
    """A list column (and read-only field) showing `show(value)` of `field` (a count, a
    month); sorts by the field."""

    @admin.display(description=description, ordering=field if sortable else None)
    def column(model_admin, obj):
        return show(getattr(obj, field))

    return column


def unsorted_column(field, *, description):
    """A list column showing `field` as Django shows a field (a choice's label, a localized
    date), but not sortable: on a growing table no index gives its order, so one page sorted
    every row, and the list's filters answer what the sort would."""

    @admin.display(description=description)
    def column(model_admin, obj):
        shown = obj._meta.get_field(field)
        return display_for_field(getattr(obj, field), shown, model_admin.get_empty_value_display())

    return column


# A country column, as its name: Django's own display of a CountryField flattens the world's
# choices again for every row (243 territories: 50,000 calls, 0.25–0.31 s a page).
country_column = shown_column("country", lambda country: country.name, description="Country")


def waiting_first(waiting, *, since: str, decided: str) -> list:
    """A decision queue's default order: the rows whose `status` is in `waiting` first, the
    longest waiting on top (first come, first decided), then the decided ones, the latest
    decision first. A column header clicked orders by its column instead."""
    is_waiting = models.Q(status__in=waiting)
    return [
        models.Case(models.When(is_waiting, then=0), default=1).asc(),
        models.Case(models.When(is_waiting, then=models.F(since))).asc(nulls_last=True),
        models.Case(models.When(is_waiting, then=models.F("pk"))).asc(nulls_last=True),
        models.F(decided).desc(nulls_last=True),
        "-pk",
    ]


def with_note(text, note):
    """A cell with a quiet line under it (who, when, a slug): lists fit 1366 px that way."""
    return format_html('{}<br><span class="quiet-text">{}</span>', text, note)


def admin_page(model_admin, request, template, *, title, **context):
    """An extra page of `model_admin` (an import, a forecast, a confirmation): the admin's
    chrome, its model's breadcrumbs, and `context`."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.model._meta,
            **context,
        },
    )


class ReasonField(forms.CharField):
    """R4: the why of a change; an empty or blank reason (nothing in it shows) is refused."""

    def __init__(
        self,
        *,
        required=True,
        help_text=REASON_HELP,
        when_empty="Say why: the reason is kept in the history.",
        **kwargs,
    ):
        super().__init__(
            required=required,
            max_length=2_000,
            widget=forms.Textarea(attrs={"rows": 3}),
            help_text=help_text,
            error_messages={"required": when_empty},
            **kwargs,
        )

    def to_python(self, value):
        return shown_text(super().to_python(value))


class ReasonForm(forms.Form):
    reason = ReasonField()


# What the service is given in place of a reason still to be typed (`refusal_beside_reason`).
REASON_TO_COME = "(the reason still to be typed)"


def refusal_beside_reason(form, attempt) -> bool:
    """All errors in one pass: a form whose only fault is its reason (empty, blank or too long)
    would say what the service refuses only once the reason was typed (the third walk: a tax
    rate's start date outside the years billed, a usage figure for a closed month). Here the
    service runs in the forecast's sandbox (`nothing_survives`: nothing it writes or queues
    survives) with a stand-in reason, and its refusal joins the reason's error. True when the
    service ran, so the caller reads again the rows the service may have changed in memory."""
    reasons = {name for name, field in form.fields.items() if isinstance(field, ReasonField)}
    if not form.errors or not set(form.errors) <= reasons:
        return False
    data = {**form.cleaned_data, **dict.fromkeys(set(form.errors), REASON_TO_COME)}
    refusal = ""
    try:
        with nothing_survives("this page"):
            try:
                attempt(data)
            except BillingError as exc:
                refusal = str(exc)
    except BillingError:  # the clock holds the workspace: any refusal comes on the next try
        return True
    if refusal:
        form.add_error(None, refusal)
    return True


class OptionalReasonForm(forms.Form):
    reason = ReasonField(required=False, help_text="Optional; kept in the history.")


class CheckedByService:
    """A ModelForm mixin for admin forms whose save calls a service: the service checks the
    rules and says what is wrong in words a person reads; the model's constraints and unique
    checks would say it again in the database's words, or refuse what the service allows (a
    tax rate replacing one that starts the same day)."""

    unlinked = ()  # `unlinked_rows`: shown, never input
    attempt = None  # (form, data): the save's service call, for `refusal_beside_reason`

    def full_clean(self):
        super().full_clean()
        if self.is_bound and self.attempt is not None:
            refusal_beside_reason(self, lambda data: self.attempt(self, data))

    def _post_clean(self):
        opts = self._meta
        for name in self.unlinked:
            self.cleaned_data.pop(name, None)
        self.instance = construct_instance(self, self.instance, opts.fields, opts.exclude)


class RefusedByService:
    """The form shown again after its service refused the save: bound to what the person
    typed, with the service's words as its error, so nothing typed is lost."""

    refusal = ""

    def clean(self):
        super().clean()
        raise ValidationError(self.refusal)


def may_open(request, model, admin_site=admin.site) -> bool:
    """R1–R3: whether the person may open `model`'s admin pages, so a page links them there."""
    try:
        return admin_site.get_model_admin(model).has_view_permission(request)
    except NotRegistered:
        return False


class RowName(forms.Widget):
    """A related row shown by its name alone. Django's read-only fields draw a field whose
    widget is `read_only` with that widget (as contrib.auth draws the password hash)."""

    read_only = True

    def __init__(self, *, empty):
        super().__init__()
        self.empty = empty

    def render(self, name, value, attrs=None, renderer=None):
        return self.empty if value is None else conditional_escape(value)


def unlinked_rows(model_admin, request, names) -> dict:
    """R1–R3: form fields for the read-only fields among `names` that point at a row whose page
    the person may not open. Django draws such a field as a link to the row's page whoever
    reads it (a reviewer on a credit ledger entry was sent to its invoice, everyone from a
    closure to its user's page: 403); with these it shows the row's name, unlinked. The
    fields are disabled and drop out of the cleaned data (`CheckedByService`)."""
    opts, fields = model_admin.model._meta, {}
    for name in names:
        try:
            field = opts.get_field(name) if isinstance(name, str) else None
        except FieldDoesNotExist:
            continue
        if field is None or not (field.many_to_one or field.one_to_one) or not field.concrete:
            continue
        if not may_open(request, field.related_model, model_admin.admin_site):
            widget = RowName(empty=model_admin.get_empty_value_display())
            fields[name] = forms.Field(required=False, disabled=True, widget=widget)
    return fields


class StoredRows(BaseInlineFormSet):
    """A read-only inline's rows as they are stored. The parent's form posts them back (their
    count and ids), but nothing is read from that or saved: a count raised or an id left out by
    hand drew an empty row whose columns failed (a 500)."""

    def __init__(self, data=None, files=None, **kwargs):
        super().__init__(**kwargs)

    def is_valid(self):
        return True  # nothing posted is read: nothing to refuse

    def save(self, commit=True):
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        return []


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page; services write them."""

    formset = StoredRows
    extra = 0
    can_delete = False
    show_change_link = False

    def __init__(self, parent_model, admin_site):
        super().__init__(parent_model, admin_site)
        if not self.show_change_link:
            # Each row's str() above its cells says again what the cells say
            # (backoffice.css hides it); a row with a change link keeps its link.
            self.classes = [*(self.classes or []), "readonly-rows"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields or ()

    def get_formset(self, request, obj=None, **kwargs):
        base = kwargs.get("form", self.form)
        unlinked = unlinked_rows(self, request, self.fields or ())
        kwargs["form"] = type(base.__name__, (base,), unlinked)
        return super().get_formset(request, obj, **kwargs)

    def get_queryset(self, request):
        # Each row's related rows in its own query, not one query a row: those its cells show
        # (a plan, a coupon, who applied it) and its parent (each row's str() names it).
        related = {
            field.name
            for field in self.model._meta.concrete_fields
            if field.many_to_one
            and (field.name in (self.fields or ()) or field.related_model is self.parent_model)
        }
        return super().get_queryset(request).select_related(*related)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def ordering_direction(part) -> tuple[str, bool] | None:
    """An ordering's field name and whether it is descending; None for an expression on more
    than a field."""
    if isinstance(part, str):
        return part.removeprefix("-"), part.startswith("-")
    if isinstance(part, models.F):
        return part.name, False
    if isinstance(part, models.OrderBy) and isinstance(part.expression, models.F):
        return part.expression.name, part.descending
    return None


class CheckedChangeList(ChangeList):
    """A list whose filters from the address are checked before the page is drawn: a value a
    lookup cannot take (`?month__year=0`) shows the admin's "invalid filter" notice, not a 500.
    Django checks a lookup's value only when its SQL is built, after the list's own checks, and
    on SQLite an id beyond 64 bits (`?workspace=99999999999999999999999`) only when it runs."""

    def get_filters(self, request):
        # The date drill-down reads its year as a date and computes the period's end unchecked:
        # `?issue_date__year=9999` overflows past the calendar, a 20-digit year past C's int.
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        try:
            _, params = queryset.query.get_compiler(queryset.db).as_sql()
        except EmptyResultSet:
            return queryset
        except (ValueError, OverflowError, TypeError, ValidationError) as exc:
            raise IncorrectLookupParameters(exc) from exc
        if any(isinstance(value, int) and not -(2**63) <= value < 2**63 for value in params):
            raise IncorrectLookupParameters("a number beyond what the database holds")
        return queryset

    # A list sorted by a column breaks that column's ties as its default order does (with the
    # "-pk" Django adds to it), turned the column's way; by a column the default order has not,
    # by the admin's ordering and then by id the column's way. Django broke them by the admin's
    # ordering as it stands and by "-pk", whichever way the column went: sorted ascending by an
    # indexed column (invoices by Issued, usage by Month) the database could not read the index
    # backwards and sorted each day's or month's rows (50,000–75,000: 33–106 ms of the
    # database's time a page; bench_sorts). The default order itself is left as Django makes it.

    def get_ordering(self, request, queryset):
        self.default_ordering = list(
            self.model_admin.get_ordering(request) or self._get_default_ordering()
        )
        self.queryset_ordering = list(queryset.query.order_by)
        if ORDER_VAR in self.params:
            queryset = queryset.order_by()  # added back below, or its ties turned
        return super().get_ordering(request, queryset)

    def _get_deterministic_ordering(self, ordering):
        ordering = list(ordering)
        if ORDER_VAR not in self.params:
            return super()._get_deterministic_ordering(ordering)
        last = ordering and ordering_direction(ordering[-1])
        ties = self.ties_as_by_default(ordering, *last) if last else None
        if ties is not None:
            return super()._get_deterministic_ordering(ordering + ties)
        ordering += self.queryset_ordering
        deterministic = super()._get_deterministic_ordering(ordering)
        last = ordering and ordering_direction(ordering[-1])
        if deterministic[len(ordering) :] == ["-pk"] and last and not last[1]:
            deterministic[-1] = "pk"
        return deterministic

    def ties_as_by_default(self, ordering, name, descending):
        """The fields after `name` in the list's default order (usage: the workspace after the
        month), each turned round if `name` is; None when the default order has no `name`."""
        default = super()._get_deterministic_ordering(self.default_ordering)
        default = [ordering_direction(part) for part in default]
        names = [part[0] if part else None for part in default]
        if name not in names:
            return None
        at = names.index(name)
        after = default[at + 1 :]
        if not all(after):
            return None  # an expression: its way is its own
        turned = default[at][1] != descending
        shown = {part[0] for part in map(ordering_direction, ordering) if part}
        return [
            f"{'-' if tie_descending != turned else ''}{tie}"
            for tie, tie_descending in after
            if tie not in shown
        ]


# A list counts at most this many rows, then says "more than 10,000" and pages up to there: an
# exact count of 2.3 million invoices cost every page of the list 160–350 ms, its last page's
# OFFSET sorted them all (15–22 s; bench/staff_walk.py). A list that long is narrowed by its
# filters and search, not paged through.
LIST_COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts the rows up to LIST_COUNT_CAP + 1, in a LIMITed subquery; `capped` says there
    are more than LIST_COUNT_CAP, and the count is LIST_COUNT_CAP."""

    capped = False

    @cached_property
    def count(self):
        rows = self.object_list
        counted = (
            rows.order_by()[: LIST_COUNT_CAP + 1].count()
            if isinstance(rows, models.QuerySet)
            else len(rows)
        )
        self.capped = counted > LIST_COUNT_CAP
        return min(counted, LIST_COUNT_CAP)

    def page(self, number):
        """A page after the first reads its rows' ids alone through the OFFSET (an index of
        the list's order has them), then those rows with everything the list joins. The database
        otherwise joined every row it skipped, or sorted the whole table: the last page of
        30,000 redemptions read 10,000 joined rows (190 ms; their ids alone, 10 ms)."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list
        if bottom == 0 or not _rows_by_id(rows):
            return self._get_page(rows[bottom:top], number, self)
        ids = list(rows.values_list("pk", flat=True)[bottom:top])
        found = rows.in_bulk(ids)
        return self._get_page([found[pk] for pk in ids if pk in found], number, self)


def _rows_by_id(rows) -> bool:
    """Whether `rows` is a query of model rows that a query of their ids alone, in the same
    order, can stand for (DISTINCT would also compare the ordering's columns)."""
    return (
        isinstance(rows, models.QuerySet)
        and rows._iterable_class is models.query.ModelIterable
        and not rows.query.distinct
    )


# The turns (`ServiceAdmin._turn`) of the pages about a workspace or a row of its own.
WORKSPACE_PAGES = "pages of a workspace"


class ServiceAdmin(SimpleHistoryAdmin):
    """R5: a ModelAdmin that writes only through services.

    A subclass that lets staff add rows defines `create(request, data)` (returns the new
    object), one that lets them edit defines `update(request, obj, data, changed)`; without
    them the add or change form is not offered, whatever the user's permissions. With
    `reason_on_change`, the change form asks why (R4) and hands it to `update` as
    `data["change_reason"]`. History pages list and show old versions; none can be restored.
    The admin's own pages (`pages`: route, view method, URL name) are routed before Django's.
    """

    reason_on_change = False
    create = None
    update = None
    pages: tuple[tuple[str, str, str], ...] = ()
    # The path from a page's row to the workspace it belongs to ("pk" on the workspace's own
    # admin), for the rows whose pages change what that workspace's other pages show (an
    # invoice's void gives back credit a closure's final invoice draws; an approved
    # certificate waives its tax): their POSTs take turns with every page of the workspace.
    workspace_of_row: str | None = None
    # The POSTed field naming the workspace on pages where it is picked on the page (a coupon's
    # apply page, an application's Approve page): their POSTs take that workspace's turn too.
    workspace_of_post: str | None = None
    # simple_history's list, with the columns' labels instead of their field names.
    object_history_list_template = "admin/toolkit/history_list.html"
    # No "Show counts": it counts the rows behind every filter choice, one scan each, 1–6.5 s
    # a page on the usage, workspace and invoice lists at 150,000 workspaces (bench/staff_walk.py).
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedPaginator
    # The search's "N results" without "(M total)": M counted the whole table, uncapped.
    show_full_result_count = False
    # A website typed without its scheme is read as https, as the public forms read it.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        # A filter, page or order in the address the list cannot take
        # (`?issue_date__gte=notadate`): Django sends the list without any (`?e=1`) and says
        # nothing, and staff read every row as the filtered ones.
        if response.status_code == 302 and response.url.endswith(f"?{ERROR_FLAG}=1"):
            asked = ", ".join(
                f"{name}={Truncator(value).chars(40)}"
                for name, value in request.GET.items()
                if name != ERROR_FLAG
            )
            self.message_user(
                request,
                f"The list could not be shown with {Truncator(asked).chars(200)}: a filter, "
                "page or order it cannot take. Every row is listed below, from the first page; "
                "choose a filter from the list's own.",
                messages.ERROR,
            )
        return response

    def get_search_results(self, request, queryset, search_term):
        """Django's search (every word in one of `search_fields`; `^` a prefix, `=` the whole
        value), a field of a related row searched in that row's table (`search.matching`):
        the invoice list searched for a workspace joined 360,000 invoices to their workspaces
        and compared both (1.7–3.5 s a page)."""
        fields = self.get_search_fields(request)
        if not (fields and search_term):
            return queryset, False
        prefixes = {"^": "istartswith", "=": "iexact", "@": "search"}
        lookups = [
            f"{field[1:]}__{prefixes[field[0]]}" if field[0] in prefixes else f"{field}__icontains"
            for field in map(str, fields)
        ]
        for word in smart_split(search_term):
            if word.startswith(('"', "'")) and word[0] == word[-1]:
                word = unescape_string_literal(word)
            queryset = queryset.filter(matching(self.model, lookups, word))
        return queryset, any(lookup_spawns_duplicates(self.opts, lookup) for lookup in lookups)

    def response_action(self, request, queryset):
        # A selected row posted by hand that is no row id ("abc", 1.5, beyond 64 bits) is no
        # row: Django filters by it unchecked, and the action's first read of it failed (500).
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        ids = [value for value in selected if row_id(value) is not None]
        if ids != selected:
            request.POST = request.POST.copy()
            request.POST.setlist(helpers.ACTION_CHECKBOX_NAME, ids)
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocomplete(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- permissions: no service, no form ---

    def has_add_permission(self, request, *args):
        return self.create is not None and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self.update is not None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # money and audit rows are never deleted by hand

    def revert_disabled(self, request, obj=None):
        return True

    def get_history_queryset(self, request, history_manager, pk_name, object_id):
        # simple_history joins each version's user, then calls select_related() without names
        # for a model without foreign keys, which drops that join: a query a version.
        tracked = [
            field.name
            for field in history_manager.model.tracked_fields
            if isinstance(field, models.ForeignKey)
        ]
        queryset = super().get_history_queryset(request, history_manager, pk_name, object_id)
        return queryset.select_related("history_user", *tracked)

    # --- the admin's own pages (an import, a decision, a forecast) ---

    def get_pages(self):
        """The admin's own pages; a mixin that brings pages adds its own to `super()`'s."""
        return list(self.pages)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            *(
                path(route, view(self._one_post_at_a_time(getattr(self, method))), name=name)
                for route, method, name in self.get_pages()
            ),
            *super().get_urls(),
        ]

    def _one_post_at_a_time(self, page):
        """A page's POST about one row (its `pk`) waits for any other page's POST about the same
        row, or about the same workspace (`workspace_of_row`, `workspace_of_post`), to finish,
        and only then reads what it shows: two people confirming at once (one workspace's plan
        page and its interval page) would otherwise both pass `service_form_page`'s check of
        what they were shown, read before either held a lock, and the second would act on a
        state its page never showed (a cancellation meant for a monthly plan landing on the
        annual term a colleague had just started)."""

        @functools.wraps(page)
        def one_at_a_time(request, *args, **kwargs):
            with contextlib.ExitStack() as turns:
                for turn in self._turns(request, kwargs):
                    turns.enter_context(in_turn(*turn))
                return page(request, *args, **kwargs)

        return one_at_a_time

    def _turns(self, request, kwargs) -> list[tuple[str, str]]:
        """The keys a POST takes turns on, in this order: its row's (`_turn`), then the workspace
        picked on the page, unless the row's key is already a workspace's. A POST holds at most
        one workspace's key and takes it last, so two waiting POSTs never wait on each other."""
        if request.method != "POST":
            return []
        turns = [self._turn(kwargs["pk"])] if "pk" in kwargs else []
        if self.workspace_of_post and all(scope != WORKSPACE_PAGES for scope, _ in turns):
            picked = row_id(request.POST.get(self.workspace_of_post))
            if picked is not None:
                turns.append((WORKSPACE_PAGES, str(picked)))
        return turns

    def _turn(self, pk) -> tuple[str, str]:
        """The key the POSTs about row `pk` take turns on: its workspace's, where it has one
        (a row's workspace never changes, so it is read before the turn), or its own."""
        path = self.workspace_of_row
        if path == "pk":
            return WORKSPACE_PAGES, str(pk)
        if path is not None:
            rows = self.model._default_manager.filter(pk=pk)
            workspace = rows.values_list(path, flat=True).first()
            if workspace is not None:
                return WORKSPACE_PAGES, str(workspace)
        return f"page {self.model._meta.label}", str(pk)

    # --- the change form asks why ---

    def _asks_reason(self, request, obj):
        if not self.reason_on_change or obj is None:
            return False
        return self.has_change_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        shown_only = {"change_reason", *getattr(form, "unlinked", ())}
        if change and obj is not None and not set(form.fields) - shown_only:
            # Nothing on the page can change (a decided row): no button offers to save it.
            context.update(show_save=False, show_save_and_continue=False)
            context.update(show_save_and_add_another=False)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = kwargs.get("form", self.form)
        # The reason is asked where `get_fieldsets` shows it: not on a page nothing can change.
        fields = kwargs.get("fields")
        extra = (
            {"change_reason": ReasonField(label="Reason")}
            if self._asks_reason(request, obj) and (fields is None or "change_reason" in fields)
            else {}
        )
        # The fields shown read-only: those the admin makes so, or every one to who may only view.
        shown = kwargs.get("fields") or ()
        if not (change and not self.has_change_permission(request, obj)):
            readonly = set(self.get_readonly_fields(request, obj))
            shown = [name for name in shown if name in readonly]
        unlinked = unlinked_rows(self, request, shown)
        extra = {**extra, **unlinked, "unlinked": tuple(unlinked)}
        extra["attempt"] = staticmethod(functools.partial(self._attempt_save, request, obj))
        mixins = (CheckedByService,)
        if refusal := getattr(request, "service_refusal", ""):
            mixins, extra = (RefusedByService, *mixins), {**extra, "refusal": refusal}
        kwargs["form"] = type(base.__name__, (*mixins, base), extra)
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        readonly = {*self.get_readonly_fields(request, obj), "change_reason"}
        if self._asks_reason(request, obj) and set(flatten_fieldsets(fieldsets)) - readonly:
            fieldsets = [*fieldsets, ("Why", {"fields": ["change_reason"]})]
        return fieldsets

    # --- saving goes through the services ---

    def save_model(self, request, obj, form, change):
        if change:
            if not set(form.changed_data) - {"change_reason"}:
                # Nothing to change: no service runs, no history row, no "changed" message.
                request.nothing_changed = True
                return
            # The service reads the row afresh: the form's instance already holds the edits.
            current = type(obj)._default_manager.get(pk=obj.pk)
            self.update(request, current, form.cleaned_data, form.changed_data)
            return
        created = self.create(request, form.cleaned_data)
        obj.pk = created.pk
        # The message and the admin's log name the row as the service stored it (a region
        # typed "wy" is stored "WY"), not as typed.
        obj.refresh_from_db()

    def _attempt_save(self, request, obj, form, data):
        """`save_model`'s service call with `data` (for `refusal_beside_reason`)."""
        if obj is None:
            self.create(request, data)
        elif set(form.changed_data) - {"change_reason"}:
            current = type(obj)._default_manager.get(pk=obj.pk)
            self.update(request, current, data, form.changed_data)

    def log_change(self, request, obj, message):
        if getattr(request, "nothing_changed", False):
            return None
        return super().log_change(request, obj, message)

    def response_change(self, request, obj):
        if getattr(request, "nothing_changed", False):
            self.message_user(request, f"Nothing was changed: {obj} is as it was.", messages.INFO)
            return redirect(request.path)
        return super().response_change(request, obj)

    def save_related(self, request, form, formsets, change):
        """The service saved everything; inlines are read-only, so their formsets write
        nothing (saved uncommitted only so the change message can list them)."""
        for formset in formsets:
            formset.save(commit=False)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BillingError as exc:  # the service refused: nothing was saved (rolled back)
            request.service_refusal = str(exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    # --- history pages are read-only ---

    def history_view(self, request, object_id, extra_context=None):
        if request.method != "GET":  # R5: history is for reading
            return HttpResponseNotAllowed(["GET"])
        try:  # an id from the address that is not a number is no such page
            self.model._meta.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404("No such row.") from None
        if not hasattr(self.model._meta, "simple_history_manager_attribute"):
            # A row without dated history: Django's own page lists the admin log.
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        extra_context = {
            # R1–R3: who changed a row links to their user page only for who may open it.
            "may_open_users": may_open(request, get_user_model(), self.admin_site),
            **(extra_context or {}),
        }
        return super().history_view(request, object_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return ReadableHistory(self.model, historical_record)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """R5: an old version is shown, never saved back: no revert, a POST is refused."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        opts = self.model._meta
        history = getattr(self.model, getattr(opts, "simple_history_manager_attribute", ""), None)
        if history is None:
            raise Http404("This kind of row keeps no dated history.")
        try:  # ids from the address: one that is not a number is no such page
            keys = {
                opts.pk.attname: opts.pk.to_python(unquote(object_id)),
                "history_id": int(version_id),
            }
        except (ValidationError, ValueError):
            raise Http404("No such version.") from None
        record = get_object_or_404(history.select_related("history_user"), **keys)
        if not self.has_view_history_or_change_history_permission(request, record.instance):
            raise PermissionDenied
        rows = [
            (capfirst(field.verbose_name), _display(record, field))
            for field in opts.concrete_fields
            if hasattr(record, field.attname)  # some fields are kept out of the history
        ]
        return admin_page(
            self,
            request,
            "admin/toolkit/history_version.html",
            title=f"{capfirst(opts.verbose_name)} as it was on "
            f"{day(record.history_date.date())} at {record.history_date:%H:%M} UTC",
            record=record,
            rows=rows,
            object_id=object_id,
            history_url=reverse(
                f"admin:{opts.app_label}_{opts.model_name}_history", args=[object_id]
            ),
            **(extra_context or {}),
        )


def shown_value(field, value):
    """A stored value as people read it on the history pages (R4): a choice's label, a day
    as everywhere else, yes or no, and "—" for nothing (simple_history's "Deleted user
    (pk=None)" for an empty link included)."""
    if value is None or value == "" or (isinstance(value, DeletedObject) and value.pk is None):
        return "—"
    if field.choices:
        return dict(field.flatchoices).get(value, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "DATETIME_FORMAT")
    if isinstance(value, date):
        return day(value)
    if isinstance(value, list):  # a JSON column: the checks of an application, a job's errors
        return "; ".join(_json_entry(entry) for entry in value) or "—"
    if isinstance(value, dict):  # a JSON column: a campaign's audience filters
        return _json_entry(value) or "—"
    return value


def _json_entry(entry) -> str:
    """One entry of a JSON column in words: a check as "E1 pass: its reason", other mappings as
    "key: value, …"."""
    if not isinstance(entry, dict):
        return str(entry)
    if {"id", "passed", "reason"} <= entry.keys():
        return f"{entry['id']} {'pass' if entry['passed'] else 'fail'}: {entry['reason']}"
    return ", ".join(f"{key}: {value}" for key, value in entry.items())


class ReadableHistory(HistoricalRecordContextHelper):
    """The history list's "Changes" column, each old and new value by `shown_value`."""

    def prepare_delta_change_value(self, change, value):
        field = self.model._meta.get_field(change.field)
        if field.many_to_many:
            return super().prepare_delta_change_value(change, value)
        return shown_value(field, value)


def _display(record, field):
    if field.is_relation:
        try:
            value = getattr(record, field.name)
        except ObjectDoesNotExist:  # the row it named is gone: its id is all there is
            value = f"#{getattr(record, field.attname)} (deleted)"
    else:
        value = getattr(record, field.attname)
    return shown_value(field, value)


# --- actions ---------------------------------------------------------------------------------


def run_for_each(model_admin, request, objects, perform, *, done, log=None, describe=str):
    """Call `perform(obj)` (a service) for each object in its own transaction; report each
    refusal with the object's name and count the rest. Each success is written to the object's
    admin log as `log` (or `done`). Returns how many succeeded.

    One row that fails otherwise (a deadlock, a lock wait that timed out, a fault) is rolled
    back and reported, and the others still run: stopping at it would leave the rows before
    it done with no log entry or message, and the rows after it not tried."""
    succeeded = 0
    for obj in objects:
        try:
            with transaction.atomic():
                perform(obj)
        except BillingError as exc:
            model_admin.message_user(request, f"{describe(obj)}: {exc}", messages.ERROR)
        except Exception:
            logger.exception("%s failed on %s #%s", capfirst(done), obj._meta.label, obj.pk)
            model_admin.message_user(
                request,
                f"{describe(obj)}: not done, an unexpected error; nothing of it was changed. "
                "Try it again; the error log says what went wrong.",
                messages.ERROR,
            )
        else:
            model_admin.log_change(request, obj, capfirst(log or done))
            succeeded += 1
    if succeeded:
        model_admin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)
    return succeeded


def call_service(service, obj, request, data, *fields):
    """Call `obj`'s service the usual way: by the person on the page, as of today, with the
    form's `fields` (the reason among them where the change asks why, R4)."""
    return service(obj, by=request.user, as_of=today(), **{name: data[name] for name in fields})


def calls(service, *fields):
    """`perform` for `bulk_action`: `call_service` on each selected row, the shape of every
    reasoned transition (`calls(decline_partner, "reason")`)."""
    return lambda model_admin, request, obj, data: call_service(
        service, obj, request, data, *fields
    )


def confirm_and_run(
    model_admin,
    request,
    queryset,
    perform,
    *,
    title,
    done,
    form_class=ReasonForm,
    intro="",
    describe=str,
):
    """An admin action behind one confirmation page. The page lists the selected rows (with
    `describe(obj)`) and `form_class`'s fields (a required reason by default; None for none);
    confirmed and valid, `perform(obj, data)` runs for each row as `run_for_each` does."""
    confirmed = request.POST.get("confirm") == "yes"
    form = form_class(request.POST if confirmed else None) if form_class else None
    if confirmed and (form is None or form.is_valid()):
        data = form.cleaned_data if form else {}
        reason = data.get("reason", "")
        run_for_each(
            model_admin,
            request,
            queryset,
            lambda obj: perform(obj, data),
            done=done,
            log=f"{title}: {reason}" if reason else title,
            describe=describe,
        )
        return None
    return admin_page(
        model_admin,
        request,
        "admin/toolkit/confirm.html",
        title=title,
        intro=intro,
        objects=[(obj.pk, describe(obj)) for obj in queryset],
        form=form,
        action=request.POST.get("action", ""),
        action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        media=model_admin.media + (form.media if form else forms.Media()),
    )


def bulk_action(
    description,
    perform,
    *,
    permission,
    title,
    done,
    form_class=ReasonForm,
    intro="",
    describe=None,
    related=(),
):
    """An admin action behind `confirm_and_run`'s page, declared as the admin's attribute of the
    name its `actions` lists: `perform(model_admin, request, obj, data)` runs for each selected
    row (`related` selected with it), listed on the page with `describe` (by default the
    admin's `describe_row`, or the row's name)."""

    @admin.action(description=description, permissions=[permission])
    def action(model_admin, request, queryset):
        return confirm_and_run(
            model_admin,
            request,
            queryset.select_related(*related) if related else queryset,
            lambda obj, data: perform(model_admin, request, obj, data),
            title=title,
            done=done,
            form_class=form_class,
            intro=intro,
            describe=describe or getattr(model_admin, "describe_row", str),
        )

    return action


def immediate_action(description, perform, *, permission, done, related=()):
    """An admin action with nothing to confirm (no money moves, no reason to give: take into
    review, assign, mark fulfilled): `perform(model_admin, request, obj)` runs for each
    selected row at once, as `run_for_each` does."""

    @admin.action(description=description, permissions=[permission])
    def action(model_admin, request, queryset):
        run_for_each(
            model_admin,
            request,
            queryset.select_related(*related) if related else queryset,
            lambda obj: perform(model_admin, request, obj),
            done=done,
        )

    return action


def service_form_page(
    model_admin,
    request,
    obj,
    *,
    form,
    perform,
    title,
    template=None,
    back_url=None,
    closed="",
    shown="",
    **context,
):
    """Show `form`; on a valid POST call `perform(cleaned_data)` (a service), which returns the
    message, or `(message, object)` when the object to log is not `obj`. A refusal (any
    BillingError) comes back as an error on the same page, input kept; success is written to
    the object's admin log and goes back to `back_url` (default: `obj`'s change page).
    `form=None` is a bare confirmation.

    `closed` says why the object's state rules the action out (a void invoice, a decided
    application): the page says so instead of offering a form, and a POST runs nothing.

    `shown` is what the page tells about the object's state and the action's effects (the
    final invoice a closure issues, the lock an unlock lifts): the form carries its digest, and
    a POST from a page that showed something else (an old tab, the state changed since), or
    that does not say what it showed, runs nothing and shows the page as it is now, to be
    confirmed again."""
    if back_url is None:
        opts = obj._meta
        back_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    shown_digest = hashlib.sha256(shown.encode()).hexdigest()[:20] if shown else ""
    if closed:
        form = None
    elif (
        request.method == "POST"
        and shown_digest
        and request.POST.get(SHOWN) != shown_digest
        and (form is None or form.is_valid())
    ):
        model_admin.message_user(
            request,
            f"{obj} changed since this page was opened, and so has what this does: nothing was "
            "done. Read the page as it is now and confirm again.",
            messages.ERROR,
        )
    elif request.method == "POST" and (form is None or form.is_valid()):
        try:
            with transaction.atomic():
                result = perform(form.cleaned_data if form is not None else {})
        except BillingError as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        else:
            message, logged = result if isinstance(result, tuple) else (result, obj)
            if logged is not None:
                model_admin.log_change(request, logged, message)
            model_admin.message_user(request, message, messages.SUCCESS)
            return redirect(back_url)
    elif request.method == "POST" and form is not None:
        tried = refusal_beside_reason(form, perform)
        if tried and obj is not None:
            obj.refresh_from_db()  # the sandboxed service may have changed it in memory
    return admin_page(
        model_admin,
        request,
        template or "admin/toolkit/action.html",
        title=title,
        form=form,
        object=obj,
        back_url=back_url,
        closed=closed,
        shown_digest=shown_digest,
        media=model_admin.media + (form.media if form is not None else forms.Media()),
        **context,
    )


# --- deciding on the page you read ------------------------------------------------------------


class DecisionPages:
    """A ModelAdmin mixin: a row (a certificate, a proof, a partner) decided on its own page.

    Its change page shows the row's document, if it has one, and one button per decision the
    row's state allows; each button opens a confirmation page with the document again (and
    the decision's form: `decision_form_class`, by default a reason for the decisions in
    `reasoned`) whose POST calls the service; a decision the row's state rules out says so
    instead of offering a form.

    A subclass sets `decisions` ({name: button label, in button order}), `review_permission`
    ("app.codename", also the permission of its bulk actions: `permissions=["review"]`),
    `decide_url_name`, `decide_template` (which reads the row as `row_name`), `document_label`
    and `decision_related`, and defines `open_decisions(obj)` (the names allowed now),
    `decided(obj, decision)` (why the state rules it out, or ""), `decision_subject(obj)` (the
    pages' title after the decision's label), `decision_intros(obj)` ({name: what the decision
    will do}) and `decide(request, obj, decision, data)` (calls the service, returns the
    message). The row's document is `document_url(obj)` of type `obj.content_type`; a row
    without one sets `has_document = False` (its `document` is None, and its own templates
    show none). Bulk actions (`decision_action`) call `decide_selected`, which lists the rows
    with `describe_row(obj)` and asks for the same form."""

    decisions: dict[str, str] = {}
    reasoned = ("reject",)
    review_permission = ""
    decide_url_name = ""
    decide_template = None
    row_name = "object"
    document_label = "Document"
    decision_related: tuple[str, ...] = ()
    describe_row = str
    has_document = True

    def has_review_permission(self, request):
        return request.user.has_perm(self.review_permission)

    def document(self, obj):
        return preview(self.document_url(obj), obj.content_type) if self.has_document else None

    def decision_form_class(self, decision):
        """The form `decision` asks for (None: a bare confirmation)."""
        return ReasonForm if decision in self.reasoned else None

    def decision_buttons(self, request, obj):
        """(label, url, tone) for each decision open to this person on this row."""
        if not self.has_review_permission(request):
            return []
        buttons = []
        for name in self.open_decisions(obj):
            url = reverse(f"admin:{self.decide_url_name}", args=[obj.pk, name])
            tone = "decide-approve" if name.startswith("approve") else ""
            if name in self.reasoned:  # the decisions that say no are the ones that ask why
                tone = "decide-reject"
            buttons.append((self.decisions[name], url, tone))
        return buttons

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "decisions": self.decision_buttons(request, obj),
                "document": self.document(obj),
                "document_label": self.document_label,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_pages(self):
        return [
            *super().get_pages(),
            ("<int:pk>/decide/<str:decision>/", "decide_view", self.decide_url_name),
        ]

    def decide_view(self, request, pk, decision):
        if not self.has_review_permission(request):
            raise PermissionDenied
        if decision not in self.decisions:
            raise Http404(f"No decision “{decision}” here.")
        rows = self.model._default_manager.select_related(*self.decision_related)
        obj = get_object_or_404(rows, pk=pk)
        label = self.decisions[decision]
        form_class = self.decision_form_class(decision)
        return service_form_page(
            self,
            request,
            obj,
            # Bound on any POST: a form whose every field is optional is still submitted.
            form=form_class(request.POST if request.method == "POST" else None)
            if form_class
            else None,
            perform=lambda data: self.decide(request, obj, decision, data),
            template=self.decide_template,
            submit_label=f"Yes, {label[0].lower()}{label[1:]}",
            closed=self.decided(obj, decision),
            # A decision made from a status that changed since the page was read (a partner
            # declined meanwhile may still be approved, C7) is shown again, not made.
            shown=str(getattr(obj, "status", "")),
            document=self.document(obj),
            document_label=self.document_label,
            title=f"{label}: {self.decision_subject(obj)}",
            intro=self.decision_intros(obj)[decision],
            **{self.row_name: obj},
        )

    def decide_selected(self, request, queryset, decision, *, title, done, intro=""):
        """A bulk action: `decision` for each selected row, behind one confirmation page that
        lists them (and asks for the decision's form); `decide` runs per row."""
        return confirm_and_run(
            self,
            request,
            queryset.select_related(*self.decision_related),
            lambda obj, data: self.decide(request, obj, decision, data),
            title=title,
            done=done,
            form_class=self.decision_form_class(decision),
            intro=intro,
            describe=self.describe_row,
        )


def decision_action(decision, description, *, title, done, intro=""):
    """A bulk action of a `DecisionPages` admin (its reviewers' permission): `decision` for each
    selected row, behind one confirmation page (`decide_selected`)."""

    @admin.action(description=description, permissions=["review"])
    def action(model_admin, request, queryset):
        return model_admin.decide_selected(
            request, queryset, decision, title=title, done=done, intro=intro
        )

    return action
