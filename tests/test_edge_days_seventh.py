"""A seventh set of edge days, on D4 alone: the billing clock run day by day from a start date
must give the same invoices, locks, emails, ledgers, statuses and redemptions as one run at the
end. In the catch-up run every change is entered before the clock has run at all: a clock that
never ran refuses nothing (D2), so each change below is "history being entered" ahead of the
closes, trial ends, term ends, run-outs and lapses the clock then applies. Each test works its
figures by hand from SPEC (in its docstring and comments) and compares both runs with them:

- F1–F7 with a move to Team entered ahead of two closes, a trial cancelled (T5) or ended
  without a card (T4) ahead of the next close, a move on the close's own day cancelled in its
  trial, an unlock by hand (F5), a closure and a reopening (W1), a paid move (no trial) kept.
- CR1–CR3, S4, I3 with a void of a credited final invoice, a closure lapsing a member's credit
  (and its renewal review, CR3), a grant running out and lapsing, an approval mid-month.
- C5 with a `once` coupon removed ahead of the close that uses it, a follow-up removed and
  another coupon redeemed, a `forever` coupon ended by a closure.
- K2, K4 with an annual cancellation and its withdrawal, annual → monthly at the term's end.
- T4, T6 with cards removed and added ahead, a closure after the reminder day.
- X2, X4 with a certificate approved and a rate set ahead; U1 with usage replaced.
- I1: the numbers of a final invoice entered ahead and of the close before it.
"""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.files.base import ContentFile

from billing import services
from billing.demo import certificate_pdf
from billing.errors import BillingError
from billing.models import Invoice, Strike, TaxExemption
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import CreditGrant, Redemption
from startups import services as startups
from startups.models import RenewalReview
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.scenarios.figures import bills, ledger, locks, subjects
from tests.scenarios.workspaces import new, paid, ws_

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


# --- What both runs read back -------------------------------------------------------------------


def struck_free(slug="up"):
    """Free with a card from 1 December 2026; 2,000 MTUs in January 2027: a strike at January's
    close on 1 February 2027, and `locked` (F1, F2)."""
    ws = new(slug, date(2026, 12, 1), card=True)
    services.record_usage(ws, month=date(2027, 1, 1), mtus=2_000)
    return ws


def status(slug, *days, keys=("plan", "trialing", "lock", "data_flow")):
    """D3: `workspace_status` on each day, the keys asked."""
    return {day: tuple(workspace_status(ws_(slug), as_of=day)[k] for k in keys) for day in days}


def letters():
    """Every email in full (recipient, subject, text), sorted: their content too."""
    return sorted((m.to[0], m.subject, m.body) for m in mail.outbox)


def redemptions(slug):
    """(code, redeemed on, status, ended on), oldest first."""
    return [
        (r.coupon.code, r.redeemed_on, r.status, r.ended_on)
        for r in Redemption.objects.filter(workspace__slug=slug).order_by("redeemed_on", "id")
    ]


def ledgers(slug):
    return [ledger(g) for g in CreditGrant.objects.filter(workspace__slug=slug).order_by("id")]


def short(slug):
    """(kind, issue date, period start, period end, subtotal, discount, credits, total)."""
    return [(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[8]) for b in bills(ws_(slug))]


def both_ways(capture, start, end, actions, read, *, before=None):
    """D4: `before()` (the workspaces as they were when the clock starts), then `actions(day)`
    from `start` through `end`, the clock run each day; then the same with one run at the end
    (every action entered before the clock runs at all). A change refused is kept as (day,
    message) under "refused". Returns (daily, catch-up), each `read()` with the refusals."""
    refused = []

    def act(day):
        try:
            actions(day)
        except BillingError as exc:
            refused.append((day, str(exc)))

    def run(daily):
        refused.clear()
        if before:
            with capture(execute=True):
                before()
        run_days(start, end, daily=daily, capture=capture, actions=act)
        return {**read(), "refused": list(refused), "letters": letters()}

    return daily_and_catch_up(run)


def check(outcomes, expected, *, texts=True):
    """Each run against the hand-worked figures, the daily run first; then the two runs, email
    text included unless `texts` is False (an email naming an invoice number, which the
    numbering test below shows to differ)."""
    daily, catch_up = outcomes
    for name, outcome in (("daily", daily), ("catch-up", catch_up)):
        got = {key: outcome[key] for key in expected}
        assert got == expected, name
    if not texts:
        daily, catch_up = ({k: v for k, v in o.items() if k != "letters"} for o in outcomes)
    assert daily == catch_up


NOT_LOCKED, LOCKED, STOPPED = "unlocked", "locked", "locked_data_stopped"
LOCKED_SUBJECT, STOPPED_SUBJECT = "Up is locked", "Up is locked and data has stopped"
UNLOCKED_SUBJECT = "Up is unlocked"


# --- F: locks against changes entered ahead of the closes ---------------------------------------


def test_f2_f4_d4_a_move_to_team_entered_ahead_of_two_closes_is_lifted_once(
    db, django_capture_on_commit_callbacks
):
    """Free with a card from 1 December 2026; 2,000 MTUs in January and in February 2027.
    January's close (1 February): one strike in six months → `locked` (F1, F2). February's
    close (1 March): two strikes → `locked_data_stopped`. Moved to Team on 15 March: a trial
    (T1), which lifts the lock at once (F4): one unlock, from `locked_data_stopped`. Trial
    15–28 March, end date 29 March, card on file: paid monthly from then (T4), the unlock kept
    (F7). March's invoice (1 April): 29–31 March, 120 × 3/31 = 11.6129… → 11.61, no overage
    (a trial month, M3).

    Emails (F6): locked, locked and data stopped, unlocked, trial converted: four.
    Status: 5 March Free, `locked_data_stopped`, no data flow; 20 March Team, trialing,
    unlocked.

    The catch-up run (a bug, fixed): the move was entered before either close ran; each close
    lifted the lock for a move dated after it, so 15 March got two unlock events and two
    emails. The clock now lifts it on the move's own day
    (`billing.subscriptions.locks_for_changes_entered_ahead`)."""

    def before():
        ws = struck_free()
        services.record_usage(ws, month=date(2027, 2, 1), mtus=2_000)

    def actions(day):
        if day == date(2027, 3, 15):
            services.change_to_team(ws_("up"), as_of=day)

    def read():
        return {
            "locks": locks("up"),
            "bills": short("up"),
            "subjects": subjects(),
            "status": status("up", date(2027, 3, 5), date(2027, 3, 20)),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 4, 2),
        actions,
        read,
        before=before,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 3, 1), LOCKED, STOPPED, "free_limit"),
                (date(2027, 3, 15), STOPPED, NOT_LOCKED, "moved_to_team"),
            ],
            "bills": [
                (
                    "monthly",
                    date(2027, 4, 1),
                    date(2027, 3, 29),
                    date(2027, 4, 1),
                    D("11.61"),
                    D("0.00"),
                    D("0.00"),
                    D("11.61"),
                ),
            ],  # fmt: skip
            "subjects": sorted(
                [LOCKED_SUBJECT, STOPPED_SUBJECT, UNLOCKED_SUBJECT, "Up is now on Team"]
            ),
            "status": {
                date(2027, 3, 5): ("free", False, STOPPED, False),
                date(2027, 3, 20): ("team", True, NOT_LOCKED, True),
            },
        },
    )


