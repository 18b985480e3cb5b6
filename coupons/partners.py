"""Accelerator partners (SPEC C7): programs apply through the public form; staff approve,
decline or deactivate them and may set their own startup-program credit amount (which the
credits use instead of the STARTUP coupon's, `coupons.credits.credit_amount_for`)."""

from datetime import date

from django.db import transaction
from django.db.models import Q

from billing.amounts import parse_dollars
from billing.audit import changed_fields, require_reason, save_with_reason, with_reason
from billing.clock import refuse_processed
from billing.contact_details import check_email, check_name, check_website
from billing.emails import queue_email
from billing.errors import refuse_dated_before, refuse_problems
from billing.formatting import day, money
from billing.models import OutboundEmail
from billing.turns import take_turns
from coupons.catalogue import switch_coupon
from coupons.errors import CouponError
from coupons.models import AcceleratorPartner, CreditGrant

Status = AcceleratorPartner.Status

# C7: the statuses each decision is taken from; the services refuse it from any other.
DECIDED_FROM = {
    "approve": (Status.APPLIED, Status.INACTIVE),
    "decline": (Status.APPLIED,),
    "deactivate": (Status.ACTIVE,),
}
# What a program's contact is sent about it (C7): the approval (once per approval day) and
# the decline.
PARTNER_EMAILS = ("partner_approved", "partner_declined")


@transaction.atomic
def apply_as_partner(
    name: str,
    *,
    contact_name: str,
    contact_email: str,
    website: str = "",
    description: str = "",
    as_of: date,
) -> AcceleratorPartner:
    """C7: a program applies through the public form; staff review it."""
    problems = []
    name = check_name(name, "program name", problems)
    contact_name = check_name(contact_name, "contact name", problems)
    check_email(contact_email, problems)
    if website:  # C7: a program may have none
        check_website(website, problems)
    if len(description or "") > 5_000:
        problems.append("The description is longer than 5,000 characters.")
    if name:  # one program per name: a form sent twice at once waits for the first
        take_turns("partner name", name.casefold())
    if name and (taken := name_taken_problem(name)):
        problems.append(taken)
    refuse_problems(problems, CouponError)
    partner = AcceleratorPartner(
        name=name,
        website=website,
        contact_name=contact_name,
        contact_email=contact_email,
        description=(description or "").strip(),
        applied_on=as_of,
    )
    save_with_reason(partner, "Applied through the public form")
    return partner


def name_taken_problem(name: str, *, other_than: AcceleratorPartner | None = None) -> str | None:
    """C7: one program per name (any case) that has applied or is a partner; an inactive one's
    name is free again. The public form asks first, to count the answer (R7)."""
    others = AcceleratorPartner.objects.exclude(pk=getattr(other_than, "pk", None))
    if others.filter(name__iexact=name).exclude(status=Status.INACTIVE).exists():
        return f"A program named “{name}” has applied already or is a partner."
    return None


def _refuse_name_taken(partner: AcceleratorPartner, name: str) -> None:
    """C7: one program per name, for a program coming back (approved again) or renamed, as for
    one applying: they take turns on the name with the public form."""
    take_turns("partner name", name.casefold())
    if taken := name_taken_problem(name, other_than=partner):
        raise CouponError(f"{taken} One program per name: decide that one, or rename this one.")


def _locked_partner(partner) -> AcceleratorPartner:
    return AcceleratorPartner.objects.select_for_update().get(pk=partner.pk)


def partner_date_order_problem(partner, as_of: date, what: str) -> str | None:
    """D4, C7: a change that reads a partner's status (its startup's grant: the partner's
    amount while it is active) goes in date order with the partner's decisions. Dated before a
    decision entered already, it would read the status that decision set. The partner's row
    is held to the commit, so a decision being made waits for it."""
    if partner is None:
        return None
    # FOR NO KEY UPDATE: a decision (FOR UPDATE) waits for it, a grant pointing at it does not.
    partner = AcceleratorPartner.objects.select_for_update(no_key=True).get(pk=partner.pk)
    if partner.reviewed_on is not None and as_of < partner.reviewed_on:
        return (
            f"{what} cannot be dated {day(as_of)}: {partner.name}'s decision dated "
            f"{day(partner.reviewed_on)} was entered already, and changes are entered in date "
            "order."
        )
    return None


