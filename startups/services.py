"""The startup program's writes (SPEC S1–S6, CR3). Every transition is a service; each locks
the application row first, so a double click or a retried task decides nothing twice."""

from copy import copy
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django_countries import countries
from simple_history.utils import bulk_update_with_history

from billing.amounts import parse_dollars
from billing.audit import record_history, require_reason, save_with_reason, with_reason
from billing.clock import refuse_processed
from billing.closed_workspaces import closed_since, first_closure_since, refuse_closed
from billing.contact_details import check_email, check_name, check_website
from billing.emails import queue_email
from billing.errors import refuse_dated_before, refuse_problems
from billing.formatting import day, money
from billing.models import OutboundEmail, Subscription, Workspace
from billing.months import add_year, years_before
from billing.selectors import workspace_status
from billing.subscriptions import advance_workspace
from billing.turns import take_turns
from coupons.models import AcceleratorPartner, Coupon, CreditGrant
from coupons.selectors import coupon_or_credit_received, program_member
from coupons.services import (
    STARTUP_CODE,
    credit_amount_for,
    grant_credits,
    partner_date_order_problem,
    redeem_coupon,
)
from coupons.workspaces import locked_workspace
from startups import eligibility
from startups.errors import ApplicationError  # importable from here too (views, tests)
from startups.models import (
    DealRequest,
    EligibleTerritory,
    PartnerDeal,
    RenewalReview,
    StartupApplication,
)

Status = StartupApplication.Status
# Funding has its column's 14 digits, 2 of them cents: a trillion dollars or more is a typing
# mistake, not a startup.
FUNDING_DIGITS = 14
# An incorporation year before this is a typing mistake (0001 from a date picker), not a
# company; years before 2000 are real ones, so billing's 2000–2099 bound does not fit.
EARLIEST_INCORPORATION_YEAR = 1900


def incorporation_date_problem(incorporated: date, *, as_of: date) -> str | None:
    """S1: what is wrong with an incorporation date typed on `as_of`, or None. The public form
    and the service ask this one rule."""
    if incorporated > as_of:
        return "The incorporation date cannot be in the future."
    if incorporated.year < EARLIEST_INCORPORATION_YEAR:
        return "Check the incorporation date: the year looks wrong."
    return None


def parse_funding(value, problems: list[str]) -> Decimal | None:
    """S1, CR3: the total funding raised as typed, in dollars and cents, 0 or more and under
    a trillion; None when it is not (`problems` says why). The forms ask this one rule."""
    funding = parse_dollars(value, "total funding", problems, max_digits=FUNDING_DIGITS)
    if funding is None:
        if not problems:
            problems.append("The total funding raised is needed, in US dollars.")
        return None
    if funding < 0:
        problems.append(f"The total funding cannot be negative (“{value}”).")
        return None
    return funding


def _locked(application) -> StartupApplication:
    return StartupApplication.objects.select_for_update().get(pk=application.pk)


def refresh_checks(application: StartupApplication) -> list[eligibility.Check]:
    """S2: evaluate the checks again (when a reviewer opens it) and store them."""
    checks = eligibility.evaluate(application, coupon_or_credit_received)  # E4
    application.checks = [check.as_dict() for check in checks]
    application.failing_checks = " ".join(c.id for c in checks if not c.passed)
    return checks


def _store_checks_again(application: StartupApplication, why: str, *, by) -> None:
    """S2: the (locked) application's checks evaluated again, and stored with a history row
    saying `why` when they changed (the queue and its filters read the stored ones)."""
    stored = application.checks, application.failing_checks
    refresh_checks(application)
    if (application.checks, application.failing_checks) != stored:
        save_with_reason(application, why, by=by, fields=["checks", "failing_checks"])


@transaction.atomic
def recheck_application(application: StartupApplication, *, by) -> StartupApplication:
    """S2: an open application's checks evaluated again when a reviewer opens it (its workspace
    may have had a coupon since), and stored, with a history row, when they changed."""
    application = _locked(application)
    if application.is_open:
        _store_checks_again(application, "Checks evaluated again", by=by)
    return application


@transaction.atomic
def recheck_after_receipt(workspace_id: int, what: str, *, by=None) -> None:
    """S2, E4: the workspace's open applications, once it received a coupon or credit (`what`;
    registered with `coupons.workspaces.register_receipt_listener`): their stored checks fail
    E4 from then on, so the queue and its "All checks pass" filter say so before a reviewer
    opens them."""
    applications = StartupApplication.objects.open().filter(workspace_id=workspace_id)
    for application in applications.order_by("pk").select_for_update():
        _store_checks_again(
            application, f"Checks evaluated again: the workspace received {what}", by=by
        )


