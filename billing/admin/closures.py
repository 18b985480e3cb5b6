"""Closing and reopening a workspace from its page (SPEC W1), mixed into `WorkspaceAdmin`, and
the list of every closure.

Closing shows what will happen before anything does (the final invoice as the close would price
it, the term or trial, the discount, the credit) and asks why (R4); reopening asks why too.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import reverse

from billing import admin_toolkit as toolkit
from billing import services
from billing.admin_toolkit import ReasonForm, ServiceAdmin, YesNoFilter, with_note
from billing.closures import closure_preview
from billing.formatting import day, money
from billing.forms import CloseWorkspaceForm
from billing.models import Workspace, WorkspaceClosure

CLOSE_PERMISSION = "billing.close_workspace"


class ClosedFilter(YesNoFilter):
    """W1: closed workspaces are a list filter."""

    title = "closed"
    parameter_name = "closed"
    labels = (("no", "Open"), ("yes", "Closed"))

    def condition(self):
        return Q(closed_on__isnull=False)


class ClosurePages:
    """W1's close and reopen pages for `WorkspaceAdmin` (its `workspace_page` draws them)."""

    def get_pages(self):
        return [
            *super().get_pages(),
            ("<int:pk>/close/", "close_view", "billing_workspace_close"),
            ("<int:pk>/reopen/", "reopen_view", "billing_workspace_reopen"),
        ]

    def close_actions(self, request, workspace):
        if not request.user.has_perm(CLOSE_PERMISSION):
            return []
        return [("Close workspace", reverse("admin:billing_workspace_close", args=[workspace.pk]))]

    def reopen_actions(self, request, workspace):
        if not request.user.has_perm(CLOSE_PERMISSION):
            return []
        return [
            ("Reopen workspace", reverse("admin:billing_workspace_reopen", args=[workspace.pk]))
        ]

    def _closure_workspace(self, request, pk):
        if not request.user.has_perm(CLOSE_PERMISSION):
            raise PermissionDenied
        return get_object_or_404(Workspace, pk=pk)

    def _closure_page(self, request, workspace, service, *, verb, done, form_class, **options):
        """W1: the page that closes or reopens `workspace`: the change asks why (R4)."""

        def perform(data):
            closure = toolkit.call_service(service, workspace, request, data, "reason")
            final = closure.final_invoice if service is services.close_workspace else None
            billed = f"; final invoice {final.number}: {money(final.total)}" if final else ""
            return f"{workspace.name} {done}: {data['reason']}{billed}"

        return self.workspace_page(
            request,
            workspace,
            form=form_class(request.POST or None),
            perform=perform,
            title=f"{verb} workspace: {workspace.name}",
            submit_label=f"{verb} workspace",
            **options,
        )

    def close_view(self, request, pk):
        """W1: the confirmation page says what will happen, then closes with a reason."""
        workspace = self._closure_workspace(request, pk)
        closed, preview = "", None
        if workspace.closed_on is not None:
            closed = f"{workspace.name} is already closed (since {day(workspace.closed_on)})."
        else:
            preview = closure_preview(workspace, as_of=toolkit.today())
        return self._closure_page(
            request,
            workspace,
            services.close_workspace,
            verb="Close",
            done="closed",
            form_class=CloseWorkspaceForm,
            template="admin/billing/workspace/close.html",
            closed=closed,
            preview=preview,
            confirms=preview and preview.confirmed_text(),
        )

    def reopen_view(self, request, pk):
        """W1: support reopens a closed workspace, with a reason: Free, unlocked."""
        workspace = self._closure_workspace(request, pk)
        return self._closure_page(
            request,
            workspace,
            services.reopen_workspace,
            verb="Reopen",
            done="reopened on Free",
            form_class=ReasonForm,
            closed="" if workspace.closed_on else f"{workspace.name} is not closed.",
            template="admin/billing/workspace/reopen.html",
            confirms=(),
        )


@admin.register(WorkspaceClosure)
class WorkspaceClosureAdmin(ServiceAdmin):
    """W1: every closure and reopening, who and why; written only by the services."""

    list_display = [
        "workspace",
        "closed",
        "reason",
        "final_invoice",
        "reopened",
        "reopen_reason",
    ]
    list_select_related = ["workspace", "closed_by", "reopened_by", "final_invoice"]
    list_filter = ["closed_on", "reopened_on"]
    search_fields = ["workspace__slug", "workspace__name", "reason"]

    # Who, under when: the list fits 1,366 px beside the menu and the filters.
    @admin.display(description="Closed", ordering="closed_on")
    def closed(self, obj):
        when = day(obj.closed_on)
        return with_note(when, f"by {obj.closed_by}") if obj.closed_by else when

    @admin.display(description="Reopened", ordering="reopened_on")
    def reopened(self, obj):
        if obj.reopened_on is None:
            return "—"
        when = day(obj.reopened_on)
        return with_note(when, f"by {obj.reopened_by}") if obj.reopened_by else when
