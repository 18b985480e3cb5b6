"""Every page a signed-in user is sent is `Cache-Control: private, no-store`.

Staff pages show customers' names, addresses, invoices and documents: neither the browser (the
back button after signing out, a shared machine) nor a proxy may keep them. The admin's pages
say so already (never_cache), but each page outside it had to remember it, and the finance
invoice list, invoice document and tax report did not. Here it is said once for all of them,
present and future; directives a view set are kept. A page whose view never read the user
(a public page, a 500) counts as a signed-in user's when it carries a session cookie: reading
the user here would cost a database round trip on every such page, and a hung database's
timeout once more on a failing one.
"""

from django.utils.cache import patch_cache_control

from config.request_user import may_be_signed_in


class PrivatePagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if may_be_signed_in(request):
            patch_cache_control(response, private=True, no_store=True)
        return response
