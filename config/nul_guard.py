"""Refuse an address whose query string holds a NUL character (`%00`).

PostgreSQL text cannot hold NUL, so a filter, a search or a lookup that passes such a value to
the database fails there with an error (a 500), on the site search, our list filters and
Django's own alike. No value a page takes from its address has a use for NUL; Django's forms
already refuse it in posted fields, so only the query string is checked, once, here.
"""

from django.http import HttpResponseBadRequest


class NulGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Every value of each name: a list's filters read them all (`?a=x&a=%00`).
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest(
                "The address holds a NUL character (%00), which no field takes.",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
