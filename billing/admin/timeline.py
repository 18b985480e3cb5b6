"""A workspace's history page (SPEC R4), mixed into `WorkspaceAdmin`: one timeline of every
recorded change to the workspace and to the rows that belong to it — its subscriptions, usage,
invoices, closures, certificates, and what the apps above billing register (coupons received,
credit grants, the startup application) — each with who made it, when and why.

Support is asked "who moved us to annual, and why?": the answer is in a subscription's history,
which the workspace's own history (the workspace row's changes) never showed. A role sees the
kinds of rows it may read (R1–R3); every entry opens its version, read-only (R5).
"""

from dataclasses import dataclass
from functools import cached_property

from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import capfirst

from billing.admin_toolkit import ReadableHistory, admin_page, may_open
from billing.hooks import workspace_histories
from billing.models import (
    CreditNote,
    Invoice,
    Subscription,
    TaxExemption,
    Usage,
    Workspace,
    WorkspaceClosure,
)

# Billing's own rows, each with its lookup to the workspace; the apps above add theirs
# (`billing.hooks.register_workspace_history`).
BILLING_ROWS = (
    (Workspace, "pk"),
    (Subscription, "workspace"),
    (Usage, "workspace"),
    (Invoice, "workspace"),
    (CreditNote, "invoice__workspace"),
    (WorkspaceClosure, "workspace"),
    (TaxExemption, "workspace"),
)
ENTRIES_PER_PAGE = 100


@dataclass
class Entry:
    """One version of one row: what it was, who changed it, when and why, and what changed
    since the row's version before (None: the first version kept)."""

    model: type
    record: object
    label: str
    previous: object = None

    @property
    def when(self):
        return self.record.history_date

    @cached_property
    def changes(self) -> list[dict]:
        if self.record.history_type != "~" or self.previous is None:
            return []
        delta = self.record.diff_against(self.previous, foreign_keys_are_objs=True)
        return ReadableHistory(self.model, self.record).context_for_delta_changes(delta)


class TimelinePage:
    """R4's history page of a workspace for `WorkspaceAdmin`, in place of the workspace row's
    own history."""

    def history_view(self, request, object_id, extra_context=None):
        if request.method != "GET":  # R5: history is for reading
            return HttpResponseNotAllowed(["GET"])
        try:  # an id from the address that is not a number is no such page
            pk = Workspace._meta.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404("No such workspace.") from None
        workspace = get_object_or_404(Workspace, pk=pk)
        if not self.has_view_history_or_change_history_permission(request, workspace):
            raise PermissionDenied
        kinds = [
            (model, path)
            for model, path in (*BILLING_ROWS, *workspace_histories())
            if self._may_read_history(request, model)
        ]
        entries_by_kind = {
            model._meta.model_name: (model, _entries(model, path, workspace))
            for model, path in kinds
        }
        shown = request.GET.get("kind", "")
        if shown not in entries_by_kind:
            shown = ""
        entries = sorted(
            (
                entry
                for name, (_model, kind_entries) in entries_by_kind.items()
                if shown in ("", name)
                for entry in kind_entries
            ),
            key=lambda entry: (entry.when, entry.record.history_id),
            reverse=True,
        )
        page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
        for entry in page:
            entry.version_url = self._version_url(entry)
        total = sum(len(kind_entries) for _model, kind_entries in entries_by_kind.values())
        return admin_page(
            self,
            request,
            "admin/billing/workspace/history.html",
            title=f"History of {workspace}",
            object=workspace,
            page=page,
            query=urlencode({"kind": shown}) if shown else "",
            shown=shown,
            kinds=[("", "Everything", total)]
            + [
                (name, capfirst(model._meta.verbose_name_plural), len(kind_entries))
                for name, (model, kind_entries) in entries_by_kind.items()
                if kind_entries
            ],
            # R1–R3: who changed a row links to their user page only for who may open it.
            may_open_users=may_open(request, get_user_model(), self.admin_site),
            **(extra_context or {}),
        )

    def _may_read_history(self, request, model) -> bool:
        """Whether the person may read `model`'s history pages (each kind as its own admin
        lets them: a reviewer sees no invoice's history, R2)."""
        try:
            model_admin = self.admin_site.get_model_admin(model)
        except NotRegistered:
            return False
        return model_admin.has_view_history_or_change_history_permission(request)

    @staticmethod
    def _version_url(entry) -> str:
        opts = entry.model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_simple_history",
            args=[getattr(entry.record, opts.pk.attname), entry.record.history_id],
        )


def _entries(model, path: str, workspace) -> list[Entry]:
    """Every kept version of `model`'s rows of `workspace`, each paired with the version
    before it. Rows are matched by what they belong to now (an application's versions from
    before a workspace was linked to it included); two queries whatever the number."""
    rows = model._default_manager.filter(**{path: workspace.pk})
    current = {row.pk: row for row in rows.select_related()}
    history = getattr(model, model._meta.simple_history_manager_attribute)
    pk_name = model._meta.pk.attname
    records = (
        history.filter(**{f"{pk_name}__in": rows.values("pk")})
        .select_related("history_user")
        .order_by(pk_name, "history_date", "history_id")
    )
    entries, previous = [], None
    noun = capfirst(model._meta.verbose_name)
    for record in records:
        pk = getattr(record, pk_name)
        same_row = previous is not None and getattr(previous, pk_name) == pk
        # The page's own workspace is named in its title.
        label = noun if path == "pk" else f"{noun}: {_as_it_was(record, current.get(pk))}"
        entries.append(Entry(model, record, label, previous if same_row else None))
        previous = record
    return entries


def _as_it_was(record, row) -> str:
    """The row as the version `record` kept it, named as its admin names it (a usage figure's
    version read with today's figure was labelled "…: 33,333 MTUs" where it had 610). The
    related rows its name reads are taken from `row`, the row now read with them, where the
    version names the same ones: no query per version."""
    instance = record.instance
    if row is not None:
        for field in instance._meta.concrete_fields:
            same = getattr(instance, field.attname) == getattr(row, field.attname)
            if field.is_relation and same and field.is_cached(row):
                field.set_cached_value(instance, field.get_cached_value(row))
    return str(instance)
