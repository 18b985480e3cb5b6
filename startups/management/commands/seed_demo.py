"""Demo data for the laptop portal: one login per role and every app's demo rows.

Lives in the top app of the layers (startups → coupons → billing) so it may call each app's
`demo` module in order; the billing clock then bills the demo months, so discounts and
credits show on the invoices. Idempotent: data is made once; each run prints fresh passwords
(random, so none is kept in the repository) and the address to open (`--url`; `make run`
passes its PORT).

It is for a laptop's database (`make run` and README set DEBUG=true) and refuses production
settings (DEBUG=false) unless told `--allow-production`: there it would take over any staff
account named support, reviewer or finance (its groups replaced, its password reset to one
printed on the terminal) and issue the made-up workspaces' invoices in the real number
sequence, where nothing can delete them (I3).

What the billing clock's tasks log while the demo is built is for a worker's log, not for the
person waiting for the logins: `make run` runs this command with LOG_LEVEL=WARNING.
"""

import secrets
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing import demo as billing_demo
from billing import services
from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT
from coupons import demo as coupons_demo
from startups import demo as startups_demo

LOGINS = [("support", SUPPORT), ("reviewer", STARTUP_REVIEWERS), ("finance", FINANCE)]
# Fewer workspaces cannot hold every state the demo shows (a campaign needs Team customers
# without a discount); more would take minutes to bill and show nothing new.
WORKSPACES = range(40, 10_001)


class Command(BaseCommand):
    help = "Create demo data (once) and print one login per role."

    def add_arguments(self, parser):
        parser.add_argument(
            "--workspaces",
            type=int,
            default=300,
            help=f"How many demo workspaces ({WORKSPACES.start:,}–{WORKSPACES.stop - 1:,}).",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000/admin/",
            help="The portal's address, printed with the logins.",
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even with production settings (DEBUG=false): a throwaway database only.",
        )

    def handle(self, *args, workspaces, url, allow_production=False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "seed_demo is for a laptop's database: these are production settings "
                "(DEBUG=false). It would reset the passwords of the staff accounts support, "
                "reviewer and finance and issue made-up invoices that can never be deleted. "
                "Set DEBUG=true, or pass --allow-production for a throwaway database."
            )
        if workspaces not in WORKSPACES:
            raise CommandError(
                f"--workspaces must be {WORKSPACES.start:,} to {WORKSPACES.stop - 1:,}, "
                f"not {workspaces:,}: fewer cannot hold every state the demo shows."
            )
        today = timezone.now().date()
        users = self._staff()
        if billing_demo.create_world(today=today, count=workspaces):
            self.stdout.write(f"Created {workspaces} demo workspaces with six months of usage.")
        else:
            self.stdout.write("Demo data exists already; running the billing clock only.")
        coupons_demo.seed(today=today)
        startups_demo.seed(today=today)
        # W1: a closure dated last month, once the clock has billed the months before it.
        counts = Counter(
            services.run_billing(as_of=billing_demo.closure_day(today) - timedelta(days=1))
        )
        if billing_demo.close_workspace(today=today, support=users["support"]):
            self.stdout.write(
                "Closed one workspace at its customer's request, last month; its confirmation "
                "email failed (the mail server was down): resend it from the outbox."
            )
        # D1: the clock processes the days that have ended; staff act today.
        yesterday = today - timedelta(days=1)
        counts.update(services.run_billing(as_of=yesterday))
        done = ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in counts.items() if n)
        self.stdout.write(
            f"Billing clock run through {yesterday}" + (f" ({done})." if done else ".")
        )
        # K3: refunds support asked for, waiting for finance (after the clock issued invoices).
        billing_demo.request_credit_notes(
            today=today, support=users["support"], finance=users["finance"]
        )
        self._print_logins(users, url)

    def _staff(self) -> dict:
        """One staff user per role (made once, their groups set every run)."""
        users = {}
        for username, group_name in LOGINS:
            user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True})
            user.is_staff = True
            user.save()
            user.groups.set([Group.objects.get(name=group_name)])
            users[username] = user
        return users

    def _print_logins(self, users, url):
        self.stdout.write(self.style.SUCCESS("\nDemo logins (passwords are new on every run):"))
        for username, group_name in LOGINS:
            password = secrets.token_urlsafe(12)
            user = users[username]
            user.set_password(password)
            user.save()
            self.stdout.write(f"  {group_name:<18} {username:<10} {password}")
        self.stdout.write(f"Open {url} and sign in with one of them.\n")