@transaction.atomic
def submit_application(
    company_name: str,
    *,
    website: str,
    contact_name: str,
    contact_email: str,
    incorporation_date: date,
    total_funding,
    country: str,
    workspace=None,
    partner=None,
    partner_name: str = "",
    as_of: date,
    source: str = StartupApplication.Source.PUBLIC_FORM,
    by=None,
) -> StartupApplication:
    """S1: an application from the public form or entered by staff; its checks are stored
    (S2) and the contact gets a confirmation email (one a day per address)."""
    problems = []
    check_name(company_name, "company name", problems)
    check_name(contact_name, "contact name", problems)
    check_name(partner_name, "accelerator or VC partner", problems, required=False)
    check_website(website, problems)
    check_email(contact_email, problems)
    if not isinstance(incorporation_date, date):
        problems.append("The incorporation date is required.")
    elif problem := incorporation_date_problem(incorporation_date, as_of=as_of):
        problems.append(problem)
    funding = parse_funding(total_funding, problems)
    if str(country) not in countries:
        problems.append(f"“{country}” is not a country.")
    refuse_problems(problems, ApplicationError)
    application = StartupApplication(
        company_name=company_name.strip(),
        company_key=eligibility.company_key(company_name),
        website=website,
        contact_name=contact_name.strip(),
        contact_email=contact_email,
        workspace=workspace,
        incorporation_date=incorporation_date,
        total_funding=funding,
        country=str(country).upper(),
        partner=partner,
        partner_name=(partner_name or (partner.name if partner else "")).strip(),
        source=source,
        submitted_on=as_of,
    )
    # E5: each sees the other applications of its company; those still open are told of it.
    _take_e5_turns(application)
    if (same := _same_application_open(application)) is not None:
        if source == StartupApplication.Source.PUBLIC_FORM:
            # The form sent again (a double click, back and resend): the one open already is
            # the answer, as if new; the sender learns nothing of other applications.
            return same
        raise ApplicationError(
            f"Application #{same.pk} of {same.company_name}, with these answers, is open "
            f"already (submitted on {day(same.submitted_on)})."
        )
    refresh_checks(application)
    save_with_reason(application, "Submitted", by=by)
    _refresh_e5_of_others(application, by=by, why="is open too")
    # The form takes any address and sends from our domain: the confirmation echoes nothing
    # the sender typed, and an address gets one a day however many forms name it (the form's
    # limit is per client address, and a sender can change theirs), forms sent at once too:
    # they take turns per address (last, so nothing is waited for while it is held).
    take_turns("S1 confirmation", contact_email.strip().lower())
    confirmed_today = (
        StartupApplication.objects.filter(contact_email__iexact=contact_email, submitted_on=as_of)
        .exclude(pk=application.pk)
        .exists()
    )
    if not confirmed_today:
        _email_applicant(application, "startup_application_received")
    return application


def _same_application_open(application: StartupApplication) -> StartupApplication | None:
    """The open application with every answer of `application` (the company's E5 turn is
    held: one sent at the same moment has committed or waits)."""
    answers = {
        name: getattr(application, name)
        for name in (
            "company_name",
            "website",
            "contact_name",
            "incorporation_date",
            "total_funding",
            "country",
            "workspace",
            "partner",
            "partner_name",
            "source",
        )
    }
    return (
        StartupApplication.objects.open()
        .filter(
            company_key=application.company_key,
            contact_email__iexact=application.contact_email,
            **answers,
        )
        .order_by("pk")
        .first()
    )


def _take_e5_turns(application: StartupApplication, *, moving_to=None) -> None:
    """E5: transactions that open, close or move applications of one company or workspace run
    one after the other (a form sent twice at once, a withdrawal beside a submission), so each
    sees what the other wrote. Taken before any row is locked, the company's turn first, then
    the workspaces' in order (one taking rows first and then a turn would wait on the other
    doing it the other way). The company's turn settles the application's workspace (a link
    takes it too), so it is read after it; a link takes the turn of where it moves it too."""
    take_turns("E5 company", application.company_key)
    stored = StartupApplication.objects.filter(pk=application.pk).values_list("workspace_id")
    current = stored.first()[0] if application.pk else application.workspace_id
    for workspace_id in sorted({current, moving_to} - {None}):
        take_turns("E5 workspace", str(workspace_id))