def _decide(partner: AcceleratorPartner, status, text: str, *, by, as_of: date, note: str):
    """A staff decision on the program: its new status, who decided, when and why. D4: not
    dated before a year-one grant entered already for one of its startups (that grant, dated
    its approval, read the status as it was; a year-two grant is valid from the anniversary,
    so its confirmation guards itself: `partner_date_order_problem`)."""
    refuse_dated_before(
        as_of,
        partner.applied_on,
        f"A decision on {partner.name}",
        "the program applied",
        error=CouponError,
    )
    if partner.reviewed_on is not None:  # D4: its decisions in date order
        refuse_dated_before(
            as_of,
            partner.reviewed_on,
            f"A decision on {partner.name}",
            "its last decision",
            error=CouponError,
        )
    later = (
        CreditGrant.objects.filter(partner=partner, year=1, valid_from__gt=as_of)
        .order_by("-valid_from")
        .values_list("valid_from", flat=True)
        .first()
    )
    if later is not None:
        raise CouponError(
            f"A decision on {partner.name} cannot be dated {day(as_of)}: a grant to one of its "
            f"startups dated {day(later)} was entered already, and changes are entered in date "
            "order."
        )
    partner.status = status
    partner.reviewed_by, partner.reviewed_on, partner.review_note = by, as_of, note
    save_with_reason(partner, text, by=by)


def open_partner_decisions(partner: AcceleratorPartner) -> list[str]:
    """C7: the decisions (`DECIDED_FROM`'s names) the partner's status allows now."""
    return [name for name, statuses in DECIDED_FROM.items() if partner.status in statuses]


def _email_key(partner: AcceleratorPartner) -> str:
    return f"partner:{partner.pk}"


def _email_contact(partner: AcceleratorPartner, kind: str, *, object_key: str):
    """The program's contact hears of the decision (one email per `object_key`)."""
    queue_email(
        kind=kind,
        object_key=object_key,
        to=partner.contact_email,
        template=kind,
        context={"partner": partner},
    )


@transaction.atomic
def approve_partner(
    partner: AcceleratorPartner,
    *,
    by,
    as_of: date,
    credit_amount=None,
    note: str = "",
    decided_from: str | None = None,
) -> AcceleratorPartner:
    """C7: an applied (or inactive) program becomes an active partner; optionally with its own
    startup-program credit amount, which is money: then the why is required (R4).

    `decided_from` is the status the reviewer approved from (the page passes what it read):
    approving re-activates an inactive program, so an application declined by someone else a
    moment before would otherwise be approved over that decline, its contact told both. Its
    name must be free again then: another program may have applied under it since."""
    refuse_processed(as_of, "A partner decision")
    partner = _locked_partner(partner)
    if partner.status not in DECIDED_FROM["approve"]:
        raise CouponError(f"{partner.name} is already an active partner.")
    if decided_from is not None and partner.status != decided_from:
        raise CouponError(
            f"{partner.name} became {partner.get_status_display().lower()} meanwhile: nothing "
            "was approved. Read its page as it is now and decide again."
        )
    if partner.status == Status.INACTIVE:
        _refuse_name_taken(partner, partner.name)
    problems = []
    amount = parse_dollars(credit_amount, "partner's credit amount", problems, positive=True)
    refuse_problems(problems, CouponError)
    note = note.strip()
    text = with_reason("Approved", note)
    if amount is not None:
        why = "Say why this partner's startups get their own credit amount: the reason is kept."
        note = require_reason(note, why, error=CouponError)
        partner.credit_amount = amount
        text = f"Approved with a yearly credit of {money(amount)}: {note}"
    _decide(partner, Status.ACTIVE, text, by=by, as_of=as_of, note=note)
    # Active again: the coupons its deactivation switched off come back with it (reviewers
    # may not edit coupons, R2); one switched off since, or by support, stays off.
    for coupon in partner.coupons.select_for_update().filter(active=False):
        last = coupon.history.order_by("-history_date", "-history_id").first()
        if last is not None and _switched_off_with_its_partner(last.history_change_reason):
            switch_coupon(coupon, True, as_of=as_of)
            save_with_reason(coupon, f"Partner {partner.name} active again", by=by)
    _email_contact(partner, "partner_approved", object_key=f"{_email_key(partner)}:{as_of}")
    return partner


