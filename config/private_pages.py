"""Every page a signed-in user is sent is `Cache-Control: private, no-store`.

Staff pages show customers' names, addresses, invoices and documents: neither the browser (the
back button after signing out, a shared machine) nor a proxy may keep them. The admin's pages
say so already (never_cache), but each page outside it had to remember it, and the finance
invoice list, invoice document and tax report did not. Here it is said once for all of them,
present and future; directives a view set are kept.
"""

from django.utils.cache import patch_cache_control


class PrivatePagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