def _refresh_e5_of_others(application: StartupApplication, *, by, why: str, moved_from=None):
    """E5 reads the other open applications of one company or workspace: theirs, stored (the
    queue reads them), are evaluated again when `application` opens, closes or moves (from the
    workspace `moved_from`), and saved when they changed: the one already open fails E5 while
    this one is open, and passes again once it is withdrawn or decided."""
    workspaces = {application.workspace_id, moved_from} - {None}
    same = [Q(workspace_id__in=workspaces)] if workspaces else []
    if application.company_key:
        same.append(Q(company_key=application.company_key))
    if not same:
        return
    others = StartupApplication.objects.open().filter(reduce(or_, same)).exclude(pk=application.pk)
    for other in others.select_for_update():
        _store_checks_again(
            other, f"Checks evaluated again: application #{application.pk} {why}", by=by
        )


# What an applicant is sent about an application (S1, S4, S5), each once.
APPLICANT_EMAILS = (
    "startup_application_received",
    "startup_application_accepted",
    "startup_application_rejected",
)


def _email_key(application: StartupApplication) -> str:
    return f"application:{application.pk}"


def _email_applicant(application: StartupApplication, kind: str, **context):
    """S1, S5: the applicant's one email of each kind, sent after commit."""
    queue_email(
        kind=kind,
        object_key=_email_key(application),
        to=application.contact_email,
        template=kind,
        context={"application": application, **context},
    )


def applicant_emails(application: StartupApplication) -> list[OutboundEmail]:
    """The emails about `application` and whether each left, oldest first, for its page: a
    reviewer answers "did they get our decision?" from it (R2 gives reviewers no outbox, which
    holds every customer's emails)."""
    return list(
        OutboundEmail.objects.filter(
            kind__in=APPLICANT_EMAILS, object_key=_email_key(application)
        ).order_by("created_at", "pk")
    )


def _refuse_before_submitted(application, as_of: date, what: str):
    """S3: an application is reviewed and decided on or after the day it was submitted (an
    approval dated earlier would grant credit from before it existed, CR1)."""
    refuse_dated_before(
        as_of,
        application.submitted_on,
        what,
        f"application #{application.pk} was submitted",
        error=ApplicationError,
    )


def _require_open(application, action):
    if not application.is_open:
        decided = f" on {day(application.decided_on)}" if application.decided_on else ""
        raise ApplicationError(
            f"Application #{application.pk} is already {application.get_status_display().lower()}"
            f"{decided}: it cannot be {action}."
        )


@transaction.atomic
def assign_application(application, *, reviewer, by, as_of: date) -> StartupApplication:
    application = _locked(application)
    _refuse_before_submitted(application, as_of, "An assignment")
    _require_open(application, "assigned")
    if application.assigned_to_id == reviewer.pk:  # a replayed page keeps no second row
        raise ApplicationError(f"Application #{application.pk} is assigned to {reviewer} already.")
    application.assigned_to = reviewer
    save_with_reason(application, f"Assigned to {reviewer} on {day(as_of)}", by=by)
    return application


@transaction.atomic
def start_review(application, *, by, as_of: date) -> StartupApplication:
    """S3: submitted → in review (taken by the reviewer if nobody has it)."""
    application = _locked(application)
    _refuse_before_submitted(application, as_of, "A review")
    if application.status != Status.SUBMITTED:
        raise ApplicationError(
            f"Application #{application.pk} is {application.get_status_display().lower()}, "
            "not submitted: only a submitted application goes into review."
        )
    application.status = Status.IN_REVIEW
    application.assigned_to = application.assigned_to or by
    refresh_checks(application)
    save_with_reason(application, f"In review from {day(as_of)}", by=by)
    return application


@transaction.atomic
def withdraw_application(application, *, by, as_of: date, reason: str) -> StartupApplication:
    """S3: withdrawn at any open state; R4: the why is required and kept (the decision is
    final, and it lets the company's next application pass E5)."""
    reason = require_reason(
        reason, "Say why the application is withdrawn: the reason is kept.", error=ApplicationError
    )
    _take_e5_turns(application)
    application = _locked(application)
    _require_open(application, "withdrawn")
    _refuse_before_submitted(application, as_of, "A withdrawal")
    application.status = Status.WITHDRAWN
    application.decision_note = reason
    save_with_reason(application, f"Withdrawn on {day(as_of)}: {reason}", by=by)
    _refresh_e5_of_others(application, by=by, why="was withdrawn")
    return application


