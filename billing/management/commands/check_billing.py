"""For the person on call (and cron or a monitor): is the billing machinery keeping up?"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.selectors import billing_health, clock_due_day


class Command(BaseCommand):
    help = (
        "Say whether yesterday's billing run happened, whether a month close is unfinished or "
        "has set-aside workspaces, how many emails failed or are stuck, whether a usage "
        "import job waits with no worker on it, how many workspaces have a region that is "
        "not a code tax depends on, and whether a Celery worker ran the beat's heartbeat in "
        "the last 15 minutes. Exits 1 when something needs attention, 0 otherwise."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        health = billing_health(due_day=clock_due_day(now), now=now)
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
        self.stdout.write(f"Celery workers: {self.heartbeat(health)}")
        if health.needs_attention:
            raise CommandError(
                "Needs attention:\n" + "\n".join(f"- {p}" for p in health.problems), returncode=1
            )
        self.stdout.write(self.style.SUCCESS("Billing is up to date."))

    @staticmethod
    def heartbeat(health):
        if not health.workers_needed:
            return "none needed (tasks run in the process: eager)"
        if health.heartbeat is None:
            return "no heartbeat yet"
        beat = health.heartbeat
        late = " (late)" if health.heartbeat_stale else ""
        return f"last heartbeat {beat.ran_at:%Y-%m-%d %H:%M:%S} UTC by {beat.worker or '?'}{late}"
