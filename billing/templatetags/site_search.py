"""`{% search_box %}`: the header's search box, for a person with something to find (see
billing/search.py); nothing for a signed-out visitor or a role that may view none of it."""

from django import template

from billing.search import visible_kinds

register = template.Library()


@register.inclusion_tag("admin/search_box.html", takes_context=True)
def search_box(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    shown = bool(user and user.is_active and user.is_staff and visible_kinds(request))
    return {"shown": shown, "words": context.get("words", "")}