@transaction.atomic
def reject_application(application, *, by, reason: str, as_of: date) -> StartupApplication:
    """S3, S5: a reason is required; one rejection email."""
    refuse_processed(as_of, "An application decision")
    reason = require_reason(
        reason, "A rejection needs a reason: it is sent to the applicant.", error=ApplicationError
    )
    _take_e5_turns(application)
    application = _locked(application)
    _require_open(application, "rejected")
    _refuse_before_submitted(application, as_of, "A rejection")
    application.status = Status.REJECTED
    application.rejection_reason = reason
    application.decided_by, application.decided_on = by, as_of
    save_with_reason(application, f"Rejected: {reason}", by=by)
    _refresh_e5_of_others(application, by=by, why="was rejected")
    _email_applicant(application, "startup_application_rejected")
    return application


def credits_scope_warning(application, as_of: date) -> str:
    """S7: what the reviewer must know before approving a workspace whose invoices the credits
    will not reach now (CR2: monthly Team invoices only); empty when there is nothing."""
    if application.workspace_id is None:
        return ""
    status = workspace_status(application.workspace, as_of=as_of)
    if status["closed"]:
        return ""  # W1: approving it is refused (`closure_note`), whatever its plan
    trial_ends_without_card = (
        not status["has_payment_method"]
        and Subscription.objects.filter(
            workspace_id=application.workspace_id,
            trial_end=as_of,
            trial_outcome=Subscription.TrialOutcome.RUNNING,
        ).exists()
    )
    if status["plan"] == "free":
        where = "is on Free"
    elif trial_ends_without_card:  # T4: the clock moves it to Free when it processes today
        where = "ends its Team trial today with no card on file, so moves to Free"
    elif status["interval"] == "annual":
        where = "is on annual Team"
    else:
        return ""
    return (
        f"{application.workspace.name} {where}: startup credits apply to monthly Team "
        "invoices only, so none are used until it moves to monthly Team."
    )


def _running_trial(workspace, as_of: date) -> dict | None:
    """T4 for the acceptance email: a monthly Team trial's end date and whether a card is on
    file (without one by then the workspace moves to Free, where the credit pays nothing)."""
    status = workspace_status(workspace, as_of=as_of)
    if not status["trialing"]:
        return None
    return {"ends_on": status["trial_end"], "card_on_file": status["has_payment_method"]}


def closure_note(application) -> str:
    """W1: the approve page says first that the linked workspace is closed (approving it is
    refused), or ""."""
    workspace = application.workspace
    if workspace is None or workspace.closed_on is None:
        return ""
    return (
        f"{workspace.name} was closed on {day(workspace.closed_on)}: approving it is refused "
        "(W1); support can reopen it, or pick another workspace below."
    )


def contact_note(application) -> str:
    """S1, S4: the reviewer is told when the contact's email is not at the domain of the linked
    workspace's billing email, or "". The public form takes any workspace's slug: a stranger
    can name a customer's workspace, and approving grants the credit to that workspace and
    sends the acceptance, which names it and its credit, to the stranger."""
    workspace = application.workspace
    if workspace is None:
        return ""
    billing_domain = _email_domain(workspace.billing_email)
    if _email_domain(application.contact_email) == billing_domain:
        return ""
    return (
        f"The contact's email, {application.contact_email}, is not at {billing_domain}, the "
        f"domain of {workspace.name}'s billing email: make sure the applicant speaks for this "
        "workspace before approving. The acceptance goes to the contact."
    )


def _email_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def partner_notes(application, as_of: date) -> list[str]:
    """C7: what the reviewer must know of the partner before approving: a linked partner that
    is not active gives the program's amount; a partner the applicant named but nobody linked
    gives nothing (walk 7: an active partner's $50,000.00 became the program's $25,000.00)."""
    linked = AcceleratorPartner.objects.filter(pk=application.partner_id).first()
    if linked is not None:
        if linked.status == AcceleratorPartner.Status.ACTIVE:
            return []
        return [
            f"The linked partner {linked.name} is {linked.get_status_display().lower()}: its own "
            "coupon and amount do not apply, the program's do (C7)."
        ]
    named = application.partner_name.strip()
    if not named:
        return []
    match = AcceleratorPartner.objects.filter(
        name__iexact=named, status=AcceleratorPartner.Status.ACTIVE
    ).first()
    if match is None:
        return [
            f"The applicant named “{named}” as its partner, and no active partner of that name "
            "is linked: the program's amount applies (C7)."
        ]
    with_match = copy(application)
    with_match.partner = match
    amount = year_one_terms(with_match, as_of)[1]
    return [
        f"The applicant named “{named}” as its partner, and no partner is linked: {match.name} "
        f"is an active partner, and linked it would grant {money(amount)}. Link it on the "
        "application's page first if it is theirs (C7)."
    ]