def test_f7_f3_d4_a_trial_cancelled_after_the_next_close_puts_the_lock_back_after_it(
    db, django_capture_on_commit_callbacks
):
    """`locked` at January's close (1 February 2027, F1, F2). Moved to Team on 20 February: a
    trial 20 February – 5 March, end date 6 March; F4 unlocks. February had Team days: no
    strike (F1); February's close (1 March) finds it unlocked: nothing to do (F3). Cancelled
    on 3 March, during the trial (T5): nothing billed, and F7 puts back the lock it lifted,
    `locked`, "trial ended before paying", with its email. March had Team days (1–2 March):
    no strike; March's close (1 April) unlocks it (F3).

    Locks: 1 Feb locked, 20 Feb unlocked (moved to Team), 3 Mar locked (trial not paid),
    1 Apr unlocked (no strike). Emails: two locked, two unlocked. Status: 2 March Team,
    trialing, unlocked; 20 March Free, locked; 5 April Free, unlocked.

    The catch-up run (a bug, fixed): the close of 1 February put the lock back on 3 March at
    once, before February's close ran; that close then found it `locked` without a strike and
    unlocked it on 1 March (F3), and 5 April read `locked`. The clock now puts it back on
    3 March itself."""

    def actions(day):
        if day == date(2027, 2, 20):
            services.change_to_team(ws_("up"), as_of=day)
        if day == date(2027, 3, 3):
            services.change_to_free(ws_("up"), as_of=day)

    def read():
        return {
            "locks": locks("up"),
            "bills": short("up"),
            "subjects": subjects(),
            "status": status(
                "up", date(2027, 3, 2), date(2027, 3, 20), date(2027, 4, 5), keys=("plan", "lock")
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 4, 5),
        actions,
        read,
        before=struck_free,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 2, 20), LOCKED, NOT_LOCKED, "moved_to_team"),
                (date(2027, 3, 3), NOT_LOCKED, LOCKED, "trial_not_paid"),
                (date(2027, 4, 1), LOCKED, NOT_LOCKED, "under_limit"),
            ],
            "bills": [],
            "subjects": sorted([LOCKED_SUBJECT] * 2 + [UNLOCKED_SUBJECT] * 2),
            "status": {
                date(2027, 3, 2): ("team", NOT_LOCKED),
                date(2027, 3, 20): ("free", LOCKED),
                date(2027, 4, 5): ("free", NOT_LOCKED),
            },
        },
    )


def test_f7_f4_d4_a_move_on_the_closes_day_cancelled_in_its_trial(
    db, django_capture_on_commit_callbacks
):
    """`locked` by January's close on 1 February 2027 (F1, F2), and moved to Team that same
    day: the day's changes are seen by the close (D1), so the close's lock is recorded and
    lifted by the move at once (F4), neither emailed (the lock never stood: pinned as
    tests/test_edge_days_more.py does). Trial 1–14 February; cancelled on 5 February (T5):
    F7 puts the lock back, "trial ended before paying", with its email. February had Team days
    (1–4): no strike; its close (1 March) unlocks (F3), with its email.

    Locks: 1 Feb locked, 1 Feb unlocked (moved), 5 Feb locked (trial not paid), 1 Mar unlocked
    (no strike). Emails: one locked, one unlocked. Status: 3 February Team, unlocked;
    10 February Free, locked; 3 March Free, unlocked.

    The catch-up run (a bug, fixed): the cancellation was entered before the close, when there
    was no lift to undo; the close lifted its own lock for the move of its day but never put it
    back: the workspace stayed unlocked from 1 February, and neither email went."""

    def actions(day):
        if day == date(2027, 2, 1):
            services.change_to_team(ws_("up"), as_of=day)
        if day == date(2027, 2, 5):
            services.change_to_free(ws_("up"), as_of=day)

    def read():
        return {
            "locks": locks("up"),
            "subjects": subjects(),
            "status": status(
                "up", date(2027, 2, 3), date(2027, 2, 10), date(2027, 3, 3), keys=("plan", "lock")
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 3, 5),
        actions,
        read,
        before=struck_free,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 2, 1), LOCKED, NOT_LOCKED, "moved_to_team"),
                (date(2027, 2, 5), NOT_LOCKED, LOCKED, "trial_not_paid"),
                (date(2027, 3, 1), LOCKED, NOT_LOCKED, "under_limit"),
            ],
            "subjects": [LOCKED_SUBJECT, UNLOCKED_SUBJECT],
            "status": {
                date(2027, 2, 3): ("team", NOT_LOCKED),
                date(2027, 2, 10): ("free", LOCKED),
                date(2027, 3, 3): ("free", NOT_LOCKED),
            },
        },
    )


