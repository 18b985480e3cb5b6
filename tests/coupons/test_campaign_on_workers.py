"""G2 on real infrastructure: a campaign's batches go to a Celery worker over Redis, on
PostgreSQL; launched twice, with a batch delivered twice, every workspace gets one email."""

import time
from datetime import date

import pytest

from billing.models import OutboundEmail
from coupons import campaigns
from coupons.models import CampaignRecipient
from tests.services import require_postgres, require_redis
from tests.workers import worker_on_the_test_database

from .factories import coupon, free_workspace

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_g2_a_campaign_launched_twice_and_retried_emails_each_workspace_once(tmp_path, monkeypatch):
    require_postgres()
    require_redis()
    spaces = [free_workspace(as_of=date(2026, 1, 1)) for _ in range(5)]
    campaign = campaigns.create_campaign(
        "Spring", coupon(code="SPRING").code, "25% off Team", "Spring is here.", {}
    )
    monkeypatch.setattr(campaigns, "CAMPAIGN_BATCH", 2)  # three batches

    log = tmp_path / "worker.log"
    with worker_on_the_test_database("campaign", log) as send:

        def dispatch(campaign_id, ranges):
            for first_id, last_id in [*ranges, *ranges[:1]]:  # the first batch delivered twice
                send("coupons.tasks.send_campaign_batch", campaign_id, first_id, last_id)

        assert campaigns.launch_campaign(campaign, as_of=date(2026, 2, 2), dispatch=dispatch) == 5
        # Launched again at once: nobody new, the unsent batches handed on a second time.
        assert campaigns.launch_campaign(campaign, as_of=date(2026, 2, 2), dispatch=dispatch) == 0
        deadline = time.monotonic() + 60
        emails = OutboundEmail.objects.filter(kind="campaign")
        while emails.filter(status="sent").count() < 5 or emails.count() < 5:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(1)  # let any duplicate delivery finish: it must find nothing to do

    assert sorted(emails.values_list("to", flat=True)) == sorted(w.billing_email for w in spaces)
    assert not CampaignRecipient.objects.filter(email=None).exists()
    assert campaigns.campaign_progress(campaign)["sent"] == 5
