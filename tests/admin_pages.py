"""What admin tests read and post: the messages a page shows, a changelist action's form and
a confirmation page's form as the page sends it."""

import re


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


def as_shown(client, url, data=None):
    """The POST data `data` plus the digest of what the page at `url` shows now, as its form
    sends it: a confirmation without it runs nothing (`admin_toolkit.service_form_page`). A
    page that offers no confirmation with a digest fails the test here."""
    found = re.search(r'name="shown" value="(\w+)"', client.get(url).content.decode())
    assert found, f"{url} shows no confirmation carrying what it showed"
    return {**(data or {}), "shown": found[1]}
