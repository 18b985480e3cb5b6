"""`{% waiting_for as waiting %}`: what waits for the signed-in person, for the admin index, each
count with the list of exactly those. Counted only for whoever may act on them; each app
registers its own (`billing.hooks.register_waiting_list`): billing the certificates and
credit-note requests finance decides (R3) and the failed emails support or finance send again,
coupons the non-profit proofs and partner applications, startups the year-two reviews and deal
requests."""

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from billing.hooks import waiting_lists

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_for(context) -> list[tuple[str, str]]:
    """[(what, list url)], e.g. ("2 tax-exemption certificate(s)", "/admin/…?status__in=…")."""
    user = context["request"].user
    waiting = []
    for listed in waiting_lists():
        if user.has_perm(listed.permission) and (count := listed.rows.count()):
            url = f"{reverse(listed.list_url_name)}?{urlencode(listed.only_those)}"
            waiting.append((f"{count:,} {listed.what}", url))
    return waiting