def _startup_coupon_code(partner) -> str:
    """C7: an active partner's own startup-program coupon, else the seeded STARTUP."""
    if partner is None or partner.status != partner.Status.ACTIVE:
        return STARTUP_CODE
    own = partner.coupons.filter(kind=Coupon.Kind.STARTUP_PROGRAM, active=True).first()
    return own.code if own else STARTUP_CODE


def year_one_terms(application, as_of: date) -> tuple[str, Decimal, date, date]:
    """S4, CR1, C7: what approving on `as_of` would grant: the coupon redeemed, year one's
    credit (an active partner's own amount, else the coupon's), and the days it is valid,
    from `as_of` up to (not including) the same date a year later."""
    partner = AcceleratorPartner.objects.filter(pk=application.partner_id).first()
    code = _startup_coupon_code(partner)
    amount = credit_amount_for(Coupon.objects.get(code=code), partner)
    return code, amount, as_of, add_year(as_of)


@transaction.atomic
def approve_application(
    application,
    *,
    by,
    note: str = "",
    override_reason: str = "",
    credits_scope_confirmed: bool = False,
    as_of: date,
) -> StartupApplication:
    """S3, S4: approve in one transaction — the startup-program coupon is redeemed for the
    workspace with its year-one credit grant, the workspace becomes a program member and one
    acceptance email goes out after commit. Every check must pass, or a user allowed to
    override gives a reason; an override of E4 also lifts the coupon's refusal (C2). S7: a
    workspace on annual Team or on Free needs `credits_scope_confirmed`, since credits apply
    to monthly Team invoices only (CR2)."""
    refuse_processed(as_of, "An application decision")
    _take_e5_turns(application)
    application = _locked(application)
    _require_open(application, "approved")
    _refuse_before_submitted(application, as_of, "An approval")
    if application.workspace_id is None:
        raise ApplicationError(
            "Link the applicant's workspace before approving: the credit is granted to a workspace."
        )
    refuse_closed(application.workspace, "Approving the application")
    failing = [check for check in refresh_checks(application) if not check.passed]
    override_reason = override_reason.strip()
    if failing:
        summary = "; ".join(f"{check.id}: {check.reason}" for check in failing)
        if not override_reason:
            raise ApplicationError(
                f"Approval needs every check to pass ({summary}), or an override reason."
            )
        if by is None or not by.has_perm("startups.override_eligibility"):
            raise ApplicationError(f"Checks fail ({summary}) and you may not override them.")
    if problem := partner_date_order_problem(application.partner, as_of, "The approval"):
        raise ApplicationError(problem)
    # The partner as it stands now that its row is held (a decision made meanwhile committed).
    partner = AcceleratorPartner.objects.filter(pk=application.partner_id).first()
    # D4: S7 judges the workspace as the clock leaves it on `as_of` (a trial may have ended).
    advance_workspace(locked_workspace(application.workspace), as_of - timedelta(days=1))
    warning = credits_scope_warning(application, as_of)
    if warning and not credits_scope_confirmed:
        raise ApplicationError(warning + " Confirm to approve anyway.")
    e4_overridden = any(check.id == "E4" for check in failing)
    workspace = application.workspace
    redemption = redeem_coupon(
        workspace,
        _startup_coupon_code(partner),
        by=by,
        as_of=as_of,
        override_reason=override_reason if e4_overridden else "",
        partner=partner,
        reason=f"Startup program application #{application.pk} approved",
    )
    grant = redemption.credit_grants.get(year=1)
    # The row as the redemption left it (its history row records every field as it stands).
    _show_as_member(redemption.workspace, application, by=by)

    application.status = Status.APPROVED
    application.decided_by, application.decided_on = by, as_of
    application.decision_note, application.override_reason = note.strip(), override_reason
    save_with_reason(
        application,
        with_reason("Approved", note) + (f"; override: {override_reason}" if failing else ""),
        by=by,
    )
    _refresh_e5_of_others(application, by=by, why="was approved")
    _email_applicant(
        application,
        "startup_application_accepted",
        grant=grant,
        credits_wait=bool(warning),  # S7: the email says so too
        trial=_running_trial(workspace, as_of),
        deals=list(PartnerDeal.objects.filter(active=True)),
    )
    return application


# --- CR3: year two ---------------------------------------------------------------------------