def test_f7_t4_t6_d4_a_move_entered_ahead_ends_without_a_card(
    db, django_capture_on_commit_callbacks
):
    """`locked` at January's close (1 February 2027). Moved to Team on 15 February (trial
    15–28 February, end date 1 March; F4 unlocks); the card removed on 20 February; a card
    added again on 10 March (after the end date, entered ahead of the clock).

    T6: 26 February (three days before 1 March) finds no card: one reminder. February had
    Team days: no strike; February's close (1 March) finds it unlocked. T4 on 1 March, after
    that day's close (no card on file that day): back on Free, "trial ended" email, and F7
    puts back `locked` (trial not paid). March: Free every day, no usage: no strike, March's
    close (1 April) unlocks (F3). Nothing billed (T5).

    Locks: 1 Feb locked, 15 Feb unlocked, 1 Mar locked, 1 Apr unlocked; emails: reminder,
    trial ended, two locked, two unlocked. Status: 5 March Free, locked; 5 April Free,
    unlocked. Both runs agree."""

    def actions(day):
        if day == date(2027, 2, 15):
            services.change_to_team(ws_("up"), as_of=day)
        if day == date(2027, 2, 20):
            services.remove_payment_method(ws_("up"), as_of=day)
        if day == date(2027, 3, 10):
            services.add_payment_method(ws_("up"), as_of=day)

    def read():
        return {
            "locks": locks("up"),
            "bills": short("up"),
            "subjects": subjects(),
            "status": status("up", date(2027, 3, 5), date(2027, 4, 5), keys=("plan", "lock")),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 4, 5),
        actions,
        read,
        before=struck_free,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 2, 15), LOCKED, NOT_LOCKED, "moved_to_team"),
                (date(2027, 3, 1), NOT_LOCKED, LOCKED, "trial_not_paid"),
                (date(2027, 4, 1), LOCKED, NOT_LOCKED, "under_limit"),
            ],
            "bills": [],
            "subjects": sorted(
                [LOCKED_SUBJECT] * 2
                + [UNLOCKED_SUBJECT] * 2
                + ["Your Team trial for Up ends on 1 Mar 2027", "Your Team trial for Up has ended"]
            ),
            "status": {
                date(2027, 3, 5): ("free", LOCKED),
                date(2027, 4, 5): ("free", NOT_LOCKED),
            },
        },
    )


def test_f4_f7_k1_f2_d4_a_paid_move_entered_ahead_keeps_its_unlock(
    db, django_capture_on_commit_callbacks
):
    """Free with a card from 1 December 2026, whose Team trial that day was cancelled at once
    (T5): it had Team, so a later move starts paid (T1). 2,000 MTUs in January 2027: `locked`
    on 1 February (F1, F2). Moved to Team on 10 February, paid at once: F4 unlocks, and a paid
    upgrade keeps it (F7). February's invoice (1 March): 10–28 February, 120 × 19/28 =
    81.428… → 81.43. Cancelled on 20 March (K1): final invoice for 1–19 March, 120 × 19/31 =
    73.548… → 73.55, dated 20 March. 1,500 MTUs in April, Free every day of it: a strike; the
    six months November–April hold January's and April's: `locked_data_stopped` on 1 May (F2).
    February and March had Team days: no strike, and F3 has nothing to unlock.

    Locks: 1 Feb locked, 10 Feb unlocked (moved), 1 May locked and data stopped; three emails.
    Status: 10 April Free, unlocked, data flowing; 5 May locked, data stopped. Both runs."""

    def before():
        ws = struck_free()
        services.change_to_team(ws, as_of=date(2026, 12, 1))
        services.change_to_free(ws, as_of=date(2026, 12, 1))

    def actions(day):
        if day == date(2027, 2, 10):
            services.change_to_team(ws_("up"), as_of=day)
        if day == date(2027, 3, 20):
            services.change_to_free(ws_("up"), as_of=day)
        if day == date(2027, 4, 25):
            services.record_usage(ws_("up"), month=date(2027, 4, 1), mtus=1_500)

    def read():
        return {
            "locks": locks("up"),
            "bills": short("up"),
            "strikes": list(Strike.objects.order_by("month").values_list("month", flat=True)),
            "subjects": subjects(),
            "status": status("up", date(2027, 4, 10), date(2027, 5, 5)),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 5, 5),
        actions,
        read,
        before=before,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 2, 10), LOCKED, NOT_LOCKED, "moved_to_team"),
                (date(2027, 5, 1), NOT_LOCKED, STOPPED, "free_limit"),
            ],
            "bills": [
                (
                    "monthly",
                    date(2027, 3, 1),
                    date(2027, 2, 10),
                    date(2027, 3, 1),
                    D("81.43"),
                    D("0.00"),
                    D("0.00"),
                    D("81.43"),
                ),
                (
                    "final",
                    date(2027, 3, 20),
                    date(2027, 3, 1),
                    date(2027, 3, 20),
                    D("73.55"),
                    D("0.00"),
                    D("0.00"),
                    D("73.55"),
                ),
            ],  # fmt: skip
            "strikes": [date(2027, 1, 1), date(2027, 4, 1)],
            "subjects": sorted([LOCKED_SUBJECT, STOPPED_SUBJECT, UNLOCKED_SUBJECT]),
            "status": {
                date(2027, 4, 10): ("free", False, NOT_LOCKED, True),
                date(2027, 5, 5): ("free", False, STOPPED, False),
            },
        },
    )


@pytest.mark.xfail(
    strict=True,
    reason="BUG: an unlock by hand entered ahead of the close that locks is refused "
    "('not locked') and the lock stands",
)
def test_f5_d4_an_unlock_by_hand_entered_ahead_of_the_close_that_locks(
    db, django_capture_on_commit_callbacks, support
):
    """`locked` at January's close (1 February 2027, F1, F2). Support unlocks it by hand on
    10 February, with a reason (F5). February: Free, no usage: no strike; February's close
    (1 March) finds it unlocked.

    Locks: 1 Feb locked, 10 Feb unlocked (manual); emails: locked, unlocked; nothing refused.
    Status: 5 February locked; 20 February unlocked.

    The catch-up run: on 10 February, entered before the clock ran, the workspace was not
    locked yet: the unlock is refused ("Up is not locked."), the close's lock stands until
    February's close lifts it on 1 March, and 20 February reads `locked`."""

    def actions(day):
        if day == date(2027, 2, 10):
            services.unlock_workspace(ws_("up"), by=support, reason="Goodwill", as_of=day)

    def read():
        return {
            "locks": locks("up"),
            "subjects": subjects(),
            "status": status("up", date(2027, 2, 5), date(2027, 2, 20), keys=("lock",)),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 3, 5),
        actions,
        read,
        before=struck_free,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 2, 10), LOCKED, NOT_LOCKED, "manual"),
            ],
            "subjects": [LOCKED_SUBJECT, UNLOCKED_SUBJECT],
            "status": {date(2027, 2, 5): (LOCKED,), date(2027, 2, 20): (NOT_LOCKED,)},
            "refused": [],
        },
    )


