"""The month close's progress (D1, I6) and the billing clock (D1, D2), read-only: the daily run
writes them."""

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html

from billing import admin_toolkit as toolkit
from billing import services
from billing.admin_toolkit import ReadOnlyInline, ServiceAdmin, service_form_page, shown_column
from billing.clock import next_close
from billing.formatting import count, day, month
from billing.models import BillingClock, Invoice, MonthClose, SetAsideInvoice
from billing.months import next_month


class SetAsideInline(ReadOnlyInline):
    """I6: the workspaces this close could not bill, with why; the clock tries each again."""

    model = SetAsideInvoice
    fields = ["workspace", "error", "first_seen_on"]
    verbose_name_plural = "workspaces set aside (not billed yet)"
    billed = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("workspace", "close")
        return queryset.filter(resolved_on__isnull=not self.billed)


class BilledSinceInline(SetAsideInline):
    """I6: those whose invoice a later run issued once the cause was fixed, kept apart: the
    list above is only what still waits."""

    fields = ["workspace", "error", "first_seen_on", "resolved_on"]
    verbose_name = "workspace set aside, billed since"
    verbose_name_plural = "workspaces set aside, billed since"
    billed = True


@admin.register(MonthClose)
class MonthCloseAdmin(ServiceAdmin):
    list_display = [
        "month_display",
        "finished",
        "closed_on",
        "strikes",
        "invoices_issued",
        "waiting",
        "updated_at",
    ]
    # The month by its name, as the list and the page title give it (it read "1 Nov 2025").
    fields = [
        "month_display",
        "closed_on",
        "locks_step",
        "invoices_step",
        "finished",
        "strikes",
        "invoices_issued",
        "updated_at",
    ]
    readonly_fields = ["month_display", "locks_step", "invoices_step", "invoices_issued"]
    inlines = [SetAsideInline, BilledSinceInline]
    pages = (("<int:pk>/retry/", "retry_view", "billing_monthclose_retry"),)

    def has_retry_permission(self, request):
        return request.user.has_perm("billing.retry_set_aside_monthclose")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        waiting = obj is not None and obj.set_aside.filter(resolved_on=None).exists()
        if waiting and self.has_retry_permission(request):
            context["retry_url"] = reverse("admin:billing_monthclose_retry", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def retry_view(self, request, pk):
        """I6: the workspaces this close set aside, tried again now rather than at the next
        daily run, once support has fixed a cause; as the daily run does (the service)."""
        if not self.has_retry_permission(request):
            raise PermissionDenied
        close = get_object_or_404(MonthClose, pk=pk)
        waiting = [
            f"{entry.workspace}: {entry.error}"
            for entry in close.set_aside.filter(resolved_on=None).select_related("workspace")
        ]

        def perform(data):
            issued = services.retry_set_aside(as_of=toolkit.today(), close=close)
            still = close.set_aside.filter(resolved_on=None).count()
            done = f"{count(issued['set_aside_billed'])} invoice(s) issued"
            if still:
                return f"Tried again: {done}; {count(still)} still set aside, with the error below."
            return f"Tried again: {done}; nothing of {close} is set aside now."

        return service_form_page(
            self,
            request,
            close,
            form=None,
            perform=perform,
            title=f"Try again now: the invoices {close}'s close set aside",
            submit_label="Yes, try them again now",
            closed="" if waiting else f"Nothing of {close} is set aside: every invoice is issued.",
            shown="\n".join(waiting),
            template="admin/billing/monthclose/retry.html",
            waiting=waiting,
            intro=(
                "The daily billing run tries each of these again every day; this tries them "
                f"now, as it would. Each whose cause is fixed is issued, dated "
                f"{day(next_month(close.month))} as the close's others, and only once (I4); one "
                "still failing stays set aside with its error."
            ),
        )

    def changelist_view(self, request, extra_context=None):
        """D1, M1: when the clock runs the next close, and whether it is overdue, above the
        list (finance asked where the "run" button is)."""
        extra_context = {**(extra_context or {}), "next_close": next_close(toolkit.today())}
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        unresolved = Count("set_aside", filter=Q(set_aside__resolved_on=None))
        return super().get_queryset(request).annotate(waiting_count=unresolved)

    @admin.display(description="Set aside", ordering="waiting_count")
    def waiting(self, obj):
        return obj.waiting_count or "—"

    month_display = shown_column("month", month, description="Month")

    @admin.display(description="Invoices", ordering="invoices")
    def invoices_issued(self, obj):
        """M1: the count, linked to the invoice list of the month's invoices (dated the 1st of
        the next month), where finance goes from here."""
        if not obj.invoices:
            return "0"
        issued_on = next_month(obj.month)
        query = urlencode(
            {
                "kind__exact": Invoice.Kind.MONTHLY,
                "issue_date__gte": issued_on.isoformat(),
                "issue_date__lt": (issued_on + timedelta(days=1)).isoformat(),
            }
        )
        url = f"{reverse('admin:billing_invoice_changelist')}?{query}"
        return format_html('<a href="{}">{}</a>', url, count(obj.invoices))

    # The close's steps in words: its flags are for resuming it (I4), not for reading.
    @admin.display(description="Strikes and locks (F1–F3)")
    def locks_step(self, obj):
        return "Done" if obj.locks_done else "Not yet"

    @admin.display(description="Invoices (in chunks of workspaces)")
    def invoices_step(self, obj):
        if not obj.chunks_planned:
            return "Not started"
        chunks = obj.chunks.aggregate(all=Count("id"), done=Count("id", filter=Q(done=True)))
        return f"{count(chunks['done'])} of {count(chunks['all'])} chunks billed"


@admin.register(BillingClock)
class BillingClockAdmin(ServiceAdmin):
    """D1, D2: the last day the billing clock processed; changes dated on or before it are
    refused."""

    list_display = ["last_day_display", "processing_display", "updated_at"]
    fields = ["last_day_display", "processing_display", "updated_at"]
    readonly_fields = ["last_day_display", "processing_display"]

    last_day_display = shown_column("last_processed_day", day, description="Last processed day")

    @admin.display(description="Day being processed")
    def processing_display(self, obj):
        last, processing = obj.last_processed_day, obj.processing_day
        running = processing is not None and (last is None or processing > last)
        return day(processing) if running else "none: the clock is not running"
