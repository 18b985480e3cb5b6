"""Every HTML page carries the site's Content-Security-Policy (config/content_policy.py): staff
pages, the public forms and the sign-in page; a stored document keeps its own sandbox, and
files are not pages. The invoice document's own test is in
tests/billing/test_invoice_documents.py; the browser walk
(tests/e2e/test_content_policy_browser.py) proves no page needs more than the policy allows."""

from datetime import date

from django.urls import reverse

from config.content_policy import POLICY
from tests.billing.factories import certificate, workspace


def test_the_policy_allows_scripts_from_this_site_only_and_posts_here_only():
    directives = dict(d.split(" ", 1) for d in POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["base-uri"] == "'self'"


def test_staff_pages_public_forms_and_the_sign_in_page_carry_the_policy(client, support, db):
    """The attacker audit found no page with a policy: all output is escaped today, and the
    policy keeps an inline script from running should a `|safe` ever slip in."""
    for path in ("/admin/login/", "/startups/apply/", "/partners/apply/"):
        assert client.get(path)["Content-Security-Policy"] == POLICY, path
    client.force_login(support)
    for path in ("/admin/", reverse("admin:billing_workspace_changelist"), "/admin/search/?q=a"):
        assert client.get(path)["Content-Security-Policy"] == POLICY, path


def test_a_stored_document_keeps_its_sandbox_and_files_get_no_policy(
    client, finance, db, settings, tmp_path
):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    cert = certificate(workspace(business_region="CA"), "CA", on=date(2026, 1, 5))
    client.force_login(finance)
    document = client.get(reverse("finance:certificate-document", args=[cert.pk]))
    assert document["Content-Security-Policy"] == "default-src 'none'; sandbox"
    csv = client.get(reverse("finance:invoices-export"))
    assert csv["Content-Type"].startswith("text/csv")
    assert "Content-Security-Policy" not in csv
