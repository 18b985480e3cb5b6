"""The outbox: every promised email has left, or shows here as failed or stuck with its error;
support and finance resend it from its page or the list (never one already sent)."""

from functools import reduce
from operator import or_

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.text import Truncator

from billing.admin_toolkit import (
    ServiceAdmin,
    bulk_action,
    row_id,
    service_form_page,
    shown_column,
)
from billing.emails import resend_email, resend_refusal, stuck_emails
from billing.formatting import EMAIL_KINDS, count, email_kind
from billing.models import LockEvent, OutboundEmail, Subscription, Workspace, WorkspaceClosure


class EmailKindFilter(admin.SimpleListFilter):
    """Every kind an email can be, by name: the kinds are known (the email templates), so
    the list is not read from the outbox (a DISTINCT over 1,000,000 rows on each page)."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return sorted(EMAIL_KINDS.items(), key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class DeliveryFilter(admin.SimpleListFilter):
    """The emails that need a person: failed after their last retry, or stuck pending."""

    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        stuck = f"Stuck (pending, untouched for {settings.EMAIL_STUCK_AFTER_MINUTES} min)"
        return [("attention", "Failed or stuck"), ("failed", "Failed"), ("stuck", stuck)]

    def queryset(self, request, queryset):
        failed = queryset.filter(status=OutboundEmail.Status.FAILED)
        stuck = stuck_emails(timezone.now(), queryset)
        return {"attention": failed | stuck, "failed": failed, "stuck": stuck}.get(
            self.value(), queryset
        )


class WorkspaceFilter(admin.SimpleListFilter):
    """The emails to a workspace's billing address, each it has had (D3: its history keeps
    them), for its page's "Emails" link: searched for the address it has now, the lock emails
    sent before the address changed were not found. Shown while it filters; the link sets it.
    Matched as the outbox search matches an address (in any case, through its index)."""

    title = "workspace"
    parameter_name = "workspace"

    def _workspace(self):
        pk = row_id(self.value())
        return Workspace.objects.filter(pk=pk).first() if pk is not None else None

    def lookups(self, request, model_admin):
        if self.value() is None:
            return []
        workspace = self._workspace()
        # Shown (and so applied) while it filters, a workspace that is not there included.
        label = f"{workspace.name} ({workspace.slug})" if workspace else "no such workspace"
        return [(self.value(), label)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        workspace = self._workspace()
        if workspace is None:
            return queryset.none()
        addresses = {workspace.billing_email.lower()} | {
            address.lower()
            for address in workspace.history.values_list("billing_email", flat=True).distinct()
        }
        return queryset.filter(
            reduce(or_, (Q(to__iexact=address) for address in sorted(addresses)))
        )


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ServiceAdmin):
    """The outbox: every promised email has left, or shows here as failed or stuck with its
    error; support and finance resend it (never one already sent)."""

    list_display = [
        "kind_display",
        "to",
        "subject",
        "status",
        "tries",
        "created_at",
        "sent_at",
        "error",
    ]
    list_filter = [DeliveryFilter, EmailKindFilter, "status", WorkspaceFilter]
    # "Did customer X get the email about Y": any part of the address, subject or object key.
    # On PostgreSQL each has a trigram index (migration 0032); a field added here needs one.
    search_fields = ["to", "subject", "object_key"]
    actions = ["resend"]
    # The email's page: its kind by the label the list shows, not the template's name.
    fields = [
        "kind_display",
        "about",
        "to",
        "subject",
        "body_text",
        "body_html",
        "status",
        "attempts",
        "last_error",
        "sent_at",
        "claimed_at",
    ]
    readonly_fields = ["kind_display", "about"]

    change_form_template = "admin/billing/outboundemail/change_form.html"
    pages = (("<int:pk>/resend/", "resend_view", "billing_outboundemail_resend"),)

    def has_resend_permission(self, request):
        return request.user.has_perm("billing.resend_outboundemail")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_resend_permission(request) and not resend_refusal(obj):
            context["resend_url"] = reverse("admin:billing_outboundemail_resend", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def resend_view(self, request, pk):
        """F6: one email sent again from its own page, after a confirmation: the list's action
        for the email a person is reading (the application and partner pages send reviewers
        to support or finance for it)."""
        if not self.has_resend_permission(request):
            raise PermissionDenied
        email = get_object_or_404(OutboundEmail, pk=pk)

        def perform(data):
            resend_email(email, by=request.user)
            # Queued: a worker sends it (the ops walk read "sent" while the server was down).
            return f"“{email.subject}” to {email.to} is queued to be sent again."

        state = email.get_status_display().lower()
        if email.last_error:
            state += f": {Truncator(email.last_error).chars(200)}"
        return service_form_page(
            self,
            request,
            email,
            form=None,
            perform=perform,
            title=f"Send again: {email_kind(email.kind)} to {email.to}",
            submit_label="Yes, send it again",
            closed=resend_refusal(email),
            intro=f"“{email.subject}” ({state}) goes to the mail server again, with tries of "
            "its own; it is sent once.",
        )

    kind_display = shown_column("kind", email_kind, description="Kind")
    # "Tries", not the field's "Attempts": the list fits 1,366 px with a failed email's error.
    tries = shown_column("attempts", count, description="Tries")

    @admin.display(description="About")
    def about(self, email):
        """The workspace (and a closure's final invoice) the email is about, linked: the page
        showed only its key, "closure:1" (the third walk). Other keys (an application, a
        partner) are the apps' above, and are shown as they are."""
        key = email.object_key
        kind, _, rest = key.partition(":")
        row = workspace = None
        if model := {"sub": Subscription, "lock": LockEvent, "closure": WorkspaceClosure}.get(kind):
            row = model.objects.select_related("workspace").filter(pk=row_id(rest)).first()
            workspace = row.workspace if row else None
        elif ":workspace:" in key:  # a campaign's email to one workspace
            workspace = Workspace.objects.filter(pk=row_id(key.rpartition(":")[2])).first()
        if workspace is None:
            return key
        links = [(reverse("admin:billing_workspace_change", args=[workspace.pk]), workspace.name)]
        if final := getattr(row, "final_invoice", None):
            links.append((reverse("admin:billing_invoice_change", args=[final.pk]), final.number))
        return format_html_join(", ", '<a href="{}">{}</a>', links)

    @admin.display(description="Last error")
    def error(self, email):
        return Truncator(email.last_error).chars(80) or "—"

    resend = bulk_action(
        "Resend selected emails…",
        lambda model_admin, request, email, data: resend_email(email, by=request.user),
        permission="resend",
        title="Resend emails",
        done="email(s) queued to be sent again",
        form_class=None,
        intro="Each email goes once: one already sent is refused.",
        describe=lambda email: (
            f"“{email.subject}” to {email.to} ({email.get_status_display().lower()})"
        ),
    )
