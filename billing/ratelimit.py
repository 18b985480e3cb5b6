"""Who the client is, and the one rate limit for public forms (SPEC R6, R7).

`client_address(request)` is the address of the client as the trusted proxies saw it: the
sign-in throttle (django-axes, `AXES_CLIENT_IP_CALLABLE`) and the public-form limit use it, so
both agree on who is knocking.

The public-form limit counts ACCEPTED submissions per client address per hour in the default
cache (Redis in production, so every server process shares the count). A submission takes its
place in the count before it is handled and gives it back unless it is accepted, so requests
arriving together cannot all pass a check made before any of them was counted:

    if not ratelimit.reserve_submission(request, "startup-apply"):
        return render(request, "startups/rate_limited.html", status=429)
    ...  # validate, call the service
    ratelimit.release_submission(request, "startup-apply")  # unless it was accepted

A refused or invalid form costs nothing, so a visitor fixing typos is never locked out.

Except where the answer tells what exists: a form that looks something up (the startup form's
workspace slug) counts the lookups that found nothing (`count_miss`), and past
PUBLIC_FORM_MISS_LIMIT in the hour it answers nothing more (`misses_exhausted`); anyone could
otherwise list the customers by trying names, one refused form at a time.
"""

import ipaddress
from contextlib import suppress

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 3600


def _ip(value: str | None) -> str | None:
    """The address in canonical form, or None when `value` is not an IP address. Some proxies
    write the port too (`203.0.113.5:41234`, `[2001:db8::1]:41234`): the address is the
    client's, whatever port it came from."""
    value = (value or "").strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address(request) -> str | None:
    """The client's IP address behind `settings.TRUSTED_PROXY_COUNT` proxies, or None; an
    IPv6 client's as its /64 (`_as_counted`).

    With no trusted proxy it is the connection's address (REMOTE_ADDR): X-Forwarded-For is then
    the client's own to write. Behind N proxies, each of which appends the address it got the
    request from, the client is the Nth entry from the right; anything further left came from
    the client and is ignored. A header with fewer entries than that, or whose entry is not an
    IP address, falls back to REMOTE_ADDR.
    """
    remote = _ip(request.META.get("REMOTE_ADDR"))
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return _as_counted(remote)
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = header.split(",") if header.strip() else []
    if len(forwarded) < proxies:
        return _as_counted(remote)
    return _as_counted(_ip(forwarded[-proxies]) or remote)


def _as_counted(address: str | None) -> str | None:
    """The client as the limits count it. An IPv6 client is given a whole /64 by its provider
    (one home or office network; its devices pick any address in it), so the limits count the
    /64, named by its first address: the security audit sent seven startup applications from
    2001:db8::1 … ::7 and all were taken, where an IPv4 client gets five. An IPv4 address
    written as IPv6 (::ffff:5.5.5.5) is the IPv4 client's."""
    if address is None:
        return None
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network((ip, 64), strict=False).network_address)


def _key(request, form_name: str, what: str = "accepted") -> str:
    return f"public-form:{form_name}:{what}:{client_address(request) or 'unknown'}"


def submissions(request, form_name: str) -> int:
    """Accepted submissions of `form_name` from this client in the current window."""
    return cache.get(_key(request, form_name)) or 0


def limit_reached(request, form_name: str) -> bool:
    """True when this client may not submit `form_name` again in this hour."""
    return submissions(request, form_name) >= settings.PUBLIC_FORM_RATE_LIMIT


def reserve_submission(request, form_name: str) -> bool:
    """Take one place in this client's count for `form_name`; False (and nothing taken) when
    the limit is reached. One atomic increment decides, however many processes ask at once."""
    if count_submission(request, form_name) <= settings.PUBLIC_FORM_RATE_LIMIT:
        return True
    release_submission(request, form_name)
    return False


def release_submission(request, form_name: str) -> None:
    """Give back a place `reserve_submission` took, for a submission that was not accepted."""
    with suppress(ValueError):  # the window ended meanwhile: nothing left to give back
        cache.decr(_key(request, form_name))  # DECR: atomic on Redis, keeps the expiry


def count_submission(request, form_name: str) -> int:
    """Count one accepted submission; returns the count in the window so far."""
    return _count(_key(request, form_name))


def count_miss(request, form_name: str) -> int:
    """Count one lookup of `form_name` that found nothing; returns the count in the window."""
    return _count(_key(request, form_name, "misses"))


def misses_exhausted(request, form_name: str) -> bool:
    """True when this client's lookups of `form_name` found nothing too often this hour: the
    form answers nothing more until the window ends."""
    misses = cache.get(_key(request, form_name, "misses")) or 0
    return misses >= settings.PUBLIC_FORM_MISS_LIMIT


def _count(key: str) -> int:
    """One more in `key`'s window (opened here for an hour); the count so far.

    `cache.add` (SET NX with expiry on Redis) opens the window; `cache.incr` (INCR, which
    keeps the expiry) counts in it. Both are atomic in Redis, so concurrent processes never
    lose a count.
    """
    if cache.add(key, 1, WINDOW_SECONDS):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr: this one opens the next
        if cache.add(key, 1, WINDOW_SECONDS):
            return 1
        return cache.incr(key)
