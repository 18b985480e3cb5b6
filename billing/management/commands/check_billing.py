"""For the person on call (and cron or a monitor): is the billing machinery keeping up?"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.health import WORKER_PING_SECONDS, workers_answering
from billing.selectors import billing_health, clock_due_day


class Command(BaseCommand):
    help = (
        "Say whether yesterday's billing run happened, whether a month close is unfinished or "
        "has set-aside workspaces, how many emails failed or are stuck, whether a usage "
        "import job waits with no worker on it, how many workspaces have a region that is "
        "not a code tax depends on, and whether a Celery worker answers. Exits 1 when "
        "something needs attention, 0 otherwise."
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
        problems = health.problems + self.check_workers()
        if problems:
            raise CommandError(
                "Needs attention:\n" + "\n".join(f"- {p}" for p in problems), returncode=1
            )
        self.stdout.write(self.style.SUCCESS("Billing is up to date."))

    def check_workers(self) -> list[str]:
        """Print which workers answer a ping; the problem, if none does. The clock's own check
        sees a dead beat only the next day, and a stuck import or email only after 15 minutes or
        an hour: a dead worker should page someone before then."""
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write("Celery workers: none needed (tasks run in the process: eager)")
            return []
        try:
            workers = workers_answering()
        except Exception as exc:
            self.stdout.write("Celery workers: unknown, the broker does not answer")
            return [
                f"The broker does not answer ({type(exc).__name__}: {exc}): no month close, "
                "usage import or email can be handed to a worker."
            ]
        self.stdout.write(f"Celery workers answering: {', '.join(workers) or 'none'}")
        if workers:
            return []
        return [
            f"No Celery worker answered a ping within {WORKER_PING_SECONDS:g} s: month closes, "
            "usage imports and emails wait until one runs."
        ]
