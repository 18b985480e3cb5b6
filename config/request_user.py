"""The user of a request as far as the request has read it already, without the database.

`request.user` is read lazily: the first read fetches the session and the user (two queries),
and a read that failed (the database down or hung) is tried again at the next. The middleware
that runs after a view, on every response, must not be that next read: with a hung database a
page then waited for its connect timeout three times (the view, the cache headers, the request
log line; 15 s instead of 5 with `DATABASE_CONNECT_TIMEOUT=5`), and a 500 took a web worker
three times as long. They read what the view read, and the session cookie.
"""

from django.conf import settings


def user_read_already(request):
    """The user the request has read (signed in or anonymous), or None when nothing read it
    or the read failed. Django's AuthenticationMiddleware keeps it as `_cached_user` once read
    (django.contrib.auth.middleware.get_user)."""
    return getattr(request, "_cached_user", None)


def may_be_signed_in(request) -> bool:
    """Whether the request is, or may be, a signed-in user's: its user read and signed in, or,
    when nothing read it, a session cookie sent (cheap to over-count: it only costs caching)."""
    user = user_read_already(request)
    if user is not None:
        return user.is_authenticated
    return settings.SESSION_COOKIE_NAME in request.COOKIES