def test_w1_f3_d4_a_closure_and_reopening_entered_ahead_of_the_close_that_locks(
    db, django_capture_on_commit_callbacks, support
):
    """`locked` at January's close (1 February 2027). Closed on 10 February (W1: data stops,
    one email; the lock is kept), reopened on 20 February: on Free, unlocked, data flowing
    (W1), cause "reopened", with its email. February: no usage, no strike.

    Locks: 1 Feb locked, 20 Feb unlocked (reopened); emails: closed, locked, unlocked.
    Status: 15 February locked, no data flow; 25 February unlocked, data flowing.

    The catch-up run (a bug, fixed): the reopening was entered when no lock stood, so it
    lifted none; the close then locked on 1 February and the lock stood until 1 March (F3).
    The clock now unlocks on the reopening's day."""

    def actions(day):
        if day == date(2027, 2, 10):
            services.close_workspace(ws_("up"), by=support, reason="Asked", as_of=day)
        if day == date(2027, 2, 20):
            services.reopen_workspace(ws_("up"), by=support, reason="Came back", as_of=day)

    def read():
        return {
            "locks": locks("up"),
            "subjects": subjects(),
            "status": status(
                "up", date(2027, 2, 15), date(2027, 2, 25), keys=("lock", "data_flow")
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 3, 5),
        actions,
        read,
        before=struck_free,
    )
    check(
        outcomes,
        {
            "locks": [
                (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
                (date(2027, 2, 20), LOCKED, NOT_LOCKED, "reopened"),
            ],
            "subjects": sorted(["Up is closed", LOCKED_SUBJECT, UNLOCKED_SUBJECT]),
            "status": {
                date(2027, 2, 15): (LOCKED, False),
                date(2027, 2, 25): (NOT_LOCKED, True),
            },
        },
    )


def test_f1_u1_m3_d4_usage_replaced_ahead_of_the_close(db, django_capture_on_commit_callbacks):
    """U1: a new report for a month replaces the old one, the close reads the last.
    `free` (Free from 1 January 2027) reports 1,500 MTUs for January on 20 January, replaced by
    900 on 31 January: no strike (F1: over 1,000 only), no lock. `team` (paid monthly from
    1 January) reports 14,000 on 10 January, replaced by 12,500 on 31 January: January's
    invoice (1 February) 120.00 + 2,500 × 0.01 = 25.00 → 145.00 (M3). February, no report:
    120.00. Both runs alike, no email."""

    def actions(day):
        if day == date(2027, 1, 1):
            new("free", day)
            paid("team", day)
        if day == date(2027, 1, 10):
            services.record_usage(ws_("team"), month=date(2027, 1, 1), mtus=14_000)
        if day == date(2027, 1, 20):
            services.record_usage(ws_("free"), month=date(2027, 1, 1), mtus=1_500)
        if day == date(2027, 1, 31):
            services.record_usage(ws_("free"), month=date(2027, 1, 1), mtus=900)
            services.record_usage(ws_("team"), month=date(2027, 1, 1), mtus=12_500)

    def read():
        return {
            "strikes": list(Strike.objects.values_list("workspace__slug", "month")),
            "locks": locks("free"),
            "bills": [(b[1], b[4], b[7]) for b in short("team")],
            "subjects": subjects(),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    check(
        outcomes,
        {
            "strikes": [],
            "locks": [],
            "bills": [
                (date(2027, 2, 1), D("145.00"), D("145.00")),
                (date(2027, 3, 1), D("120.00"), D("120.00")),
            ],
            "subjects": [],
        },
    )


# --- CR, S, I3: credit against changes entered ahead --------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a void entered ahead of a close gives its credit back before that close, "
    "which over-draws the grant (balance -0.64)",
)
def test_i3_cr2_d4_a_void_entered_ahead_gives_back_after_the_close_before_it(
    db, django_capture_on_commit_callbacks, support, finance
):
    """Paid monthly from 1 January 2027 with a 100.00 grant from that day (CR1). Cancelled on
    15 January (K1): final invoice for 1–14 January, 120 × 14/31 = 54.193… → 54.19, all
    credited (CR2): 0.00, 45.81 left. Back on Team on 20 January, paid at once (T1): January's
    close (1 February) bills 20–31 January, 120 × 12/31 = 46.451… → 46.45, credited the 45.81
    left: 0.64. The final invoice voided on 10 February (I3): its 54.19 goes back to the grant.
    February's invoice (1 March): 120.00, credited 54.19: 65.81.

    Ledger: +100.00 (1 Jan), −54.19 (15 Jan), −45.81 (1 Feb), +54.19 (10 Feb), −54.19
    (1 Mar). Balance (D3): 0.00 on 5 February, 54.19 on 15 February.

    The catch-up run: the void, entered ahead, gives back 54.19 before January's close runs;
    that close draws 46.45 from a balance of 45.81 on its day (0.00 to pay), the balance reads
    −0.64 on 5 February (CR2: never below zero), and February's invoice gets 53.55."""

    def actions(day):
        if day == date(2027, 1, 1):
            paid("up", day)
            coupons.grant_credits(ws_("up"), amount="100.00", as_of=day, year=1, by=support)
        if day == date(2027, 1, 15):
            services.change_to_free(ws_("up"), as_of=day)
        if day == date(2027, 1, 20):
            services.change_to_team(ws_("up"), as_of=day)
        if day == date(2027, 2, 10):
            final = Invoice.objects.get(workspace__slug="up", kind="final")
            services.void_invoice(final, by=finance, reason="Billed in error", as_of=day)

    def read():
        return {
            "bills": [(b[0], b[1], b[4], b[6], b[7]) for b in short("up")],
            "ledger": ledgers("up"),
            "balance": status("up", date(2027, 2, 5), date(2027, 2, 15), keys=("credit_balance",)),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 2), actions, read
    )
    check(
        outcomes,
        {
            "bills": [
                ("final", date(2027, 1, 15), D("54.19"), D("54.19"), D("0.00")),
                ("monthly", date(2027, 2, 1), D("46.45"), D("45.81"), D("0.64")),
                ("monthly", date(2027, 3, 1), D("120.00"), D("54.19"), D("65.81")),
            ],
            "ledger": [
                [
                    ("grant", date(2027, 1, 1), D("100.00")),
                    ("draw", date(2027, 1, 15), D("-54.19")),
                    ("draw", date(2027, 2, 1), D("-45.81")),
                    ("return", date(2027, 2, 10), D("54.19")),
                    ("draw", date(2027, 3, 1), D("-54.19")),
                ]
            ],
            "balance": {date(2027, 2, 5): (D("0.00"),), date(2027, 2, 15): (D("54.19"),)},
        },
    )


