"""Names, email and website addresses as people type them into services (a workspace's details,
a coupon, a startup application, an accelerator program's application and edits): one check,
one set of messages. Like `billing.amounts.parse_dollars`, each check adds what is wrong to the
caller's `problems`, so a refusal names every problem at once."""

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

# The name columns (a workspace's, a coupon's, a company's, a contact's, a program's) hold this.
NAME_LENGTH = 200

_website = URLValidator(schemes=["http", "https"])


# Direction embeddings, overrides and isolates: one in a name reverses or reorders the rest of
# the cell it is shown in ("Acme\u202eKCAB" reads as another name). The marks U+200E and U+200F
# stay allowed: right-to-left text needs them, and they reorder nothing beyond themselves.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def hidden_character(text: str, label: str) -> str | None:
    """What is wrong with a one-line text shown to people (a name, an email's subject, a card's
    brand) that holds an invisible character changing how it reads: a direction override, or
    a control character (a line break, an escape sequence). None when it holds none."""
    hidden = next(
        (c for c in text if c in DIRECTION_CONTROLS or unicodedata.category(c) == "Cc"), None
    )
    if hidden is None:
        return None
    what = unicodedata.name(hidden, "a control character")
    return (
        f"The {label} contains the invisible character U+{ord(hidden):04X} ({what}), which "
        "changes how it reads; type it again without it."
    )


def check_name(
    value, label: str, problems: list[str], *, missing: str = "", required: bool = True
) -> str:
    """`value` stripped. An empty one is refused with `missing` (default: "The {label} is
    required.") unless not `required`, one longer than its column too, and one with an
    invisible character that changes how it reads (`hidden_character`), naming it by
    `label`."""
    name = (value or "").strip()
    if not name:
        if required:
            problems.append(missing or f"The {label} is required.")
    elif len(name) > NAME_LENGTH:
        problems.append(f"The {label} is longer than {NAME_LENGTH} characters.")
    elif problem := hidden_character(name, label):
        problems.append(problem)
    return name


# What an email column holds (EmailField's 254, RFC 5321's limit on a path): Django's form and
# validator take 320.
EMAIL_MAX_LENGTH = 254


def check_email(value, problems: list[str], *, label: str = "an email address") -> str:
    """`value`; when it is not an email address, or longer than a column holds, `problems` says
    it is not `label`."""
    try:
        validate_email(value)
    except ValidationError:
        problems.append(f"“{value}” is not {label}.")
    else:
        if len(value) > EMAIL_MAX_LENGTH:
            problems.append(f"An email address is at most {EMAIL_MAX_LENGTH} characters.")
    return value


def check_website(value, problems: list[str]) -> str:
    """`value`; when it is not an http(s) address `problems` says so."""
    try:
        _website(value)
    except ValidationError:
        problems.append(f"“{value}” is not a website address (https://…).")
    return value
