"""`manage.py check --deploy`'s checks of this project's own settings (README "Production run":
clean with production settings)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

# Backends that deliver nothing: they print, keep in memory, write files or drop the email.
UNDELIVERED = {
    "django.core.mail.backends.console.EmailBackend": "printed to the process's output",
    "django.core.mail.backends.dummy.EmailBackend": "dropped",
    "django.core.mail.backends.locmem.EmailBackend": "kept in the process's memory",
    "django.core.mail.backends.filebased.EmailBackend": "written to files",
}


@register(Tags.compatibility, deploy=True)
def emails_reach_customers(app_configs, **kwargs):
    """Every customer email (invoices, locks, the startup program's decisions) is marked sent
    once the backend takes it: a production left on EMAIL_URL's laptop default sends none, and
    says nothing (the operations walk followed README's production exports to exactly that)."""
    fate = UNDELIVERED.get(settings.EMAIL_BACKEND)
    if fate is None:
        return []
    return [
        Warning(
            f"Emails are {fate}, not sent: every invoice, lock and program email would be "
            "marked sent and reach nobody.",
            hint="Set EMAIL_URL to the mail server, e.g. smtp+tls://user:password@smtp.example"
            ".com:587 (README, Environment variables).",
            id="billing.W001",
        )
    ]
