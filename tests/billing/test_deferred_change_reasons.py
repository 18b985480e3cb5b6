"""R4: a change that takes effect later (K2's cancellation at the term's end, its withdrawal,
K4's move to monthly billing at the term's end and its undoing, T1's trial continuing on another
interval) keeps the reason support typed beside what the service says it does. Walk 6: the
history's "Why" read "Cancelled: moves to Free on 5 Jul 2027", and "Ticket 1009" was lost."""

from datetime import date

from billing import services
from billing.models import Subscription
from tests.billing.factories import paid_annual, workspace

JAN_1, JAN_5 = date(2026, 1, 1), date(2026, 1, 5)


def last_reason(ws):
    sub = Subscription.objects.filter(workspace=ws, ended_on=None).get()
    return sub.history.order_by("-history_id").first().history_change_reason


def test_r4_k2_cancelling_a_term_and_withdrawing_it_keep_the_typed_reasons(db, support):
    ws = paid_annual(JAN_1)  # the term runs 1 Jan 2026 – 31 Dec 2026
    services.change_to_free(ws, as_of=JAN_5, by=support, reason="Ticket 1009: cancel")
    assert last_reason(ws) == "Cancelled: moves to Free on 1 Jan 2027: Ticket 1009: cancel"
    services.change_to_team(
        ws, interval="annual", as_of=JAN_5, by=support, reason="Ticket 1010: stays"
    )
    assert (
        last_reason(ws) == "Cancellation withdrawn: the annual term will renew: Ticket 1010: stays"
    )


def test_r4_k4_moving_to_monthly_at_the_term_end_and_back_keep_the_typed_reasons(db, support):
    ws = paid_annual(JAN_1)
    services.change_interval(
        ws, interval="monthly", as_of=JAN_5, by=support, reason="Ticket 1002: monthly"
    )
    assert last_reason(ws) == "Moves to monthly billing on 1 Jan 2027: Ticket 1002: monthly"
    services.change_interval(
        ws, interval="annual", as_of=JAN_5, by=support, reason="Ticket 1003: changed mind"
    )
    assert last_reason(ws) == "Stays annual at the end of the term: Ticket 1003: changed mind"


def test_r4_t1_a_trial_continuing_on_another_interval_keeps_the_typed_reason(db, support):
    ws = workspace(as_of=JAN_1, card=True)
    services.change_to_team(ws, interval="monthly", as_of=JAN_1)  # T1: a 14-day trial
    services.change_interval(
        ws, interval="annual", as_of=JAN_5, by=support, reason="Ticket 1004: yearly"
    )
    assert last_reason(ws) == "Trial will continue as annual: Ticket 1004: yearly"


def test_r4_without_a_typed_reason_the_service_s_words_stand_alone(db):
    ws = paid_annual(JAN_1)
    services.change_to_free(ws, as_of=JAN_5)  # the clock or a command: nobody typed a reason
    assert last_reason(ws) == "Cancelled: moves to Free on 1 Jan 2027"