# CR3: the renewal review opens this many days before the first anniversary.
RENEWAL_NOTICE_DAYS = 30


def open_renewal_reviews(as_of: date) -> dict:
    """CR3, a daily step of the billing clock: 30 days before each member's first anniversary
    a renewal review joins the queue (once), due on the anniversary."""
    due = (
        StartupApplication.objects.filter(
            status=Status.APPROVED,
            decided_on__lte=years_before(as_of + timedelta(days=RENEWAL_NOTICE_DAYS), 1),
        )
        .exclude(renewals__year=2)
        # W1: a closure since the approval lapsed its credit and ended the program, reopened
        # or not: there is no second year to review.
        .filter(~closed_since("decided_on"))
    )
    reviews = [
        RenewalReview(application=application, year=2, due_on=add_year(application.decided_on))
        for application in due.only("pk", "decided_on")
    ]
    RenewalReview.objects.bulk_create(reviews, ignore_conflicts=True)
    # R4: each review opened is kept as the clock's first version, as a row saved one by one
    # would be (ids read back: `ignore_conflicts` returns none).
    opened = RenewalReview.objects.filter(
        application__in=[review.application_id for review in reviews], year=2
    ).exclude(Exists(RenewalReview.history.filter(id=OuterRef("pk"))))
    record_history(
        RenewalReview,
        [
            (pk, f"Opened {day(as_of)}: year one's anniversary is near (CR3)")
            for pk in opened.values_list("pk", flat=True)
        ],
        kind="+",
    )
    return {"renewal_reviews_opened": len(reviews)} if reviews else {}


def update_memberships(as_of: date) -> dict:
    """S4, a daily step of the billing clock: the workspace's program badge follows its grants:
    on while one is valid (CR1, CR3), off the day the last one ends. Set-based."""
    valid = CreditGrant.objects.valid_on(as_of).filter(workspace=OuterRef("pk"))
    changes = {}
    for member, workspaces in (
        (False, Workspace.objects.filter(startup_member=True).exclude(Exists(valid))),
        (True, Workspace.objects.filter(startup_member=False).filter(Exists(valid))),
    ):
        rows = list(workspaces)
        for workspace in rows:
            workspace.startup_member = member
        bulk_update_with_history(
            rows,
            Workspace,
            ["startup_member"],
            batch_size=2_000,
            default_change_reason=(
                "Startup program credit valid" if member else "Startup program ended (S4)"
            ),
        )
        if rows:
            changes["members_joined" if member else "members_left"] = len(rows)
    return changes


def renewal_refusal(review) -> str | None:
    """Why year two cannot be confirmed whatever the figures, or None: a closure since the
    approval ended the program and lapsed its credit (W1), reopened since or not."""
    application = review.application
    closed_on = first_closure_since(application.workspace_id, application.decided_on)
    if closed_on is None:
        return None
    return (
        f"Year two is refused: {application.workspace} was closed on {day(closed_on)}, which "
        "ended its program and lapsed its credit (W1). Decline this renewal instead."
    )


@transaction.atomic
def confirm_renewal(
    review, *, by, total_funding, country: str, as_of: date, note: str = ""
) -> RenewalReview:
    """CR3: the reviewer confirms E2 and E3 with the startup's current figures; year two's
    grant follows (of the partner's amount where there is one). Never a third year. `note`:
    what the reviewer checked, kept with the decision."""
    refuse_processed(as_of, "A renewal decision")
    review = (
        RenewalReview.objects.select_for_update().select_related("application").get(pk=review.pk)
    )
    if review.status != RenewalReview.Status.PENDING:
        raise ApplicationError(f"This renewal was already {review.get_status_display().lower()}.")
    application = review.application
    if refusal := renewal_refusal(review):
        raise ApplicationError(refusal)
    valid_from, year_two_ends = year_two_validity(review, as_of)
    if as_of >= year_two_ends:
        raise ApplicationError(
            f"Year two ended on {year_two_ends}: there is no year left to credit (never a third "
            "year). Decline this renewal instead."
        )
    problems = []
    total_funding = parse_funding(total_funding, problems)
    country = str(country or "").strip().upper()  # as the forms and `decline_renewal` read it
    if country not in countries:
        problems.append(f"“{country}” is not an ISO 3166-1 country code.")
    refuse_problems(problems, ApplicationError)
    funding = eligibility.check_funding(total_funding)
    territory = eligibility.check_territory(country)
    failing = [check for check in (funding, territory) if not check.passed]
    if failing:
        raise ApplicationError(
            "Year two needs E2 and E3 to pass: " + "; ".join(c.reason for c in failing) + "."
        )
    year_one_partner = application.workspace.credit_grants.get(year=1).partner
    if problem := partner_date_order_problem(year_one_partner, as_of, "Year two's confirmation"):
        raise ApplicationError(problem)
    grant_credits(
        application.workspace,
        amount=credit_amount_for_year_two(application),
        as_of=as_of,
        year=2,
        by=by,
        # Invoices issued before the confirmation are not credited again (CR3).
        valid_from=valid_from,
        valid_until=year_two_ends,
        partner=application.partner,
        reason=f"Startup program year two (application #{application.pk})",
    )
    if valid_from <= as_of:  # S4: year one ended before; the badge comes back today
        _show_as_member(Workspace.objects.get(pk=application.workspace_id), application, by=by)
    review.status = RenewalReview.Status.CONFIRMED
    review.total_funding, review.country = total_funding, country
    review.decided_by, review.decided_on, review.note = by, as_of, note.strip()
    save_with_reason(review, with_reason("Confirmed: E2 and E3 pass", note), by=by)
    return review


