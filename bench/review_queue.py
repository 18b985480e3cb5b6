"""Benchmark: the startup reviewer queue with 50,000 applications on PostgreSQL (issue:
startup program). Prints server time (median of 7) and query count for the default queue and
for filtered and sorted pages.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \
        .venv/bin/python bench/review_queue.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import as_in_production, print_page, setup_django, staff_client, time_page, timed

N = 50_000


def build_applications(decider_id):
    """Open, rejected and withdrawn applications (an approval needs a workspace and credits,
    which a queue benchmark does not need)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "truncate startups_dealrequest, startups_renewalreview, "
            "startups_historicalstartupapplication, startups_startupapplication "
            "restart identity cascade"
        )
        cursor.execute(
            """
            insert into startups_startupapplication (company_name, company_key, website,
                contact_name, contact_email, incorporation_date, total_funding, country,
                partner_name, source, submitted_on, status, checks, failing_checks,
                decision_note, rejection_reason, override_reason, decided_by_id, decided_on)
            select 'Startup ' || i, 'startup ' || i, 'https://s' || i || '.example.com',
                'Founder ' || i, 'f' || i || '@example.com', date '2025-01-01' + (i %% 400),
                (i %% 70) * 100000, (array['US','DE','FR','GB','IN','BR','RU'])[1 + i %% 7],
                case when i %% 5 = 0 then 'Y Combinator' else '' end, 'public_form',
                date '2026-01-01' + (i %% 300),
                (array['submitted','in_review','submitted','rejected','withdrawn'])[1 + i %% 5],
                jsonb_build_array(
                    jsonb_build_object('id','E1','passed',true,'reason','Incorporated recently'),
                    jsonb_build_object('id','E2','passed', (i %% 70) <= 50,'reason','Funding'),
                    jsonb_build_object('id','E3','passed', i %% 7 <> 6,'reason','Territory'),
                    jsonb_build_object('id','E4','passed',true,'reason','No coupon'),
                    jsonb_build_object('id','E5','passed',true,'reason','No other')),
                trim(case when (i %% 70) > 50 then 'E2 ' else '' end
                     || case when i %% 7 = 6 then 'E3' else '' end),
                '', case when i %% 5 = 3 then 'Not eligible' else '' end, '',
                case when i %% 5 = 3 then %s::bigint end,
                case when i %% 5 = 3 then date '2026-11-01' end
            from generate_series(1, %s) as i
            """,
            [decider_id, N],
        )
    with connection.cursor() as cursor:  # outside a transaction: VACUUM needs it
        # What autovacuum does after a bulk load: statistics and the visibility map (counts
        # read the index alone).
        cursor.execute("vacuum analyze startups_startupapplication")


def main():
    setup_django()
    from django.urls import reverse

    from billing.roles import STARTUP_REVIEWERS

    client, user = staff_client("bench-reviewer", STARTUP_REVIEWERS)
    timed(f"build {N:,} applications", build_applications, user.pk)
    url = reverse("startups:queue")
    pages = [
        ("open queue (default)", {}),
        (
            "in review, DE, E2 failing, by funding",
            {"status": "in_review", "country": "DE", "failing": "E2", "order": "-funding"},
        ),
        (
            "all statuses, partner 'combinator', submitted in March, by company",
            {
                "partner": "combinator",
                "submitted_after": "2026-03-01",
                "submitted_before": "2026-03-31",
                "order": "company",
            },
        ),
        ("search by email fragment", {"q": "f4242"}),
        ("page 200 of the open queue", {"page": "200"}),
    ]
    with as_in_production():
        for label, params in pages:
            print_page(f"review queue, {label}", time_page(client, url, params))


if __name__ == "__main__":
    main()
