"""`{% waiting_for as waiting %}`: what waits for the signed-in person's decision, for the admin
index (R3: finance's certificates and credit-note requests), each count with the list of
exactly those. Counted only for whoever may decide them."""

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from billing.models import CreditNote, TaxExemption

register = template.Library()


@register.simple_tag(takes_context=True)
def waiting_for(context) -> list[tuple[str, str]]:
    """[(what, list url)], e.g. ("2 tax-exemption certificate(s)", "/admin/…?status__in=…")."""
    user = context["request"].user
    waiting = []
    if user.has_perm("billing.review_taxexemption"):
        count = TaxExemption.objects.filter(status__in=TaxExemption.OPEN_STATUSES).count()
        if count:
            query = urlencode({"status__in": ",".join(TaxExemption.OPEN_STATUSES)})
            url = f"{reverse('admin:billing_taxexemption_changelist')}?{query}"
            waiting.append((f"{count:,} tax-exemption certificate(s)", url))
    if user.has_perm("billing.approve_creditnote"):
        count = CreditNote.objects.filter(status=CreditNote.Status.REQUESTED).count()
        if count:
            query = urlencode({"status__exact": CreditNote.Status.REQUESTED})
            url = f"{reverse('admin:billing_creditnote_changelist')}?{query}"
            waiting.append((f"{count:,} credit-note request(s)", url))
    return waiting