def _show_as_member(workspace, application, *, by) -> None:
    """S4: the badge the workspace list and campaigns read, on from the day a grant is valid
    (the clock's daily step would set it the next time it runs)."""
    if workspace.startup_member:
        return
    workspace.startup_member = True
    save_with_reason(
        workspace,
        f"Startup program member (application #{application.pk})",
        by=by,
        fields=["startup_member"],
    )


def year_two_validity(review, as_of: date) -> tuple[date, date]:
    """CR3: when year two's grant runs if it is confirmed on `as_of`: from the later of the
    anniversary and the confirmation, up to (not including) the second anniversary."""
    return max(review.due_on, as_of), add_year(review.due_on)


def credit_amount_for_year_two(application) -> Decimal:
    """CR1, C7: the program's yearly credit, or its partner's while the partner is active (a
    partner deactivated since year one no longer sets new grants' amount)."""
    year_one = application.workspace.credit_grants.select_related("redemption__coupon").get(year=1)
    if year_one.redemption is None:  # granted by hand: the same again
        return year_one.amount
    return credit_amount_for(year_one.redemption.coupon, year_one.partner)


@transaction.atomic
def decline_renewal(
    review, *, by, note: str, as_of: date, total_funding=None, country: str = ""
) -> RenewalReview:
    """CR3: year two declined, with why; the startup's figures the reviewer checked, when
    given, are kept with the decision as a confirmation keeps them (R4)."""
    refuse_processed(as_of, "A renewal decision")
    note = require_reason(note, "Say why year two is declined.", error=ApplicationError)
    problems = []
    funding = parse_funding(total_funding, problems) if total_funding not in (None, "") else None
    country = str(country or "").strip().upper()
    if country and country not in countries:
        problems.append(f"“{country}” is not an ISO 3166-1 country code.")
    refuse_problems(problems, ApplicationError)
    review = RenewalReview.objects.select_for_update().get(pk=review.pk)
    if review.status != RenewalReview.Status.PENDING:
        raise ApplicationError(f"This renewal was already {review.get_status_display().lower()}.")
    review.status = RenewalReview.Status.DECLINED
    review.total_funding, review.country = funding, country
    review.decided_by, review.decided_on, review.note = by, as_of, note
    save_with_reason(review, f"Declined: {note}", by=by)
    return review


@transaction.atomic
def request_deal(application, *, deal: PartnerDeal, as_of: date) -> DealRequest:
    """S6: an accepted startup asks for a partner deal, once per deal, while it is a member
    (S4: on the days a grant of the program is valid)."""
    if application.status != Status.APPROVED:
        raise ApplicationError("Only startups accepted into the program can request partner deals.")
    if not program_member(application.workspace_id, as_of):
        grants = CreditGrant.objects.filter(workspace_id=application.workspace_id)
        if not grants.filter(valid_from__lte=as_of).exists():
            starts = min((grant.valid_from for grant in grants), default=as_of)
            raise ApplicationError(
                f"{application.company_name} is a program member from {day(starts)}: a partner "
                f"deal requested on {day(as_of)} is before it."
            )
        ended = max(
            (
                min(grant.valid_until, grant.lapsed_on or grant.valid_until)
                for grant in grants.filter(valid_from__lte=as_of)
            ),
        )
        raise ApplicationError(
            f"The startup program of {application.company_name} ended on {day(ended)}: only "
            "current members can request partner deals."
        )
    if not deal.active:
        raise ApplicationError(f"The deal “{deal}” is no longer offered.")
    request, created = DealRequest.objects.get_or_create(
        application=application, deal=deal, defaults={"requested_on": as_of}
    )
    if not created:
        raise ApplicationError(f"{application.company_name} already requested “{deal}”.")
    return request


