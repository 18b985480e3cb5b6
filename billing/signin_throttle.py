"""The staff sign-in throttle's window (SPEC R6): 5 failed sign-ins for one username or from one
address within 15 minutes lock sign-in for 15 minutes.

django-axes' database handler counts a client's failures while each comes within the cool-off
of the one before, so five failures 14 minutes apart (56 minutes in all) lock an account. This
handler keeps everything else axes does (its attempt rows, lockout page, signals and log lines)
and decides from the failure log instead, per username and per address: one is locked while
a failure of the last 15 minutes was the 5th or more within the 15 minutes before it. So the
lockout lasts 15 minutes from the failure that set it, and an attempt refused during it is a
failure like any other: a client that keeps trying stays locked, one that waits gets back in.
"""

import json
from datetime import timedelta

from axes.attempts import get_cool_off
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_parameters, get_client_username, get_failure_limit
from axes.models import AccessFailureLog
from django.db.models import Func, OuterRef, Q, Subquery
from django.utils import timezone


class SlidingWindowHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials: dict | None = None) -> int:
        """The failures of the last 15 minutes for the username or the address, whichever has
        more, or the limit while either is locked out."""
        limit = get_failure_limit(request, credentials)
        window = get_cool_off(request)
        now = request.axes_attempt_time or timezone.now()
        # axes asks while it records a failure, before writing that failure's log row.
        pending = 1 if getattr(request, "axes_recording_failure", False) else 0
        most = 0
        for client in get_client_parameters(
            get_client_username(request, credentials),
            request.axes_ip_address,
            request.axes_user_agent,
            request,
            credentials,
        ):
            failures = AccessFailureLog.objects.filter(**client)
            recent = failures.filter(attempt_time__gt=now - window)
            count = recent.count() + pending
            if count < limit and self._locked_by(failures, recent, window, limit):
                return limit
            most = max(most, count)
        return most

    @staticmethod
    def _locked_by(failures, recent, window: timedelta, limit: int) -> bool:
        """Whether one of the recent failures was the `limit`-th or more within the window
        ending with it (it and the ones before it)."""
        within = (
            failures.filter(
                attempt_time__gt=OuterRef("attempt_time") - window,
                attempt_time__lte=OuterRef("attempt_time"),
            )
            .annotate(count=Func("pk", function="COUNT"))
            .values("count")
        )
        return recent.annotate(within=Subquery(within)).filter(within__gte=limit).exists()

    def reset_attempts(self, *, ip_address=None, username=None, ip_or_username=False) -> int:
        """Lifting a lockout (`axes_reset_username`, `axes_reset_ip`) also forgives the failures
        that would still count: those of the last two windows (older ones stay as the log)."""
        count = super().reset_attempts(
            ip_address=ip_address, username=username, ip_or_username=ip_or_username
        )
        failures = AccessFailureLog.objects.filter(
            attempt_time__gt=timezone.now() - 2 * get_cool_off()
        )
        if ip_or_username:
            failures = failures.filter(Q(ip_address=ip_address) | Q(username=username))
        else:
            if ip_address:
                failures = failures.filter(ip_address=ip_address)
            if username:
                failures = failures.filter(username=username)
        failures.delete()
        return count

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        request.axes_recording_failure = True
        try:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        finally:
            request.axes_recording_failure = False


def client_str(username, ip_address, user_agent, path_info, request) -> str:
    """How a client reads in axes' log lines (AXES_CLIENT_STR_CALLABLE): the username and the
    address (R6: who was locked out, from where; axes masks both by default) and the path, each
    JSON-quoted so that nothing typed into the form can break the line."""
    if isinstance(path_info, (tuple, list)):
        path_info = path_info[0]
    shown = {"username": username, "ip_address": ip_address, "path_info": path_info}
    return "{" + ", ".join(f"{key}: {json.dumps(value)}" for key, value in shown.items()) + "}"