def partner_emails(partner: AcceleratorPartner) -> list[OutboundEmail]:
    """The emails to the program's contact about its decisions and whether each left, oldest
    first, for its page: a reviewer answers "were they told?" from it (R2 gives reviewers no
    outbox, which holds every customer's emails). One query."""
    key = _email_key(partner)
    return list(
        OutboundEmail.objects.filter(
            Q(object_key=key) | Q(object_key__startswith=f"{key}:"), kind__in=PARTNER_EMAILS
        ).order_by("created_at", "pk")
    )


def _switched_off_with(partner: AcceleratorPartner) -> str:
    """The history reason of a coupon switched off by its partner's deactivation."""
    return f"Partner {partner.name} deactivated"


def _switched_off_with_its_partner(reason: str | None) -> bool:
    """Whether a coupon's history `reason` is its partner's deactivation, under whatever name
    the partner had then (a coupon goes off only with its own partner)."""
    reason = reason or ""
    return reason.startswith("Partner ") and reason.endswith(" deactivated")


@transaction.atomic
def decline_partner(partner: AcceleratorPartner, *, by, reason: str, as_of: date):
    """C7: an application is declined (the program becomes inactive), with a reason."""
    reason = require_reason(
        reason, "Say why the application is declined: the reason is kept.", error=CouponError
    )
    refuse_processed(as_of, "A partner decision")
    partner = _locked_partner(partner)
    if partner.status not in DECIDED_FROM["decline"]:
        raise CouponError(
            f"{partner.name} is {partner.get_status_display().lower()}, not an open application."
        )
    _decide(partner, Status.INACTIVE, f"Declined: {reason}", by=by, as_of=as_of, note=reason)
    _email_contact(partner, "partner_declined", object_key=_email_key(partner))
    return partner


@transaction.atomic
def deactivate_partner(partner: AcceleratorPartner, *, by, reason: str, as_of: date):
    """C7: an active partner becomes inactive; its coupons are switched off with it, and its
    credit amount no longer applies to new grants."""
    reason = require_reason(
        reason, "Say why the partner is deactivated: the reason is kept.", error=CouponError
    )
    refuse_processed(as_of, "A partner decision")
    partner = _locked_partner(partner)
    if partner.status not in DECIDED_FROM["deactivate"]:
        raise CouponError(f"{partner.name} is not an active partner.")
    _decide(partner, Status.INACTIVE, f"Deactivated: {reason}", by=by, as_of=as_of, note=reason)
    for coupon in partner.coupons.select_for_update().filter(active=True):
        switch_coupon(coupon, False, as_of=as_of)
        save_with_reason(coupon, _switched_off_with(partner), by=by)
    return partner


PARTNER_DETAILS = ("name", "website", "contact_name", "contact_email", "description")


@transaction.atomic
def update_partner(partner: AcceleratorPartner, *, by, reason: str, **changes):
    """C7: staff correct a program's details or set its own startup credit amount (money: the
    why is required and kept)."""
    reason = require_reason(
        reason, "Say why the partner's details change: the reason is kept.", error=CouponError
    )
    unknown = set(changes) - {*PARTNER_DETAILS, "credit_amount"}
    if unknown:
        raise CouponError(f"These are not partner details: {', '.join(sorted(unknown))}.")
    partner = _locked_partner(partner)
    problems = []
    for field, label in (("name", "name"), ("contact_name", "contact name")):
        if field in changes:
            changes[field] = check_name(changes[field], label, problems)
    if "contact_email" in changes:
        check_email(changes["contact_email"], problems)
    if changes.get("website"):
        check_website(changes["website"], problems)
    if changes.get("credit_amount") is not None:
        changes["credit_amount"] = parse_dollars(
            changes["credit_amount"], "partner's credit amount", problems, positive=True
        )
    refuse_problems(problems, CouponError)
    renamed = "name" in changes and changes["name"].casefold() != partner.name.casefold()
    if renamed and partner.status != Status.INACTIVE:
        _refuse_name_taken(partner, changes["name"])
    for field, value in changes.items():
        setattr(partner, field, value)
    changed = changed_fields(AcceleratorPartner, changes)
    save_with_reason(partner, with_reason(changed, reason), by=by)
    return partner
