"""Tax rates (X2) and tax exemption certificates (X4, X5, R3): rates are dated facts set through
`set_tax_rate`; certificates are uploaded, then reviewed on their own page beside the document."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html

from billing import admin_toolkit as toolkit
from billing import services
from billing.admin_toolkit import (
    DecisionPages,
    ReasonField,
    ReasonForm,
    ServiceAdmin,
    badge_column,
    decision_action,
    immediate_action,
    service_form_page,
    shown_column,
    validity_column,
    waiting_first,
    with_note,
)
from billing.documents import DocumentField, clean_document
from billing.formatting import day, last_day, rate
from billing.forms import RateField, bounded_by_the_service
from billing.models import TaxExemption, TaxRate
from billing.regions import US_STATES
from billing.tax import certificate_misses, region_codes_help

# Finance changes rates (R3): the same permission withdraws one typed wrong.
WITHDRAWS_RATES = "billing.change_taxrate"


class TaxRateForm(forms.ModelForm):
    # R4: a rate is money; who set it and why is kept.
    reason = ReasonField()

    class Meta:
        model = TaxRate
        fields = ["country", "region", "rate", "name", "valid_from"]
        field_classes = {"rate": RateField}  # "1e2" is not 100 %

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        bounded_by_the_service(self, ["rate"])  # "a percentage between 0 and 100, not 1000"


@admin.register(TaxRate)
class TaxRateAdmin(ServiceAdmin):
    """X2: a rate is a dated fact: a new rate from a date replaces the old one from then on
    (`set_tax_rate`); a rate in force is never edited in place."""

    form = TaxRateForm
    change_form_template = "admin/billing/taxrate/change_form.html"
    pages = (("<int:pk>/withdraw/", "withdraw_view", "billing_taxrate_withdraw"),)
    list_display = ["country_display", "region", "rate_display", "name", "valid_from", "in_force"]
    list_filter = ["country"]
    search_fields = ["region", "name"]
    fields = ["country", "region", "rate", "name", "valid_from"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*self.fields, "reason"]
        return ["rate_display" if f == "rate" else f for f in self.fields]  # "7.25 %"

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    rate_display = shown_column("rate", rate, description="Rate")
    country_display = toolkit.country_column

    def get_queryset(self, request):
        # X2: a rate is in force until the next of its place starts.
        following = TaxRate.objects.filter(
            country=OuterRef("country"),
            region=OuterRef("region"),
            valid_from__gt=OuterRef("valid_from"),
        ).order_by("valid_from")
        return (
            super()
            .get_queryset(request)
            .annotate(next_from=Subquery(following.values("valid_from")[:1]))
        )

    @admin.display(description="In force")
    def in_force(self, obj):
        """X2: when the rate applies, as of today: not yet, now, or no more."""
        today = toolkit.today()
        until = obj.next_from
        if obj.valid_from > today:
            return "not yet" + (f" (until {last_day(until)})" if until else "")
        if until is not None and until <= today:
            return f"no more: replaced on {day(until)}"
        return "now" + (f", until {last_day(until)}" if until else "")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tax_rate = self.get_object(request, object_id)
        if tax_rate is not None:
            withdrawable = request.user.has_perm(WITHDRAWS_RATES) and not (
                services.withdrawal_of_rate_refusal(tax_rate)
            )
            extra_context = {**(extra_context or {}), "withdrawable": withdrawable}
        return super().change_view(request, object_id, form_url, extra_context)

    def withdraw_view(self, request, pk):
        """X2: a rate typed wrong is withdrawn, with why, while nothing has read it; one read
        already says why it stays (and that a new rate from a later day replaces it)."""
        if not request.user.has_perm(WITHDRAWS_RATES):
            raise PermissionDenied
        tax_rate = get_object_or_404(TaxRate, pk=pk)
        before = (
            TaxRate.objects.filter(
                country=tax_rate.country,
                region=tax_rate.region,
                valid_from__lt=tax_rate.valid_from,
            )
            .order_by("valid_from")
            .last()
        )

        def perform(data):
            services.withdraw_tax_rate(tax_rate, by=request.user, reason=data["reason"])
            return f"{tax_rate} withdrawn: {data['reason']}", None

        closed = services.withdrawal_of_rate_refusal(tax_rate)
        instead = f"{before} applies instead" if before else "no rate of its own applies instead"
        return service_form_page(
            self,
            request,
            tax_rate,
            form=ReasonForm(request.POST or None),
            perform=perform,
            title=f"Withdraw {tax_rate}",
            back_url=reverse("admin:billing_taxrate_changelist"),
            closed=closed,
            submit_label="Yes, withdraw it",
            intro=""
            if closed
            else f"Nothing has read it yet: withdrawn, {instead} from {day(tax_rate.valid_from)}.",
        )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "region":
            kwargs["help_text"] = (
                "Empty for a country-wide rate (VAT, GST; the US has none: name the state); "
                f"{region_codes_help()}."
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def create(self, request, data):
        tax_rate = services.set_tax_rate(
            str(data["country"]),
            region=data["region"],
            rate=data["rate"],
            name=data["name"],
            valid_from=data["valid_from"],
            reason=data["reason"],
            by=request.user,
        )
        # X2: a rate of the same place and day is replaced: say which, as the history does.
        replaced = tax_rate.history.order_by("-history_id")[1:2].first()
        if replaced is not None:
            self.message_user(
                request,
                f"It replaces the {rate(replaced.rate)} rate ({replaced.name}) set to start on "
                f"{day(tax_rate.valid_from)}.",
                messages.WARNING,
            )
        return tax_rate


class TaxExemptionForm(forms.ModelForm):
    """The upload: the document is checked by its content before the service stores it."""

    class Meta:
        model = TaxExemption
        fields = ["workspace", "region", "reason", "document", "valid_from", "valid_to"]
        # X4: a certificate is a US state's; the list and the approve page say "State" too.
        labels = {"region": "State"}
        help_texts = {"document": "PDF, PNG or JPEG, at most 10 MB."}
        field_classes = {"document": DocumentField}

    def clean_region(self):
        region = self.cleaned_data["region"].strip().upper()
        if region not in US_STATES:
            raise forms.ValidationError(f"“{region}” is not a US state code (e.g. NH).")
        return region

    def clean_document(self):
        return clean_document(self.cleaned_data.get("document"), what="certificate")


CERTIFICATE_TONES = {
    "submitted": "waiting",
    "in_review": "waiting",
    "approved": "good",
    "rejected": "bad",
}


@admin.register(TaxExemption)
class TaxExemptionAdmin(DecisionPages, ServiceAdmin):
    """X4: support and finance upload certificates; finance reviews each on its page, with the
    document shown beside the decision buttons (or in bulk from the list). Nothing is edited by
    hand: a wrong certificate is rejected and a new one submitted."""

    workspace_of_row = "workspace"
    form = TaxExemptionForm
    change_form_template = "admin/toolkit/decision_change_form.html"
    decisions = {"review": "Start review", "approve": "Approve", "reject": "Reject"}
    review_permission = "billing.review_taxexemption"
    decide_url_name = "billing_taxexemption_decide"
    decide_template = "admin/billing/taxexemption/decide.html"
    row_name = "certificate"
    document_label = "Certificate document"
    decision_related = ("workspace", "reviewed_by")
    list_display = [
        "number",
        "workspace",
        "state_and_reason",
        "status_display",
        "validity",
        "submitted_on",
        "document_link",
    ]
    list_select_related = ["workspace"]
    list_filter = ["status", "reason", "region"]
    ordering = waiting_first(TaxExemption.OPEN_STATUSES, since="submitted_on", decided="decided_on")
    search_fields = ["workspace__slug", "workspace__name", "=region"]
    autocomplete_fields = ["workspace"]
    actions = ["start_review", "approve", "reject"]
    add_fields = TaxExemptionForm.Meta.fields
    view_fields = [
        "workspace",
        "region",
        "reason",
        "document_link",
        "content_type",
        "valid_from",
        "valid_to",
        "status",
        "submitted_on",
        "review_started_on",
        "reviewed_by",
        "decided_on",
        "rejection_reason",
    ]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.view_fields

    @admin.display(description="Certificate", ordering="pk")
    def number(self, obj):
        return f"#{obj.pk}"

    status_display = badge_column("status", CERTIFICATE_TONES)

    validity = validity_column("valid_from", "valid_to")

    @admin.display(description="State", ordering="region")
    def state_and_reason(self, obj):
        """The state it is for, its reason under it: one column, so every column fits."""
        return with_note(obj.region, obj.get_reason_display())

    # --- the review page: the document and the decision buttons (toolkit.DecisionPages) ---

    def open_decisions(self, certificate):
        if certificate.status in (TaxExemption.Status.APPROVED, TaxExemption.Status.REJECTED):
            return []
        if certificate.status == TaxExemption.Status.SUBMITTED:
            return ["review", "approve", "reject"]
        return ["approve", "reject"]

    def document_url(self, certificate):
        return reverse("finance:certificate-document", args=[certificate.pk])

    def decided(self, certificate, decision):
        name = f"Certificate #{certificate.pk}"
        if certificate.status in (TaxExemption.Status.APPROVED, TaxExemption.Status.REJECTED):
            return (
                f"{name} was already {certificate.get_status_display().lower()} on "
                f"{day(certificate.decided_on)}: a decision is final."
            )
        if decision == "review" and certificate.status == TaxExemption.Status.IN_REVIEW:
            return f"{name} is already in review since {day(certificate.review_started_on)}."
        return ""

    def decision_subject(self, certificate):
        return f"certificate #{certificate.pk} of {certificate.workspace.name}"

    def decision_intros(self, certificate):
        workspace = certificate.workspace
        ws = workspace.name
        approve = (
            f"From today, invoices of {ws} for {certificate.region} carry no sales tax while "
            "the certificate is valid. Invoices already issued do not change."
        )
        misses = certificate_misses(
            certificate.region, workspace.business_country, workspace.business_region
        )
        if misses:  # X4: a certificate for another state is kept, and waives nothing here
            approve = (
                f"{ws} is taxed where its business is located: this certificate {misses}, so "
                f"approving it waives the tax of none of {ws}'s invoices while it stays there."
            )
        return {
            "review": "Taking the certificate into review tells the customer's agents that "
            "finance is on it; it changes no invoice.",
            "approve": approve,
            "reject": "Invoices go on carrying sales tax. The reason is kept with the certificate.",
        }

    def decide(self, request, certificate, decision, data):
        """X4: finance takes one certificate into review, approves or rejects it (with a
        reason), on a page that shows the document again."""
        today, by, name = toolkit.today(), request.user, f"Certificate #{certificate.pk}"
        if decision == "review":
            services.start_exemption_review(certificate, by=by, as_of=today)
            return f"{name} is in review."
        if decision == "approve":
            services.approve_exemption(certificate, by=by, as_of=today)
            workspace = certificate.workspace
            misses = certificate_misses(
                certificate.region, workspace.business_country, workspace.business_region
            )
            if misses:  # as its page said: kept, and waiving nothing where the business is
                return (
                    f"{name} approved. It {misses}: {workspace.name}'s invoices are still "
                    "taxed where its business is."
                )
            return (
                f"{name} approved: {workspace.name}'s invoices from {day(today)} carry no "
                f"{certificate.region} sales tax while it is valid."
            )
        services.reject_exemption(certificate, by=by, reason=data["reason"], as_of=today)
        return f"{name} rejected: {data['reason']}"

    @admin.display(description="Document")
    def document_link(self, obj):
        if not obj.pk or not obj.document:
            return "—"
        return format_html('<a href="{}">Download</a>', self.document_url(obj))

    def create(self, request, data):
        # The upload form's fields are the service's arguments, one for one.
        upload = {name: data[name] for name in TaxExemptionForm.Meta.fields}
        return services.submit_exemption(**upload, as_of=toolkit.today(), by=request.user)

    def describe_row(self, certificate):
        """The bulk pages' line for a certificate, with the warning its own approve page gives
        (X4): one for another state than the business's waives none of its invoices."""
        status = certificate.get_status_display().lower()
        workspace = certificate.workspace
        text = f"#{certificate.pk} {workspace.name}, {certificate.region} ({status})"
        misses = certificate_misses(
            certificate.region, workspace.business_country, workspace.business_region
        )
        return f"{text}: it {misses}, so it waives none of its invoices" if misses else text

    start_review = immediate_action(
        "Start review of selected certificates",
        lambda model_admin, request, certificate: model_admin.decide(
            request, certificate, "review", {}
        ),
        permission="review",
        done="certificate(s) taken into review",
        related=decision_related,
    )
    approve = decision_action(
        "approve",
        "Approve selected certificates…",
        title="Approve certificates",
        done="certificate(s) approved",
        intro="Approved certificates waive the sales tax of invoices issued from today in "
        "their state, while they are valid.",
    )
    reject = decision_action(
        "reject",
        "Reject selected certificates…",
        title="Reject certificates",
        done="certificate(s) rejected",
    )
