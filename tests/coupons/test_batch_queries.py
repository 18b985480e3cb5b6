"""A month close asks the coupons hook for a chunk of up to 2,000 invoices at once: pricing and
recording them costs the coupons app the same few queries however many invoices there are."""

from datetime import date

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import invoicing
from coupons import services
from coupons.models import CreditLedgerEntry, DiscountApplication

from .factories import coupon, paid_monthly


def coupon_queries(count):
    once, forever = coupon(amount_off="5.00"), coupon(percent_off="10", duration="forever")
    spaces = []
    for n in range(count):
        ws = paid_monthly()
        services.redeem_coupon(
            ws, (once if n % 2 else forever).code, by=None, as_of=date(2026, 1, 1)
        )
        services.grant_credits(ws, amount="50.00", as_of=date(2026, 1, 1), year=1, by=None)
        spaces.append(ws)
    drafts = invoicing.month_close_drafts(date(2026, 1, 1), workspace_ids=[w.pk for w in spaces])
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        invoicing.issue(drafts)
    assert DiscountApplication.objects.filter(redemption__workspace__in=spaces).count() == count
    assert (
        CreditLedgerEntry.objects.filter(kind="draw", grant__workspace__in=spaces).count() == count
    )
    return len([q for q in ctx.captured_queries if "coupons_" in q["sql"]])


def test_c4_cr2_a_chunk_costs_the_same_queries_for_4_or_40_invoices(db):
    assert coupon_queries(4) == coupon_queries(40)
