"""One search box that finds anything a person may open (issue 13): workspaces by slug, name or
billing email, invoices by number, applications by company, coupons by code.

Each app's admin registers what it makes searchable (`register`), so billing never imports the
apps above it (DESIGN "Layout"). A search runs one query per kind the person may view (the
admin's own `has_view_permission`, so a role finds only what its pages would show), at most
`PER_KIND` rows each: an exact match first, then a prefix, then anything containing the words.
`icontains`/`istartswith` read the same on SQLite and PostgreSQL.

`matching` is how rows are found by words, here and in the admin's lists (`ServiceAdmin`): a
field of a related row (an invoice's `workspace__slug`) is searched in that row's table. On
PostgreSQL, trigram indexes serve the searched columns (migrations 0029, 0032).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import (
    BooleanField,
    Case,
    F,
    Func,
    IntegerField,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.constants import LOOKUP_SEP
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

PER_KIND = 8
MAX_QUERY = 100


class AnyOf(Func):
    """`column IN (subquery)`, written `column = ANY(ARRAY(subquery))` on PostgreSQL: there the
    subquery runs once and the column is read through its index even as one side of an OR,
    where an IN is checked on every row of the table."""

    template = "%(expressions)s"
    arg_joiner = " IN "
    output_field = BooleanField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="%(expressions)s)",
            arg_joiner=" = ANY(ARRAY",
            **extra_context,
        )


def matching(model, lookups, value) -> Q:
    """The rows of `model` that `value` matches by any of `lookups` (`number__icontains`,
    `workspace__slug__istartswith`).

    A lookup through a foreign key is answered in the related table on its own, and its rows
    handed over by id (`AnyOf`): ORed over a join with the row's own columns, no index served
    it and the database read both tables whole (the invoice list searched: 1.7–3.5 s at
    360,000 invoices)."""
    found, related = Q(), {}
    for lookup in lookups:
        name, _, rest = lookup.partition(LOOKUP_SEP)
        field = _foreign_key(model, name, rest)
        if field is None:
            found |= Q(**{lookup: value})
        else:
            related.setdefault(field, []).append(rest)
    for field, rest in related.items():
        target = field.related_model
        rows = target._base_manager.filter(matching(target, rest, value)).order_by()
        found |= Q(AnyOf(F(field.name), Subquery(rows.values(field.target_field.attname))))
    return found


# I1: an invoice's number as issued, INV-YYYY- and six digits or more (up to the column's 20
# characters).
INVOICE_NUMBER = re.compile(r"INV-[0-9]{4}-[0-9]{6,11}", re.IGNORECASE)


def whole_invoice_number(words: str) -> str | None:
    """`words` as an invoice's whole number (INV-2026-004242, in any case), to be found as the
    start of numbers in the number's btree; None for any other words. Their trigrams are in
    most invoices' numbers, which the trigram index then read (0.27–0.34 s a page at 2.3
    million invoices, bench/staff_walk.py)."""
    words = words.strip()
    return words.upper() if INVOICE_NUMBER.fullmatch(words) else None


def _foreign_key(model, name, rest):
    """`model`'s foreign key (or one-to-one) `name` when `rest` names a field of the row it
    points at (`workspace` and `slug__icontains`), else None."""
    try:
        field = model._meta.get_field(name)
        if not (field.concrete and (field.many_to_one or field.one_to_one)):
            return None
        field.related_model._meta.get_field(rest.partition(LOOKUP_SEP)[0])
    except FieldDoesNotExist:  # pk, a column's own lookup (`workspace__exact`)
        return None
    return field if name == field.name else None


@dataclass(frozen=True)
class SearchKind:
    """What one model offers the search box.

    `fields` are searched for the words anywhere (`icontains`); a row whose `exact` field
    equals them comes first, then one whose `fields` start with them. `named(words)` reads the
    words as the row's own name where it is no column (a credit note's INV-…-CN1), giving the
    rows it names, first, or None. `whole(words)` reads them as a whole name no other row can
    hold anywhere but at its start (an invoice's number): the rows it gives are the only ones
    found, through an index, instead of the words anywhere. `describe(obj)` gives the
    result's title and a line under it (safe HTML allowed: a status badge)."""

    model: type
    label: str
    fields: tuple[str, ...]
    describe: Callable[[object], tuple[str, str]]
    exact: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ("pk",)
    select_related: tuple[str, ...] = ()
    named: Callable[[str], Q | None] = lambda words: None
    whole: Callable[[str], Q | None] = lambda words: None

    def matches(self, words: str):
        rows = self.model._default_manager.select_related(*self.select_related)
        if (whole := self.whole(words)) is not None:
            exact = [When(Q(**{f"{name}__iexact": words}), then=Value(0)) for name in self.exact]
            rank = Case(*exact, default=Value(1), output_field=IntegerField())
            return (
                rows.filter(whole)
                .annotate(search_rank=rank)
                .order_by("search_rank", *self.order_by)
            )
        found = matching(self.model, [f"{name}__icontains" for name in self.fields], words)
        named = self.named(words)
        if named is not None:
            found |= named
        rank = Case(
            *([When(named, then=Value(0))] if named is not None else []),
            *[When(Q(**{f"{name}__iexact": words}), then=Value(0)) for name in self.exact],
            *[When(Q(**{f"{name}__istartswith": words}), then=Value(1)) for name in self.fields],
            default=Value(2),
            output_field=IntegerField(),
        )
        return rows.filter(found).annotate(search_rank=rank).order_by("search_rank", *self.order_by)


@dataclass
class Hit:
    title: str
    detail: str
    url: str
    exact: bool


@dataclass
class Group:
    label: str
    hits: list[Hit] = field(default_factory=list)
    more_url: str = ""  # the admin list filtered by the same words, when there are more

    @property
    def has_exact(self):
        return any(hit.exact for hit in self.hits)


_KINDS: list[SearchKind] = []


def register(model, **options):
    """Called from an app's admin module, after the model's ModelAdmin is registered."""
    _KINDS[:] = [kind for kind in _KINDS if kind.model is not model]
    _KINDS.append(SearchKind(model=model, **options))


def visible_kinds(request, admin_site=admin.site):
    """The kinds whose admin list the person may view (R1–R3): the rest are not searched."""
    kinds = []
    for kind in _KINDS:
        try:
            model_admin = admin_site.get_model_admin(kind.model)
        except NotRegistered:
            continue
        if model_admin.has_view_permission(request):
            kinds.append(kind)
    return kinds


def search(request, words: str, admin_site=admin.site) -> list[Group]:
    """One query per visible kind, `PER_KIND` rows at most; groups with an exact match first."""
    groups = []
    for kind in visible_kinds(request, admin_site):
        rows = list(kind.matches(words)[: PER_KIND + 1])
        if not rows:
            continue
        opts = kind.model._meta
        group = Group(label=kind.label)
        for obj in rows[:PER_KIND]:
            title, detail = kind.describe(obj)
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            group.hits.append(Hit(title, detail, url, exact=obj.search_rank == 0))
        if len(rows) > PER_KIND:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            group.more_url = f"{changelist}?{urlencode({'q': words})}"
        groups.append(group)
    groups.sort(key=lambda group: not group.has_exact)  # stable: registration order otherwise
    return groups


def search_view(request):
    """The results page of the header's search box (admin login required: see config/urls)."""
    kinds = visible_kinds(request)
    if not kinds:
        raise PermissionDenied
    words = " ".join(request.GET.get("q", "").split())[:MAX_QUERY]
    groups = search(request, words) if words else []
    context = {
        **admin.site.each_context(request),
        "title": f"Search: {words}" if words else "Search",
        "words": words,
        "groups": groups,
        "searched": ", ".join(kind.label.lower() for kind in kinds),
    }
    return TemplateResponse(request, "admin/search.html", context)
