"""Accelerator partners (C7) for startup reviewers: programs apply through the public form;
reviewers approve, decline or deactivate each on its page (or in bulk from the list) and
correct them, through the services; the page says whether the contact's emails left (R2)."""

from django.contrib import admin

from billing import admin_toolkit as toolkit
from billing.admin_toolkit import DecisionPages, ReadOnlyInline, ServiceAdmin, decision_action
from billing.formatting import day, email_kind, money
from coupons import services
from coupons.forms import PartnerApprovalForm
from coupons.models import AcceleratorPartner, Coupon


class PartnerCouponInline(ReadOnlyInline):
    model = Coupon
    fields = ["code", "name", "kind", "active"]
    show_change_link = True
    verbose_name_plural = "the partner's coupons"


@admin.register(AcceleratorPartner)
class AcceleratorPartnerAdmin(DecisionPages, ServiceAdmin):
    """C7: programs apply through the public form; reviewers approve, decline, deactivate and
    correct them through the services."""

    change_form_template = "admin/coupons/acceleratorpartner/change_form.html"
    # Every decision on a partner is a startup reviewer's (R2); a partner has no document.
    decisions = {
        "approve": "Approve as a partner",
        "decline": "Decline the application",
        "deactivate": "Deactivate",
    }
    reasoned = ("decline", "deactivate")
    review_permission = "coupons.review_acceleratorpartner"
    decide_url_name = "coupons_partner_decide"
    decide_template = "admin/coupons/acceleratorpartner/decide.html"
    row_name = "partner"
    has_document = False
    list_display = [
        "name",
        "status",
        "contact_name",
        "contact_email",
        "credit_display",
        "applied_on",
        "reviewed_on",
    ]
    list_filter = ["status", "applied_on"]
    search_fields = ["name", "contact_name", "contact_email"]
    readonly_fields = ["status", "applied_on", "reviewed_by", "reviewed_on", "review_note"]
    fields = [
        *services.PARTNER_DETAILS,
        "credit_amount",
        *readonly_fields,
    ]
    inlines = [PartnerCouponInline]
    actions = ["approve", "decline", "deactivate"]
    reason_on_change = True

    @admin.display(description="Credit a year", ordering="credit_amount")
    def credit_display(self, obj):
        return money(obj.credit_amount) if obj.credit_amount is not None else "as STARTUP"

    def update(self, request, partner, data, changed):
        services.update_partner(
            partner,
            by=request.user,
            reason=data["change_reason"],
            **{name: data[name] for name in changed if name in self.fields},
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            # R2: whether the contact was told, for reviewers, who have no outbox; the row
            # changeform_view read already, so the list costs one query.
            context["partner_emails"] = [
                (email, email_kind(email.kind)) for email in services.partner_emails(obj)
            ]
            context["outbox_visible"] = request.user.has_perm("billing.view_outboundemail")
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- the review page: the decision buttons (toolkit.DecisionPages) ---

    def open_decisions(self, partner):
        return services.open_partner_decisions(partner)

    def decision_form_class(self, decision):
        if decision == "approve":  # C7: the partner's own yearly credit, and a note
            return PartnerApprovalForm
        return super().decision_form_class(decision)

    def decided(self, partner, decision):
        if decision in self.open_decisions(partner):
            return ""
        since = f" since {day(partner.reviewed_on)}" if partner.reviewed_on else ""
        if decision == "approve":
            return (
                f"{partner.name} is already an active partner{since}: there is nothing to approve."
            )
        status = {
            AcceleratorPartner.Status.APPLIED: "an open application",
            AcceleratorPartner.Status.ACTIVE: "an active partner",
        }.get(partner.status, partner.get_status_display().lower())
        if decision == "decline":
            return (
                f"{partner.name} is {status}{since}, not an open application: there is nothing "
                "to decline."
            )
        return (
            f"{partner.name} is {status}{since}, not an active partner: there is nothing to "
            "deactivate."
        )

    def decision_subject(self, partner):
        return partner.name

    def decision_intros(self, partner):
        name, contact = partner.name, partner.contact_email
        credit = (
            f"its own {money(partner.credit_amount)}"
            if partner.credit_amount is not None
            else "the STARTUP coupon's"
        )
        approve = (
            f"{name} becomes an active partner and {contact} is emailed the approval. Its "
            f"startups' yearly credit stays {credit} unless you give an amount below (then say "
            "why in the note: it is kept)."
        )
        if partner.status == AcceleratorPartner.Status.INACTIVE:
            approve += " Coupons switched off with a deactivation, if any, are switched on again."
        return {
            "approve": approve,
            "decline": f"{name} becomes inactive and {contact} is emailed that the application "
            "is declined, with your reason.",
            "deactivate": f"{name} becomes inactive: its coupons are switched off and its own "
            "credit amount no longer applies to new grants. The reason is kept; nobody is "
            "emailed.",
        }

    def decide(self, request, partner, decision, data):
        """C7: a reviewer approves (optionally with the partner's own yearly credit, which is
        money: the why is required), declines or deactivates one partner, as of the admin's
        today."""
        today, by = toolkit.today(), request.user
        if decision == "approve":
            amount = data.get("credit_amount")
            partner = services.approve_partner(
                partner,
                by=by,
                as_of=today,
                credit_amount=amount,
                note=data.get("note", ""),
                decided_from=partner.status,
            )
            credit = f" with a yearly credit of {money(amount)}" if amount is not None else ""
            return (
                f"{partner.name} is an active partner{credit}; the approval is emailed to "
                f"{partner.contact_email}."
            )
        if decision == "decline":
            partner = services.decline_partner(partner, by=by, reason=data["reason"], as_of=today)
            return (
                f"{partner.name}'s application is declined; the reason is emailed to "
                f"{partner.contact_email}."
            )
        partner = services.deactivate_partner(partner, by=by, reason=data["reason"], as_of=today)
        return f"{partner.name} is deactivated; its coupons are switched off."

    approve = decision_action(
        "approve",
        "Approve as active partners…",
        title="Approve partners",
        done="partner(s) approved",
    )
    decline = decision_action(
        "decline",
        "Decline selected applications…",
        title="Decline partner applications",
        done="application(s) declined",
    )
    deactivate = decision_action(
        "deactivate",
        "Deactivate selected partners…",
        title="Deactivate partners",
        done="partner(s) deactivated",
    )
