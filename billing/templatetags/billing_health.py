"""`{% billing_health as health %}`: the check_billing figures for the admin index."""

from django import template
from django.utils import timezone

from billing.selectors import billing_health as read_billing_health
from billing.selectors import clock_due_day

register = template.Library()


@register.simple_tag
def billing_health():
    now = timezone.now()
    return read_billing_health(due_day=clock_due_day(now), now=now)
