"""Usage figures (U1, U2): the list, and the import page that takes a whole file or nothing."""

from pathlib import Path

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect

from billing import admin_toolkit as toolkit
from billing import services, tasks, usage_import
from billing.admin_toolkit import MonthListFilter, ServiceAdmin, admin_page, shown_column
from billing.documents import document_response
from billing.errors import BillingError, UsageImportError
from billing.formatting import count, import_outcome, month
from billing.forms import UsageImportForm
from billing.models import Usage, UsageImportJob

IMPORT_PERMISSION = "billing.import_usage"


@admin.register(Usage)
class UsageAdmin(ServiceAdmin):
    """U1, U2: figures are recorded from the workspace page or imported from a file, both
    through the service; this list only shows them."""

    list_display = ["workspace", "month_display", "mtus_display", "updated"]
    list_select_related = ["workspace"]
    list_filter = [MonthListFilter]
    search_fields = ["workspace__slug", "workspace__name"]
    autocomplete_fields = ["workspace"]
    date_hierarchy = "month"
    # Newest month first, read in the order of the (month, workspace) index; the model's
    # order breaks ties by id, which no index has (one more would cost every import). Sorted
    # by Month either way, ties are broken by the workspace the same way (the toolkit's
    # ties), so the index is read forwards or backwards.
    ordering = ["-month", "-workspace_id"]
    change_list_template = "admin/billing/usage/change_list.html"
    pages = (
        ("import/", "import_view", "billing_usage_import"),
        ("import/<int:job_id>/", "import_job_view", "billing_usage_import_job"),
        ("import/<int:job_id>/bad-lines/", "bad_lines_view", "billing_usage_import_bad_lines"),
    )

    month_display = shown_column("month", month, description="Month")
    # Not sortable, MTUs and Updated at: sorted by one, the list sorted every figure for one
    # page (450,000: 0.22–0.39 s; bench_sorts), and an index for each would slow every import.
    # The Month filter and the workspace search narrow the list instead.
    mtus_display = shown_column("mtus", count, description="MTUs", sortable=False)
    updated = toolkit.unsorted_column("updated_at", description="Updated at")

    def import_view(self, request):
        """U2: the whole file or nothing; every bad line named. The upload is streamed; a large
        one is imported by a worker and the page follows it."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        form = UsageImportForm(request.POST or None, request.FILES or None)
        errors = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > usage_import.INLINE_MAX_BYTES:
                job = usage_import.start_import_job(
                    upload, by=request.user, run_later=tasks.import_usage_file.delay
                )
                return redirect("admin:billing_usage_import_job", job.pk)
            with usage_import.bad_lines_report() as report:
                try:
                    result = services.import_usage(
                        upload, by=request.user, as_of=toolkit.today(), bad_lines_to=report
                    )
                except UsageImportError as exc:
                    if exc.bad_lines > usage_import.MAX_LISTED_LINES:  # more than a page names
                        job = usage_import.keep_refusal(upload, exc, report, by=request.user)
                        return redirect("admin:billing_usage_import_job", job.pk)
                    errors = exc.errors
                except BillingError as exc:
                    errors = [str(exc)]
                else:
                    self.message_user(
                        request, f"Usage imported: {import_outcome(**result)}.", messages.SUCCESS
                    )
                    return redirect("admin:billing_usage_changelist")
            self.message_user(
                request,
                "Nothing was imported: fix the lines below and upload again.",
                messages.ERROR,
            )
        return admin_page(
            self,
            request,
            "admin/billing/usage/import.html",
            title="Import usage",
            form=form,
            errors=errors,
            listed=usage_import.MAX_LISTED_LINES,
        )

    def import_job_view(self, request, job_id):
        """A large file's import on a worker: queued, running (how far), then its result or
        its bad lines. The page reloads itself until the job is finished."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        job = get_object_or_404(UsageImportJob, pk=job_id)
        return admin_page(
            self,
            request,
            "admin/billing/usage/import_job.html",
            title=f"Import usage: {job.file_name}",
            job=job,
            progress=None if job.finished else usage_import.job_progress(job),
            listed=usage_import.MAX_LISTED_LINES,
        )

    def bad_lines_view(self, request, job_id):
        """U2: every bad line of a refused file with its reason, as a CSV, when there were more
        than its page names."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        job = get_object_or_404(UsageImportJob, pk=job_id)
        return document_response(
            job.bad_lines_file,
            content_type="text/csv; charset=utf-8",
            filename=f"{Path(job.file_name).stem}-bad-lines.csv",
        )
