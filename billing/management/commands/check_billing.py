"""For the person on call (and cron or a monitor): is the billing machinery keeping up?"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.health import check_broker
from billing.selectors import billing_health, clock_due_day

# A PING answers in milliseconds; a broker that takes longer is as good as down for the workers.
BROKER_TIMEOUT_SECONDS = 3


class Command(BaseCommand):
    help = (
        "Say whether yesterday's billing run happened, whether a month close is unfinished or "
        "has set-aside workspaces, how many emails failed or are stuck, whether a usage "
        "import job waits with no worker on it, how many workspaces have a region that is "
        "not a code tax depends on, whether the broker answers a PING and whether a Celery "
        "worker ran the beat's heartbeat in the last 15 minutes. Exits 1 when something needs "
        "attention, 0 otherwise."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        broker_error = "" if settings.CELERY_TASK_ALWAYS_EAGER else self.ping_broker()
        health = billing_health(due_day=clock_due_day(now), now=now, broker_error=broker_error)
        self.stdout.write(
            f"Billing clock: {'OK' if health.clock_ran else 'BEHIND'} "
            f"(should have processed {health.due_day}; "
            f"last processed day {health.last_processed_day or 'none'})"
        )
        unfinished = ", ".join(f"{m:%Y-%m}" for m in health.unfinished_closes) or "none"
        self.stdout.write(f"Unfinished month closes: {unfinished}")
        self.stdout.write(f"Set-aside workspaces: {health.set_aside}")
        self.stdout.write(
            f"Emails failed: {health.failed_emails}; pending over an hour: {health.stuck_emails}"
        )
        self.stdout.write(f"Usage import jobs with no worker on them: {health.stuck_import_jobs}")
        self.stdout.write(
            f"Workspaces whose region is not a code tax depends on: {health.regions_not_codes}"
        )
        self.stdout.write(f"Broker: {self.broker(health)}")
        self.stdout.write(f"Celery workers: {self.heartbeat(health)}")
        if health.needs_attention:
            raise CommandError(
                "Needs attention:\n" + "\n".join(f"- {p}" for p in health.problems), returncode=1
            )
        self.stdout.write(self.style.SUCCESS("Billing is up to date."))

    @staticmethod
    def ping_broker() -> str:
        """Why the broker did not answer a PING, or "" when it did."""
        try:
            check_broker(BROKER_TIMEOUT_SECONDS)
        except Exception as exc:  # whatever the reason, the answer is the same: it is down
            return f"{type(exc).__name__}: {exc}"
        return ""

    @staticmethod
    def broker(health):
        if not health.workers_needed:
            return "none needed (tasks run in the process: eager)"
        return f"NOT ANSWERING ({health.broker_error})" if health.broker_error else "OK"

    @staticmethod
    def heartbeat(health):
        if not health.workers_needed:
            return "none needed (tasks run in the process: eager)"
        if health.heartbeat is None:
            return "no heartbeat yet"
        beat = health.heartbeat
        late = " (late)" if health.heartbeat_stale else ""
        return f"last heartbeat {beat.ran_at:%Y-%m-%d %H:%M:%S} UTC by {beat.worker or '?'}{late}"
