"""A request body is refused by its declared size before anything reads it (config/body_limit.py).

Django reads a POST's body before any view runs (the CSRF check reads its token), and writes
each file part to disk whatever its size: `DATA_UPLOAD_MAX_MEMORY_SIZE` bounds only the other
fields. Anyone could make the server write 300 MB to /tmp through the public startup form
(attacker's walk 8) before the form's rate limit answered. A visitor who is not signed in as
staff may send a body of 1 MB at most (the public forms and the sign-in take no files); staff
up to the largest file a page takes (the usage import's 1 GB, billing.forms).
"""

import pytest
from django.urls import reverse

from billing.forms import MAX_USAGE_FILE_BYTES
from billing.models import UsageImportJob
from config.body_limit import PUBLIC_BODY_MAX_BYTES
from startups.models import StartupApplication


def claiming(size: int) -> dict:
    """A body that says it is `size` bytes long and holds 10: Django's test payload fails any
    read past its end, so a 413 here proves nothing read the body."""
    return {
        "data": b"0123456789",
        "content_type": "multipart/form-data; boundary=x",
        "CONTENT_LENGTH": str(size),
    }


@pytest.mark.parametrize(
    "url",
    [reverse("startups:apply"), reverse("coupons:partner_apply"), reverse("admin:login")],
    ids=["startup-form", "partner-form", "sign-in"],
)
def test_an_anonymous_body_over_1_mb_is_refused_unread(client, db, url):
    response = client.post(url, **claiming(PUBLIC_BODY_MAX_BYTES + 1))

    assert response.status_code == 413
    assert "1 MB" in response.content.decode()
    assert not StartupApplication.objects.exists()


def test_an_anonymous_body_to_a_staff_upload_page_is_refused_unread(client, db):
    response = client.post(reverse("admin:billing_usage_import"), **claiming(300 * 1024**2))

    assert response.status_code == 413
    assert not UsageImportJob.objects.exists()


def test_a_public_form_of_1_mb_is_read(client, db):
    response = client.post(reverse("startups:apply"), {"company_name": "x" * 1000})

    assert response.status_code == 200  # the form, with its errors


def test_staff_may_send_up_to_the_largest_file_a_page_takes(client, support):
    client.force_login(support)

    over = client.post(reverse("admin:billing_usage_import"), **claiming(MAX_USAGE_FILE_BYTES * 2))

    assert over.status_code == 413
    assert "1,025 MB" in over.content.decode()