def _approve(ws, reviewer, on, name="Lumen"):
    """S1, S4: an application for `ws` submitted and approved on `on`, its contact named alike
    in both runs."""
    app = startups.submit_application(
        f"{name} Data",
        website=f"https://{name.lower()}.example.com",
        contact_name="Ada",
        contact_email=f"ada@{name.lower()}.example.com",
        incorporation_date=date(2025, 6, 1),
        total_funding=D("1500000.00"),
        country="DE",
        workspace=ws,
        as_of=on,
    )
    return startups.approve_application(app, by=reviewer, note="Eligible", as_of=on)


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a closure entered ahead lapses the credit before the year's closes draw it, "
    "and no renewal review opens",
)
def test_w1_cr2_cr3_s4_d4_a_closure_entered_ahead_of_a_members_whole_year(
    db, django_capture_on_commit_callbacks, reviewer, support
):
    """Paid monthly from 1 January 2026; approved into the program on 21 January 2026 (S4):
    25,000.00 valid up to, not including, 21 January 2027 (CR1). Each invoice from 1 February
    2026 through 1 January 2027 (twelve, 120.00 each) is credited in full: 0.00 (CR2).
    CR3: the renewal review opens 30 days before the anniversary, on 22 December 2026, due
    21 January 2027. Closed on 5 January 2027 (W1): final invoice for 1–4 January, 120 × 4/31
    = 15.483… → 15.48, credited; the unused credit lapses that day: 25,000.00 − 12 × 120.00 −
    15.48 = 23,544.52. The review stays in the queue (SPEC is silent on what a closure does to
    an open review; the code keeps it pending and refuses to confirm it).

    Status: 30 December 2026 a member with 25,000.00 − 11 × 120.00 = 23,680.00 left; 10 January
    2027 not a member, 0.00 (W1 lapsed it).

    The catch-up run: the closure, entered before the clock ran the year, lapses 24,984.52 on
    5 January 2027 at once; every close of 2026 then finds nothing left (twelve invoices of
    120.00 to pay), and the review never opens (a closure since the approval)."""

    def actions(day):
        if day == date(2026, 1, 1):
            paid("up", day)
        if day == date(2026, 1, 21):
            _approve(ws_("up"), reviewer, day)
        if day == date(2027, 1, 5):
            services.close_workspace(ws_("up"), by=support, reason="Asked", as_of=day)

    def read():
        return {
            "totals": [(b[1], b[7]) for b in short("up")],
            "ledger": ledgers("up"),
            "reviews": list(RenewalReview.objects.values_list("year", "due_on", "status")),
            "status": status(
                "up",
                date(2026, 12, 30),
                date(2027, 1, 10),
                keys=("startup_member", "credit_balance"),
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2026, 1, 1), date(2027, 2, 2), actions, read
    )
    months = [date(2026, m, 1) for m in range(2, 13)] + [date(2027, 1, 1)]
    check(
        outcomes,
        {
            "totals": [(m, D("0.00")) for m in months] + [(date(2027, 1, 5), D("0.00"))],
            "ledger": [
                [("grant", date(2026, 1, 21), D("25000.00"))]
                + [("draw", m, D("-120.00")) for m in months]
                + [
                    ("draw", date(2027, 1, 5), D("-15.48")),
                    ("lapse", date(2027, 1, 5), D("-23544.52")),
                ]
            ],
            "reviews": [(2, date(2027, 1, 21), "pending")],
            "status": {
                date(2026, 12, 30): (True, D("23680.00")),
                date(2027, 1, 10): (False, D("0.00")),
            },
        },
    )


def test_cr1_cr2_cr3_s4_d4_a_grant_entered_ahead_draws_then_lapses(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2026; a 400.00 grant entered on 15 January, valid up to,
    not including, 15 April 2026 (CR1). Invoices (CR2): January's (1 February) 120.00 credited
    (280.00 left), February's (1 March) 120.00 (160.00 left), March's (1 April) 120.00 (40.00
    left); the year ends on 15 April: 40.00 lapses (CR3); April's invoice (1 May) 120.00 to
    pay. Membership follows the grant (S4): a member on 14 April with 40.00, no longer on
    15 April (0.00). Both runs alike."""

    def actions(day):
        if day == date(2026, 1, 1):
            paid("up", day)
        if day == date(2026, 1, 15):
            coupons.grant_credits(
                ws_("up"),
                amount="400.00",
                as_of=day,
                year=1,
                by=support,
                valid_until=date(2026, 4, 15),
            )

    def read():
        return {
            "totals": [(b[1], b[6], b[7]) for b in short("up")],
            "ledger": ledgers("up"),
            "status": status(
                "up",
                date(2026, 4, 14),
                date(2026, 4, 15),
                keys=("startup_member", "credit_balance"),
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2026, 1, 1), date(2026, 5, 1), actions, read
    )
    check(
        outcomes,
        {
            "totals": [
                (date(2026, 2, 1), D("120.00"), D("0.00")),
                (date(2026, 3, 1), D("120.00"), D("0.00")),
                (date(2026, 4, 1), D("120.00"), D("0.00")),
                (date(2026, 5, 1), D("0.00"), D("120.00")),
            ],
            "ledger": [
                [
                    ("grant", date(2026, 1, 15), D("400.00")),
                    ("draw", date(2026, 2, 1), D("-120.00")),
                    ("draw", date(2026, 3, 1), D("-120.00")),
                    ("draw", date(2026, 4, 1), D("-120.00")),
                    ("lapse", date(2026, 4, 15), D("-40.00")),
                ]
            ],
            "status": {
                date(2026, 4, 14): (True, D("40.00")),
                date(2026, 4, 15): (False, D("0.00")),
            },
        },
    )


def test_s4_cr2_c5_w1_d4_an_approval_and_a_closure_entered_ahead(
    db, django_capture_on_commit_callbacks, support, reviewer
):
    """Two workspaces paid monthly from 1 January 2027.

    - `st`: 15,000 MTUs in January; approved into the program on 5 February (S4, CR1: from
      5 February). January's invoice (1 February) is before the grant: 120.00 + 50.00 =
      170.00 to pay. February's (1 March): 120.00 credited in full, 0.00. Member from
      5 February (not on 1 February), 25,000.00 then and 24,880.00 on 2 March.
    - `up`: 10 % off `forever` from 10 January (C5). January: 120.00 − 12.00 = 108.00.
      Closed on 20 February (W1): final invoice for 1–19 February, 120 × 19/28 = 81.428… →
      81.43, 10 % = 8.143 → 8.14, 73.29; the discount ends that day ("removed").

    Emails: application received, welcome, closure. Both runs alike (but for the number the
    closure email names: see the I1 test below)."""

    def actions(day):
        if day == date(2027, 1, 1):
            paid("up", day)
            paid("st", day)
            coupon(code="TEN", percent_off="10", duration="forever")
            services.record_usage(ws_("st"), month=date(2027, 1, 1), mtus=15_000)
        if day == date(2027, 1, 10):
            coupons.redeem_coupon(ws_("up"), "TEN", by=support, as_of=day)
        if day == date(2027, 2, 5):
            _approve(ws_("st"), reviewer, day)
        if day == date(2027, 2, 20):
            services.close_workspace(ws_("up"), by=support, reason="Asked", as_of=day)

    def read():
        return {
            "st": [(b[1], b[4], b[6], b[7]) for b in short("st")],
            "up": [(b[0], b[1], b[4], b[5], b[7]) for b in short("up")],
            "redemptions": redemptions("up"),
            "member": status(
                "st",
                date(2027, 2, 1),
                date(2027, 2, 5),
                date(2027, 3, 2),
                keys=("startup_member", "credit_balance"),
            ),
            "subjects": subjects(),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 2), actions, read
    )
    check(
        outcomes,
        {
            "st": [
                (date(2027, 2, 1), D("170.00"), D("0.00"), D("170.00")),
                (date(2027, 3, 1), D("120.00"), D("120.00"), D("0.00")),
            ],
            "up": [
                ("monthly", date(2027, 2, 1), D("120.00"), D("12.00"), D("108.00")),
                ("final", date(2027, 2, 20), D("81.43"), D("8.14"), D("73.29")),
            ],
            "redemptions": [("TEN", date(2027, 1, 10), "removed", date(2027, 2, 20))],
            "member": {
                date(2027, 2, 1): (False, D("0.00")),
                date(2027, 2, 5): (True, D("25000.00")),
                date(2027, 3, 2): (True, D("24880.00")),
            },
            "subjects": sorted(
                [
                    "Up is closed",
                    "We received your Startup Program application #1",
                    "Welcome to the Startup Program, Lumen Data",
                ]
            ),
        },
        texts=False,
    )


# --- C5: coupons against changes entered ahead --------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a once coupon removed ahead of the close that uses it is accepted and reads "
    "'removed' on the removal's day, not 'ended' on the invoice's",
)
def test_c5_d4_a_once_coupon_removed_ahead_of_the_close_that_uses_it(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2027; 25 % off `once` redeemed on 10 January (C5: the first
    invoice dated on or after it). January's invoice (1 February): 120.00 − 30.00 = 90.00; the
    coupon is used up that day ("ended" on 1 February). February's (1 March): 120.00.
    Support's removal dated 10 February finds no active discount and is refused.

    The catch-up run: entered before the clock ran, the removal finds the coupon not used yet
    and removes it: the invoices are the same, but the redemption reads "removed" on
    10 February, and the removal that the daily run refused was accepted."""

    def actions(day):
        if day == date(2027, 1, 1):
            paid("up", day)
            coupon(code="ONCE25", percent_off="25", duration="once")
        if day == date(2027, 1, 10):
            coupons.redeem_coupon(ws_("up"), "ONCE25", by=support, as_of=day)
        if day == date(2027, 2, 10):
            coupons.remove_discount(ws_("up"), by=support, reason="Goodwill over", as_of=day)

    def read():
        return {
            "bills": [(b[1], b[5], b[7]) for b in short("up")],
            "redemptions": redemptions("up"),
            "refused": None,
        }

    daily, catch_up = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 2), actions, read
    )
    for name, outcome in (("daily", daily), ("catch-up", catch_up)):
        assert outcome["bills"] == [
            (date(2027, 2, 1), D("30.00"), D("90.00")),
            (date(2027, 3, 1), D("0.00"), D("120.00")),
        ], name
        assert outcome["redemptions"] == [
            ("ONCE25", date(2027, 1, 10), "ended", date(2027, 2, 1))
        ], name
        assert outcome["refused"] == [
            (date(2027, 2, 10), "Up has no active discount to remove.")
        ], name


