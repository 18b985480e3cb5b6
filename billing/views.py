"""Finance pages outside the admin (R3), the certificate download (X5), and what every app's
pages outside the admin share: the staff permission check, the private document download, and
the public form's flow (R7).

Thin: the filters, the CSV writer and the reports do the work. Every staff page needs a
signed-in active staff member holding the page's permission: anyone else signed in gets 403,
anyone signed out the login page.
"""

from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from billing import admin_toolkit, ratelimit, reports
from billing.csv_export import InvoiceCsv
from billing.documents import EXTENSIONS, document_response
from billing.errors import BillingError
from billing.filters import InvoiceFilter, IssueMonthFilter
from billing.invoice_documents import credit_note_document, invoice_document, render_pdf
from billing.models import CreditNote, Invoice, TaxExemption
from billing.months import EARLIEST_MONTH, add_months, month_start, parse_month
from billing.pricing import round_cents

FINANCE_PERMISSION = "billing.export_invoice"
PAGE_SIZE = 50
REPORT_MONTHS = 12


def staff_permission_required(permission: str):
    def decorator(view):
        @wraps(view)
        @login_required
        def guarded(request, *args, **kwargs):
            user = request.user
            if not (user.is_active and user.is_staff and user.has_perm(permission)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return guarded

    return decorator


finance_required = staff_permission_required(FINANCE_PERMISSION)


@dataclass(frozen=True)
class PublicFormPages:
    """Where a public form lives: its templates (`<templates>apply.html`, and
    `<templates>rate_limited.html` for an address over its limit), the URL name of its thank-you
    page, and the name its accepted submissions are counted under per address per hour (R7)."""

    templates: str
    thanks: str
    limit: str


def public_form(request, form, pages: PublicFormPages, submit):
    """A public form's page (no login): a valid POST calls `submit(form.answers())` (a service)
    and goes to the thank-you page; a refusal comes back on the form. A bot is told nothing, and
    an address over the limit (billing.ratelimit, R7) gets the rate-limited page with 429.

    A form whose error tells whether something exists sets `form.told_what_exists`; those
    answers are counted as misses, and an address with too many this hour gets the 429 page for
    any POST (`ratelimit.misses_exhausted`): what exists is not told to whoever tries names."""
    if request.method == "POST":
        exhausted = ratelimit.misses_exhausted(request, pages.limit)
        if exhausted or not ratelimit.reserve_submission(request, pages.limit):
            return render(request, f"{pages.templates}rate_limited.html", status=429)
        accepted = False
        try:
            if form.is_bot:
                return redirect(pages.thanks)  # tell a bot nothing
            if form.is_valid():
                try:
                    submit(form.answers())
                except BillingError as exc:
                    form.add_error(None, str(exc))
                else:
                    accepted = True
                    return redirect(pages.thanks)
            elif form.told_what_exists:
                ratelimit.count_miss(request, pages.limit)
        finally:
            if not accepted:  # only accepted submissions count (R7)
                ratelimit.release_submission(request, pages.limit)
    return render(request, f"{pages.templates}apply.html", {"form": form})


def _page(request, template: str, title: str, **context):
    return render(
        request,
        template,
        {**admin.site.each_context(request), "title": title, **context},
    )


def _query(request, *, drop=("page",)) -> str:
    return urlencode([(k, v) for k, v in request.GET.items() if k not in drop and v])


@finance_required
def invoice_list(request):
    return _invoice_list_page(request)


def _invoice_list_page(request, *, export_refused=False):
    invoice_filter = InvoiceFilter(
        request.GET or None, queryset=Invoice.objects.select_related("workspace")
    )
    invoices = invoice_filter.qs
    filters_valid = not invoice_filter.is_bound or invoice_filter.is_valid()
    if not filters_valid:
        invoices = invoices.none()
    # Paged as the admin's lists are, up to a capped count: an exact count of 2.3 million
    # invoices cost every page 0.33 s, and the last page's OFFSET sorted them all.
    page = admin_toolkit.CappedPaginator(invoices, PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(
        request,
        "finance/invoice_list.html",
        "Invoices",
        filter=invoice_filter,
        filters_valid=filters_valid,
        # A report's figure opens a list the roll-up counts exactly, however long.
        total=invoice_filter.rollup_count() if invoice_filter.is_bound and filters_valid else None,
        export_refused=export_refused,
        page=page,
        query=_query(request),
    )


@finance_required
def invoice_export(request):
    """The filtered list as CSV, streamed: constant memory however many invoices match."""
    invoice_filter = InvoiceFilter(request.GET or None, queryset=Invoice.objects.all())
    if invoice_filter.is_bound and not invoice_filter.is_valid():
        # The list page, its filters marked where they are wrong, instead of a file.
        response = _invoice_list_page(request, export_refused=True)
        response.status_code = 400
        return response
    response = StreamingHttpResponse(
        iter(InvoiceCsv(invoice_filter.qs)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_export_name(invoice_filter)}"'
    return response


def _export_name(invoice_filter) -> str:
    """The file's name says its issue months: both ends, or the one end a range open at the
    other has ("invoices_to_2026-07.csv" is not July's invoices alone)."""
    data = invoice_filter.form.cleaned_data if invoice_filter.is_bound else {}
    start, end = data.get("issued_from"), data.get("issued_to")
    if start and end:
        return f"invoices_{start:%Y-%m}_{end:%Y-%m}.csv"
    if start or end:
        return f"invoices_from_{start:%Y-%m}.csv" if start else f"invoices_to_{end:%Y-%m}.csv"
    return "invoices.csv"


def _month_range(request, today):
    """The months the request asks for: by default the twelve months up to this month, or up
    to the month asked for when only the end is given (from the first month the system takes
    at the earliest); from the month asked for to this month (or that month, if later) when
    only the start is."""
    data = request.GET.copy()
    if not data.get("issued_to"):
        # A start after this month alone is a range of its own month, not one that ends
        # before it starts.
        try:
            end = max(parse_month(data.get("issued_from", "")), month_start(today))
        except ValueError:
            end = month_start(today)
        data["issued_to"] = f"{end:%Y-%m}"
    if not data.get("issued_from"):
        try:
            end = parse_month(data["issued_to"])
        except ValueError:
            end = month_start(today)  # the filter reports the bad month
        start = max(add_months(end, 1 - REPORT_MONTHS), EARLIEST_MONTH)
        data["issued_from"] = f"{start:%Y-%m}"
    month_filter = IssueMonthFilter(data, queryset=Invoice.objects.all())
    cleaned = month_filter.form.cleaned_data if month_filter.is_valid() else {}
    last = cleaned.get("issued_to") or month_start(today)
    first = cleaned.get("issued_from") or add_months(last, 1 - REPORT_MONTHS)
    return month_filter, first, last


@finance_required
def tax_report(request):
    today = admin_toolkit.today()
    month_filter, first, last = _month_range(request, today)
    rows = []
    if month_filter.is_valid():
        approved_then = CreditNote.objects.filter(
            decided_on__gte=first, decided_on__lt=add_months(last, 1)
        )
        rows = reports.tax_report(first=first, last=last, credit_notes=approved_then)
        for row in rows:
            row["invoices_url"] = _counted_invoices_url(
                row["month"], row["month"], country=row["tax_country"], region=row["tax_region"]
            )
    return _page(
        request,
        "finance/tax_report.html",
        "Tax report",
        filter=month_filter,
        rows=rows,
        totals=reports.totals(
            rows,
            [
                "invoices",
                "taxable",
                "tax_total",
                "exempt",
                "taxable_given_back",
                "tax_given_back",
                "net_taxable",
                "tax_due",
            ],
        ),
        first=first,
        last=last,
        total_invoices_url=_counted_invoices_url(first, last),
    )


def _counted_invoices_url(first, last, **place) -> str:
    """The invoice list of what a report counts (void ones left out, I3) from month `first`
    to month `last`, in the jurisdiction `place` names (a country, and a region where tax
    depends on it: a country-wide jurisdiction lists all its regions)."""
    query = {
        "issued_from": f"{first:%Y-%m}",
        "issued_to": f"{last:%Y-%m}",
        "status": InvoiceFilter.COUNTED,
        **{key: value for key, value in place.items() if value},
    }
    return f"{reverse('finance:invoices')}?{urlencode(query)}"


@finance_required
def revenue(request):
    today = admin_toolkit.today()
    month_filter, first, last = _month_range(request, today)
    series, months = [], []
    if month_filter.is_valid():
        series, months = reports.revenue_by_month(first=first, last=last)
    peak = max((m.total for m in months), default=0) or 1

    def invoices_of(start, end, plan=None):
        """The invoice list behind a figure: a month's or the range's, of a plan or all."""
        if plan is None:
            return _counted_invoices_url(start, end)
        return _counted_invoices_url(start, end, plan=plan.plan_code, interval=plan.interval)

    bars = [
        {
            "month": m.month,
            "total": m.total,
            "invoices_url": invoices_of(m.month, m.month),
            "amounts": [
                (m.amounts.get(plan, reports.ZERO), invoices_of(m.month, m.month, plan))
                for plan in series
            ],
            "segments": [
                (index, plan, m.amounts[plan], round_cents(100 * m.amounts[plan] / peak))
                for index, plan in enumerate(series)
                if m.amounts.get(plan)
            ],
        }
        for m in months
    ]
    return _page(
        request,
        "finance/revenue.html",
        "Invoiced revenue by month and plan",
        filter=month_filter,
        series=list(enumerate(series)),
        bars=bars,
        series_totals=[
            (
                sum((m.amounts.get(plan, reports.ZERO) for m in months), reports.ZERO),
                invoices_of(first, last, plan),
            )
            for plan in series
        ],
        grand_total=sum((m.total for m in months), 0),
        total_invoices_url=invoices_of(first, last),
    )


def document_view(model, *, permission: str, name: str):
    """X5: the view of a row's private document to staff holding `permission`: a download
    named `<name>-<pk>.<ext>`, or with `?preview=1` shown inside the row's page (an <iframe>
    or <img>; PDF, PNG or JPEG only, sandboxed, never sniffed)."""

    @staff_permission_required(permission)
    def view(request, pk: int):
        row = get_object_or_404(model, pk=pk)
        return document_response(
            row.document,
            content_type=row.content_type,
            filename=f"{name}-{row.pk}{EXTENSIONS.get(row.content_type, '')}",
            inline=request.GET.get("preview") == "1",
        )

    return view


certificate_document = document_view(
    TaxExemption, permission="billing.view_taxexemption", name="certificate"
)


# --- Invoice and credit-note documents (I5) -------------------------------------------------


def printed_document(rows, *, document, issued, pdf_url_name: str):
    """I5: the page and the PDF views of a stored document (an invoice, a credit note), built
    from its row by `document(row)` and dated `issued(row)`, to staff who may view the row.
    The page links the PDF (`pdf_url_name`) and goes back to the row's admin page."""
    opts = rows.model._meta
    permission = f"{opts.app_label}.view_{opts.model_name}"

    @staff_permission_required(permission)
    def page(request, pk: int):
        row = get_object_or_404(rows, pk=pk)
        context = {
            "doc": document(row),
            "pdf_url": reverse(pdf_url_name, args=[pk]),
            "back_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]),
        }
        return render(request, "billing/document.html", context)

    @staff_permission_required(permission)
    def pdf(request, pk: int):
        row = get_object_or_404(rows, pk=pk)
        doc = document(row)
        response = HttpResponse(render_pdf(doc, issued=issued(row)), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{doc.filename}"'
        return response

    return page, pdf


invoice_page, invoice_pdf = printed_document(
    Invoice.objects.select_related("workspace"),
    document=invoice_document,
    issued=lambda invoice: invoice.issue_date,
    pdf_url_name="finance:invoice-pdf",
)
credit_note_page, credit_note_pdf = printed_document(
    CreditNote.objects.select_related("invoice__workspace"),
    document=credit_note_document,
    issued=lambda note: note.decided_on,  # only an approved note is printed
    pdf_url_name="finance:credit-note-pdf",
)
