"""Refuse a request body by its declared size, before anything reads it.

Django reads a POST's body before the view runs (the CSRF check looks for its token there) and
writes each file part to disk, however large: `DATA_UPLOAD_MAX_MEMORY_SIZE` bounds only the
other fields. So anyone could make the server write hundreds of MB through a public form before
its rate limit answered. A visitor not signed in as staff sends at most 1 MB (the public forms
and the sign-in take no file); staff send at most the largest file a page takes (the usage
import's, `billing.forms.MAX_USAGE_FILE_BYTES`) and 1 MB of form around it. A body without a
Content-Length is not read at all (Django reads a body up to its declared length).
"""

from django.http import HttpResponse

from billing.forms import MAX_USAGE_FILE_BYTES

MB = 1024 * 1024
PUBLIC_BODY_MAX_BYTES = 1 * MB
STAFF_BODY_MAX_BYTES = MAX_USAGE_FILE_BYTES + 1 * MB


class BodyLimitMiddleware:
    """After AuthenticationMiddleware (it asks whether the session is staff's)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0  # Django then reads nothing either
        if size > PUBLIC_BODY_MAX_BYTES:
            user = request.user
            limit = STAFF_BODY_MAX_BYTES if user.is_authenticated and user.is_staff else None
            if limit is None or size > limit:
                allowed = f"{(limit or PUBLIC_BODY_MAX_BYTES) // MB:,} MB"
                return HttpResponse(
                    f"The request is {size:,} bytes: at most {allowed} is accepted here.",
                    status=413,
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