def test_c5_c2_d4_a_follow_up_removed_and_another_coupon_entered_ahead(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2027. `HALF`: 50 % off `repeating` 1 month, follow-up
    `TENFOREVER` (10 % off `forever`), redeemed 5 January. January's invoice (1 February):
    120.00 − 60.00 = 60.00; `HALF` runs out on 1 February and the system applies its follow-up
    that day (C5). Support removes it on 15 February (C5: "until removed"); `ONCE25` (25 % off
    `once`) redeemed on 20 February is then the only discount (C2): February's invoice
    (1 March) 120.00 − 30.00 = 90.00; March's 120.00. Both runs alike."""

    def actions(day):
        if day == date(2027, 1, 1):
            paid("up", day)
            then = coupon(code="TENFOREVER", percent_off="10", duration="forever")
            coupon(
                code="HALF",
                percent_off="50",
                duration="repeating",
                duration_months=1,
                follow_up=then,
            )
            coupon(code="ONCE25", percent_off="25", duration="once")
        if day == date(2027, 1, 5):
            coupons.redeem_coupon(ws_("up"), "HALF", by=support, as_of=day)
        if day == date(2027, 2, 15):
            coupons.remove_discount(ws_("up"), by=support, reason="Asked", as_of=day)
        if day == date(2027, 2, 20):
            coupons.redeem_coupon(ws_("up"), "ONCE25", by=support, as_of=day)

    def read():
        return {
            "bills": [(b[1], b[5], b[7]) for b in short("up")],
            "redemptions": redemptions("up"),
            "refused": None,
        }

    daily, catch_up = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 4, 1), actions, read
    )
    assert daily == catch_up
    assert daily["bills"] == [
        (date(2027, 2, 1), D("60.00"), D("60.00")),
        (date(2027, 3, 1), D("30.00"), D("90.00")),
        (date(2027, 4, 1), D("0.00"), D("120.00")),
    ]
    assert daily["redemptions"] == [
        ("HALF", date(2027, 1, 5), "ended", date(2027, 2, 1)),
        ("TENFOREVER", date(2027, 2, 1), "removed", date(2027, 2, 15)),
        ("ONCE25", date(2027, 2, 20), "ended", date(2027, 3, 1)),
    ]
    assert daily["refused"] == []


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a final invoice entered ahead of an unrun close takes the number before that "
    "close's invoice, so the two runs number (and email) them differently",
)
def test_i1_w1_c5_d4_a_closure_entered_ahead_numbers_its_final_invoice_after_the_close(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2027; 50 % off `repeating` 1 month redeemed 10 January,
    follow-up 20 % off `once` (C5). January's invoice (1 February): 120.00 − 60.00 = 60.00,
    the first of 2027: INV-2027-000001. The follow-up is applied by the system on 1 February.
    12,000 MTUs in February; closed on 20 February (W1, K1): final invoice for 1–19 February,
    120 × 19/28 = 81.428… → 81.43 + 2,000 × 0.01 = 20.00 → 101.43; the follow-up's 20 % =
    20.286 → 20.29; 81.14, the next number, INV-2027-000002, named in the closure email.

    The catch-up run: the closure, entered before the clock ran, issues its final invoice
    first: INV-2027-000001 dated 20 February, then January's close INV-2027-000002 dated
    1 February (I1: numbers given when issued, D4: the same invoices either way)."""

    def actions(day):
        if day == date(2027, 1, 1):
            paid("up", day)
            then = coupon(code="THEN20", percent_off="20", duration="once")
            coupon(
                code="HALF",
                percent_off="50",
                duration="repeating",
                duration_months=1,
                follow_up=then,
            )
        if day == date(2027, 1, 10):
            coupons.redeem_coupon(ws_("up"), "HALF", by=support, as_of=day)
        if day == date(2027, 2, 10):
            services.record_usage(ws_("up"), month=date(2027, 2, 1), mtus=12_000)
        if day == date(2027, 2, 20):
            services.close_workspace(ws_("up"), by=support, reason="Asked", as_of=day)

    def read():
        return {
            "bills": [(b[0], b[1], b[4], b[5], b[7]) for b in short("up")],
            "redemptions": redemptions("up"),
            "numbers": list(
                Invoice.objects.order_by("issue_date").values_list("number", "issue_date")
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 2), actions, read
    )
    for outcome in outcomes:
        assert outcome["bills"] == [
            ("monthly", date(2027, 2, 1), D("120.00"), D("60.00"), D("60.00")),
            ("final", date(2027, 2, 20), D("101.43"), D("20.29"), D("81.14")),
        ]
        assert outcome["redemptions"] == [
            ("HALF", date(2027, 1, 10), "ended", date(2027, 2, 1)),
            ("THEN20", date(2027, 2, 1), "ended", date(2027, 2, 20)),
        ]
    check(
        outcomes,
        {
            "numbers": [
                ("INV-2027-000001", date(2027, 2, 1)),
                ("INV-2027-000002", date(2027, 2, 20)),
            ]
        },
    )


# --- K2, K4: annual terms against changes entered ahead -----------------------------------------


def test_k2_d3_d4_an_annual_cancellation_and_its_withdrawal_entered_ahead(
    db, django_capture_on_commit_callbacks
):
    """Annual Team from 15 March 2026 (1,440.00, term to 15 March 2027, K2). Cancelled on
    1 February 2027 (to end at the term's end), withdrawn on 20 February (a move to annual Team
    while the cancelled term runs): the term renews on 15 March 2027, 1,440.00 again for
    15 March 2027 – 15 March 2028. 13,000 MTUs in March 2027: an overage-only invoice of kind
    `monthly` on 1 April, 3,000 × 0.01 = 30.00 (K2). D3: cancelled on 10 February, not on
    25 February; still on Team (annual) on 20 March. No email. Both runs alike."""

    def before():
        paid("up", date(2026, 3, 15), interval="annual")

    def actions(day):
        if day == date(2027, 2, 1):
            services.change_to_free(ws_("up"), as_of=day)
        if day == date(2027, 2, 20):
            services.change_to_team(ws_("up"), interval="annual", as_of=day)
        if day == date(2027, 3, 10):
            services.record_usage(ws_("up"), month=date(2027, 3, 1), mtus=13_000)

    def read():
        return {
            "bills": short("up"),
            "status": status(
                "up",
                date(2027, 2, 10),
                date(2027, 2, 25),
                date(2027, 3, 20),
                keys=("plan", "interval", "cancel_at_term_end", "term_end"),
            ),
            "subjects": subjects(),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 4, 2),
        actions,
        read,
        before=before,
    )
    check(
        outcomes,
        {
            "bills": [
                (
                    "annual",
                    date(2026, 3, 15),
                    date(2026, 3, 15),
                    date(2027, 3, 15),
                    D("1440.00"),
                    D("0.00"),
                    D("0.00"),
                    D("1440.00"),
                ),
                (
                    "annual",
                    date(2027, 3, 15),
                    date(2027, 3, 15),
                    date(2028, 3, 15),
                    D("1440.00"),
                    D("0.00"),
                    D("0.00"),
                    D("1440.00"),
                ),
                (
                    "monthly",
                    date(2027, 4, 1),
                    date(2027, 3, 1),
                    date(2027, 4, 1),
                    D("30.00"),
                    D("0.00"),
                    D("0.00"),
                    D("30.00"),
                ),
            ],  # fmt: skip
            "status": {
                date(2027, 2, 10): ("team", "annual", True, date(2027, 3, 15)),
                date(2027, 2, 25): ("team", "annual", False, date(2027, 3, 15)),
                date(2027, 3, 20): ("team", "annual", False, date(2028, 3, 15)),
            },
            "subjects": [],
        },
    )


def test_k4_k2_c5_d4_annual_to_monthly_and_a_once_coupon_entered_ahead(
    db, django_capture_on_commit_callbacks, support
):
    """Annual Team from 15 March 2026 (term to 15 March 2027). Asked on 10 February 2027 to go
    monthly: K4 applies it at the term's end, monthly from 15 March 2027, no renewal. 12,000
    MTUs in March 2027; 50.00 off `once` redeemed on 2 March.

    March's close (1 April): base for the monthly days 15–31 March, 120 × 17/31 = 65.806… →
    65.81, and March's overage once, 2,000 × 0.01 = 20.00 (M3, K2): 85.81 — SPEC is silent on
    whether a month split between a term and monthly billing bills its overage on one invoice;
    the code bills one invoice of kind `monthly` (pinned). The `once` coupon goes to the first
    invoice dated on or after 2 March, this one (C5): 35.81. April (1 May): 120.00. Both runs
    alike."""

    def before():
        paid("up", date(2026, 3, 15), interval="annual")
        coupon(code="FIFTY", amount_off="50.00", duration="once")

    def actions(day):
        if day == date(2027, 2, 10):
            services.change_interval(ws_("up"), interval="monthly", as_of=day)
        if day == date(2027, 3, 1):
            services.record_usage(ws_("up"), month=date(2027, 3, 1), mtus=12_000)
        if day == date(2027, 3, 2):
            coupons.redeem_coupon(ws_("up"), "FIFTY", by=support, as_of=day)

    def read():
        return {
            "bills": short("up"),
            "redemptions": redemptions("up"),
            "interval": status("up", date(2027, 3, 14), date(2027, 3, 15), keys=("interval",)),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 1),
        date(2027, 5, 2),
        actions,
        read,
        before=before,
    )
    check(
        outcomes,
        {
            "bills": [
                (
                    "annual",
                    date(2026, 3, 15),
                    date(2026, 3, 15),
                    date(2027, 3, 15),
                    D("1440.00"),
                    D("0.00"),
                    D("0.00"),
                    D("1440.00"),
                ),
                (
                    "monthly",
                    date(2027, 4, 1),
                    date(2027, 3, 15),
                    date(2027, 4, 1),
                    D("85.81"),
                    D("50.00"),
                    D("0.00"),
                    D("35.81"),
                ),
                (
                    "monthly",
                    date(2027, 5, 1),
                    date(2027, 4, 1),
                    date(2027, 5, 1),
                    D("120.00"),
                    D("0.00"),
                    D("0.00"),
                    D("120.00"),
                ),
            ],  # fmt: skip
            "redemptions": [("FIFTY", date(2027, 3, 2), "ended", date(2027, 4, 1))],
            "interval": {date(2027, 3, 14): ("annual",), date(2027, 3, 15): ("monthly",)},
        },
    )


# --- T4, T6: trials against changes entered ahead -----------------------------------------------


def test_t6_t4_d4_a_card_removed_after_the_reminder_day_and_added_after_the_end(
    db, django_capture_on_commit_callbacks
):
    """Signed up into Team with a card on 18 January 2027: trial 18–31 January, end date
    1 February (T3). The reminder day, 29 January, finds a card: no reminder then (T6). The
    card removed on 30 January; on 30 January the code sends the reminder (SPEC is silent on a
    card removed after the reminder day but before the end date; "a reminder not sent by the
    end date is not sent at all" lets it go late: pinned). T4 on 1 February: no card that day:
    back on Free, "trial ended" email, nothing billed (T5). A card added on 3 February changes
    nothing. Status: 31 January Team, trialing; 1 February Free. Both runs alike."""

    def actions(day):
        if day == date(2027, 1, 18):
            new("up", day, plan="team", card=True)
        if day == date(2027, 1, 30):
            services.remove_payment_method(ws_("up"), as_of=day)
        if day == date(2027, 2, 3):
            services.add_payment_method(ws_("up"), as_of=day)

    def read():
        return {
            "bills": short("up"),
            "subjects": subjects(),
            "status": status("up", date(2027, 1, 31), date(2027, 2, 1), keys=("plan", "trialing")),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 18), date(2027, 3, 2), actions, read
    )
    check(
        outcomes,
        {
            "bills": [],
            "subjects": [
                "Your Team trial for Up ends on 1 Feb 2027",
                "Your Team trial for Up has ended",
            ],
            "status": {date(2027, 1, 31): ("team", True), date(2027, 2, 1): ("free", False)},
        },
    )


def test_t6_t5_w1_d4_a_cardless_trial_closed_after_its_reminder_day(
    db, django_capture_on_commit_callbacks, support
):
    """Signed up into Team without a card on 18 January 2027 (T2): trial 18–31 January, end
    date 1 February. T6: the reminder goes on 29 January (no card). Closed on 30 January
    (W1): the trial ends uncharged (T5), one closure email; no "trial ended" email (T4 never
    runs: the trial was over). Emails: reminder, closure. Status: 29 January Team, trialing;
    30 January Free, data stopped. Nothing billed. Both runs alike: the catch-up run sends the
    reminder of 29 January although the closure was entered before the clock reached it."""

    def actions(day):
        if day == date(2027, 1, 18):
            new("up", day, plan="team")
        if day == date(2027, 1, 30):
            services.close_workspace(ws_("up"), by=support, reason="Asked", as_of=day)

    def read():
        return {
            "bills": short("up"),
            "subjects": subjects(),
            "status": status(
                "up", date(2027, 1, 29), date(2027, 1, 30), keys=("plan", "trialing", "data_flow")
            ),
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 18), date(2027, 2, 2), actions, read
    )
    check(
        outcomes,
        {
            "bills": [],
            "subjects": ["Up is closed", "Your Team trial for Up ends on 1 Feb 2027"],
            "status": {
                date(2027, 1, 29): ("team", True, True),
                date(2027, 1, 30): ("free", False, False),
            },
        },
    )


# --- X: tax against changes entered ahead -------------------------------------------------------


def test_x2_x4_d4_a_certificate_approved_and_a_rate_set_ahead(
    db, django_capture_on_commit_callbacks, finance, settings, tmp_path
):
    """`ca`: California (7.25 %), paid monthly from 1 January 2027; a non-profit certificate
    for CA submitted on 20 January (valid from 1 January 2025, open-ended), approved on
    10 February (X4). January's invoice (1 February): not approved by its issue date: taxed,
    120.00 × 7.25 % = 8.70 → 128.70, with a note naming the certificate. February's (1 March)
    and March's (1 April): approved before, valid: 0.00 tax, 120.00.

    `tx`: Texas, 6.25 % seeded; 7 % from 1 March 2027, set on 25 January (X2). January's
    invoice (1 February): 7.50 → 127.50. February's, issued 1 March (the rate in force on the
    issue date): 8.40 → 128.40; March's 8.40 → 128.40. Both runs alike."""
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"

    def actions(day):
        if day == date(2027, 1, 1):
            paid("ca", day, business_region="CA")
            paid("tx", day, business_region="TX")
        if day == date(2027, 1, 20):
            services.submit_exemption(
                ws_("ca"),
                region="CA",
                reason="nonprofit",
                document=ContentFile(certificate_pdf("Exemption certificate"), name="c.pdf"),
                valid_from=date(2025, 1, 1),
                as_of=day,
            )
        if day == date(2027, 1, 25):
            services.set_tax_rate(
                "US", region="TX", rate="7", name="Texas sales tax", valid_from=date(2027, 3, 1)
            )
        if day == date(2027, 2, 10):
            services.approve_exemption(TaxExemption.objects.get(), by=finance, as_of=day)

    def read():
        return {
            slug: [
                (i.issue_date, i.tax, i.total, bool(i.tax_note))
                for i in Invoice.objects.filter(workspace__slug=slug).order_by("issue_date")
            ]
            for slug in ("ca", "tx")
        }

    outcomes = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 4, 2), actions, read
    )
    check(
        outcomes,
        {
            "ca": [
                (date(2027, 2, 1), D("8.70"), D("128.70"), True),
                (date(2027, 3, 1), D("0.00"), D("120.00"), True),
                (date(2027, 4, 1), D("0.00"), D("120.00"), True),
            ],
            "tx": [
                (date(2027, 2, 1), D("7.50"), D("127.50"), False),
                (date(2027, 3, 1), D("8.40"), D("128.40"), False),
                (date(2027, 4, 1), D("8.40"), D("128.40"), False),
            ],
        },
    )