@transaction.atomic
def decide_deal_request(request: DealRequest, *, by, fulfil: bool, as_of: date, note: str = ""):
    """S6: staff mark a request fulfilled or declined, once; a decline says why (R4)."""
    request = DealRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != DealRequest.Status.REQUESTED:
        raise ApplicationError(f"This request was already {request.get_status_display().lower()}.")
    refuse_dated_before(
        as_of, request.requested_on, "A decision", "the request was made", error=ApplicationError
    )
    if not fulfil:
        note = require_reason(
            note, "Say why the request is declined: the reason is kept.", error=ApplicationError
        )
    request.status = DealRequest.Status.FULFILLED if fulfil else DealRequest.Status.DECLINED
    request.decided_by, request.decided_on, request.note = by, as_of, note
    save_with_reason(request, with_reason(request.get_status_display(), note), by=by)
    return request


@transaction.atomic
def link_application(
    application, *, by, workspace, partner, as_of: date, reason: str
) -> StartupApplication:
    """S1, C7: a reviewer links an open application to its workspace and its accelerator or
    VC partner; the checks are evaluated again (S2: E4 and E5 depend on the workspace). R4:
    the why is required and kept."""
    reason = require_reason(
        reason, "Say why the links change: the reason is kept.", error=ApplicationError
    )
    _take_e5_turns(application, moving_to=workspace.pk if workspace else None)
    application = _locked(application)
    _require_open(application, "linked")
    moved_from = application.workspace_id
    changes = []
    if workspace != application.workspace:
        application.workspace = workspace
        changes.append(f"workspace {workspace.slug if workspace else 'none'}")
    if partner != application.partner:
        application.partner = partner
        if partner is not None:
            application.partner_name = partner.name
        changes.append(f"partner {partner.name if partner else 'none'}")
    if not changes:
        return application
    refresh_checks(application)
    save_with_reason(application, f"Linked: {', '.join(changes)}: {reason}", by=by)
    _refresh_e5_of_others(application, by=by, why="was linked", moved_from=moved_from)
    return application


@transaction.atomic
def set_territory(country: str, *, active: bool, by, reason: str) -> EligibleTerritory:
    """E3: open or close the program in a country (configurable list), with why (R4: it
    decides E3 for every open application from there). Setting what stands already is refused:
    it would keep a change that changed nothing."""
    reason = require_reason(
        reason,
        "Say why the program opens or closes there: the reason is kept.",
        error=ApplicationError,
    )
    code = str(country).upper()
    if code not in countries:
        raise ApplicationError(f"“{country}” is not an ISO 3166-1 country code.")
    # A country never listed has no row to lock: two reviewers opening it at once take turns.
    take_turns("territory", code)
    territory = EligibleTerritory.objects.select_for_update().filter(country=code).first()
    if territory is not None and territory.active == bool(active):
        state = "open" if territory.active else "closed"
        raise ApplicationError(f"The program is already {state} in {countries.name(code)}.")
    territory = territory or EligibleTerritory(country=code)
    territory.active = bool(active)
    text = "Program open" if territory.active else "Program closed"
    save_with_reason(territory, with_reason(text, reason), by=by)
    # S2: the queue and its filters read the stored checks: E3 of the open applications from
    # there changes with it.
    waiting = StartupApplication.objects.open().filter(country=code).order_by("pk")
    why = f"Checks evaluated again: {text.lower()} in {countries.name(code)}"
    for application in waiting.select_for_update():
        _store_checks_again(application, why, by=by)
    return territory


@transaction.atomic
def save_partner_deal(
    deal: PartnerDeal | None, *, by, company: str, title: str, description: str, active: bool
) -> PartnerDeal:
    """S6: add an offer to the partner-deal catalogue, or edit one."""
    problems = []
    company = check_name(company, "company", problems)
    title = check_name(title, "title", problems)
    refuse_problems(problems, ApplicationError)
    if deal is None:
        deal = PartnerDeal()
    else:
        deal = PartnerDeal.objects.select_for_update().get(pk=deal.pk)
    deal.company, deal.title, deal.description, deal.active = company, title, description, active
    save_with_reason(deal, "Catalogue entry saved", by=by)
    return deal
