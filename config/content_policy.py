"""Every HTML page is sent with a Content-Security-Policy: the second line of defence should a
name or a reason ever reach a page unescaped. Scripts come only from this site's own files (the
admin's, ours: no page has an inline script or an `on…=` attribute), nothing is loaded from
elsewhere, and forms post only here. Styles may be inline: Django's admin and our templates set
`style` attributes and `<style>` blocks, and a style cannot run code. Framing is left to
X-Frame-Options (DENY, or SAMEORIGIN where a document is previewed in its row's page).

A response that states its own policy keeps it (a stored document's `sandbox`). The debug page
of a 500 (DEBUG only) is sent without one: its buttons are inline scripts.
"""

from django.conf import settings

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


class ContentPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        html = response.get("Content-Type", "").startswith("text/html")
        debug_page = settings.DEBUG and response.status_code >= 500
        if html and not debug_page and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = POLICY
        return response
