"""What admin tests read and post: the messages a page shows and a changelist action's form."""


def messages_of(response):
    """The messages the page shows (none when the response has no template context)."""
    return [str(m) for m in response.context["messages"]] if response.context else []


def action(name, *objects, confirm=False, **fields):
    """The POST data of changelist action `name` on `objects`; `confirm=True` answers its
    confirmation page ("Yes, ..."), `fields` fill that page's form (a reason)."""
    data = {"action": name, "_selected_action": [obj.pk for obj in objects], **fields}
    if confirm:
        data["confirm"] = "yes"
    return data
