"""The admin's password-change page under the sign-in throttle (SPEC R6).

Django's page checks the old password with `check_password`, which django-axes never sees: a
session left open could guess the password without limit, and the password outlives the
session. Here the old password is checked by signing in (`authenticate`), so a wrong one is a
failed sign-in of that user, five of them lock the account out as at the sign-in page (the
lockout page, 429), and while it is locked the right one is refused too.
"""

from django.contrib import admin
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy


class ThrottledPasswordChangeForm(PasswordChangeForm):
    required_css_class = "required"

    def __init__(self, user, *args, request, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        signed_in = authenticate(
            self.request, username=self.user.get_username(), password=old_password
        )
        if signed_in is None or signed_in.pk != self.user.pk:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm
    success_url = reverse_lazy("admin:password_change_done")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def get_context_data(self, **kwargs):
        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}


def password_change(request):
    """At the address of the admin's own page, which it stands in for (config/urls.py)."""
    request.current_app = admin.site.name
    return ThrottledPasswordChangeView.as_view()(request)
