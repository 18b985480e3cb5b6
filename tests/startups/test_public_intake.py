"""S1, S2 (E5), C7, R7: the public forms and the startup program's intake. Company names that
differ only by punctuation were different companies and a legal-suffix word was dropped
wherever it stood; a 200-character name whose key folds longer (ß → ss) answered 500 on
PostgreSQL, as did a partner's email longer than its column; a form sent twice at once made
two programs of one name, or two applications of one company (both passing E5, then each
failing it for the other); and the queue kept "E5 passes" on the application already open."""

import time
from datetime import date
from importlib import import_module

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

import coupons.partners
import startups.services
from coupons.models import AcceleratorPartner
from startups.errors import ApplicationError
from startups.models import StartupApplication
from tests.coupons.factories import PARTNER_FORM
from tests.startups.factories import APPLICATION_FORM, application


def e5(app):
    return next(check for check in app.checks if check["id"] == "E5")


# --- S2 E5: names that differ only by punctuation are one company -----------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        ("Acme S.A.", "Acme SA"),
        ("Acme L.L.C.", "Acme LLC"),
        ("O'Reilly Labs", "OReilly Labs"),
        ("Acme", "Ac\u00adme"),  # a soft hyphen: invisible, it was read as a space ("ac me")
        ("Acme", "Ac\u200dme"),  # a zero-width joiner
    ],
)
def test_e5_names_differing_only_by_punctuation_are_the_same_company(db, first, second):
    application(company_name=first)
    later = application(company_name=second)

    assert not e5(later)["passed"], e5(later)["reason"]


def test_e5_stored_keys_of_names_with_an_invisible_character_are_computed_again(db):
    """Migration 0013 gives an application stored with the old key of "Ac\u00adme" ("ac me")
    the key "acme"; the others keep theirs."""
    from django.apps import apps

    rekey = import_module("startups.migrations.0013_company_keys_without_format_characters")
    hidden, plain = application(company_name="Ac\u00adme"), application(company_name="Zeta Labs")
    StartupApplication.objects.filter(pk=hidden.pk).update(company_key="ac me")
    rekey.rekey(apps, None)
    keys = dict(StartupApplication.objects.values_list("pk", "company_key"))
    assert (keys[hidden.pk], keys[plain.pk]) == ("acme", "zeta labs")


# --- S1 / S2: the company key may be longer than the name (NFKD, casefold) ---------------------


def test_s1_a_200_character_name_whose_key_expands_is_accepted_and_stored_whole(client, db):
    # 200 characters, as the form allows; "ß" folds to "ss", so its key has 216.
    name = ("Großstraßenbaugesellschaft " * 8)[:200]
    assert len(name) == 200

    response = client.post(reverse("startups:apply"), {**APPLICATION_FORM, "company_name": name})

    assert response.status_code == 302
    stored = StartupApplication.objects.get()
    assert len(stored.company_key) <= StartupApplication._meta.get_field("company_key").max_length


# --- C7: the partner form takes an email longer than its column ---------------------------------

LONG_EMAIL = "m" * 64 + "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".example.com"


def test_c7_partner_form_refuses_an_email_longer_than_its_column(client, db):
    assert len(LONG_EMAIL) > AcceleratorPartner._meta.get_field("contact_email").max_length

    response = client.post(
        reverse("coupons:partner_apply"), {**PARTNER_FORM, "contact_email": LONG_EMAIL}
    )

    assert response.status_code == 200
    assert "contact_email" in response.context["form"].errors
    assert not AcceleratorPartner.objects.exists()


# --- a double click: two identical submissions at the same moment -----------------------------


def slow_save(monkeypatch, module):
    """Widen the window between the service's checks and its write, as a slow database would,
    so the two requests of a double click reliably overlap."""
    save = module.save_with_reason

    def slowly(*args, **kwargs):
        time.sleep(0.5)
        return save(*args, **kwargs)

    monkeypatch.setattr(module, "save_with_reason", slowly)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_c7_a_double_click_on_the_partner_form_makes_one_program(run_together, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: one connection per concurrent request")
    slow_save(monkeypatch, coupons.partners)
    url = reverse("coupons:partner_apply")

    def post():
        return Client().post(url, PARTNER_FORM, REMOTE_ADDR="203.0.113.50").status_code

    run_together(post, post)

    assert AcceleratorPartner.objects.filter(name=PARTNER_FORM["name"]).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_s1_a_double_click_on_the_startup_form_files_one_application(run_together, monkeypatch):
    """Both requests answer as a new application would; one is filed, E5 passes on it and
    one confirmation goes (it filed two, each failing E5 for the other, so neither could be
    approved until a reviewer withdrew one: the run-twice walk)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: one connection per concurrent request")
    slow_save(monkeypatch, startups.services)
    url = reverse("startups:apply")

    def post():
        return Client().post(url, APPLICATION_FORM, REMOTE_ADDR="203.0.113.51").status_code

    assert run_together(post, post, post) == [302, 302, 302]

    (filed,) = StartupApplication.objects.all()
    assert e5(filed)["passed"]
    assert [m.to for m in mail.outbox] == [[APPLICATION_FORM["contact_email"]]]


def test_s1_the_startup_form_sent_again_files_nothing_more(client, db):
    """Back and resend, the same answers: one application. Another answer (the funding) is
    another application, and then E5 fails on both, as for a founder applying twice."""
    url = reverse("startups:apply")
    first = client.post(url, APPLICATION_FORM, REMOTE_ADDR="203.0.113.52")
    again = client.post(url, APPLICATION_FORM, REMOTE_ADDR="203.0.113.52")
    assert (first.status_code, again.status_code) == (302, 302)
    assert first["Location"] == again["Location"]
    assert StartupApplication.objects.count() == 1
    client.post(url, {**APPLICATION_FORM, "total_funding": "300000"}, REMOTE_ADDR="203.0.113.52")
    assert [e5(app)["passed"] for app in StartupApplication.objects.all()] == [False, False]


def test_s1_staff_entering_an_open_application_again_are_told_which(db, reviewer):
    answers = {**APPLICATION_FORM, "incorporation_date": date(2025, 5, 1), "workspace": None}
    del answers["nickname"]
    staff = {"as_of": date(2026, 1, 20), "source": StartupApplication.Source.STAFF, "by": reviewer}
    filed = startups.services.submit_application(**answers, **staff)
    with pytest.raises(ApplicationError) as refused:
        startups.services.submit_application(**answers, **staff)
    assert str(refused.value) == (
        f"Application #{filed.pk} of Lumen Data, with these answers, is open already "
        "(submitted on 20 Jan 2026)."
    )
    assert StartupApplication.objects.count() == 1


# --- S2 shown to the reviewer: the queue's checklist and "failing check" filter ----------------


def test_e5_the_queue_shows_both_open_applications_of_one_company_failing_e5(client, db, reviewer):
    for funding in ("250000", "300000"):  # the founder applying twice: one company
        answers = {**APPLICATION_FORM, "total_funding": funding}
        assert client.post(reverse("startups:apply"), answers).status_code == 302
    first, second = StartupApplication.objects.order_by("pk")

    client.force_login(reviewer)
    listed = client.get(reverse("startups:queue"), {"failing": "E5"}).context["page"]

    # The first still says "E5 passes" (stored at its submission): the filter misses it and
    # its row reads as eligible while the other is open.
    assert {app.pk for app in listed} == {first.pk, second.pk}


@pytest.mark.parametrize("close", ["withdraw", "reject", "approve"])
def test_e5_the_other_application_passes_again_once_one_is_closed_or_moved(
    client, db, reviewer, close
):
    """Two open applications of one company both fail E5; once one was withdrawn, rejected or
    approved, the other's stored checks (the queue's checklist and its "failing E5" filter)
    still said E5 fails until a reviewer opened it. They are evaluated again then."""
    from billing.services import create_workspace

    for funding in ("250000", "300000"):  # the founder applying twice
        answers = {**APPLICATION_FORM, "total_funding": funding}
        assert client.post(reverse("startups:apply"), answers).status_code == 302
    first, second = StartupApplication.objects.order_by("pk")
    assert "E5" in first.failing_checks.split() and "E5" in second.failing_checks.split()
    day = second.submitted_on  # the form's today
    if close == "withdraw":
        startups.services.withdraw_application(second, by=reviewer, as_of=day, reason="Twice")
    elif close == "reject":
        startups.services.reject_application(second, by=reviewer, as_of=day, reason="Twice")
    else:
        ws = create_workspace(
            "Other",
            slug="other",
            business_country="DE",
            billing_email="o@example.com",
            as_of=date(2026, 1, 1),
        )
        startups.services.link_application(
            second, by=reviewer, workspace=ws, partner=None, as_of=day, reason="Ticket 12"
        )
        if close == "approve":
            startups.services.approve_application(
                second,
                by=reviewer,
                as_of=day,
                override_reason="Same founder, second company",
                credits_scope_confirmed=True,
            )
    first.refresh_from_db()
    assert "E5" not in first.failing_checks.split(), (close, first.failing_checks)
    assert first.history.first().history_change_reason.startswith(
        f"Checks evaluated again: application #{second.pk} was"
    )


def test_e5_an_application_moved_to_another_workspace_frees_the_first(db, reviewer):
    """Two companies' applications linked to one workspace both fail E5; the second relinked
    to its own workspace, the first passes again."""
    from datetime import date

    from tests.billing.factories import workspace

    shared, own = workspace(as_of=date(2026, 1, 1)), workspace(as_of=date(2026, 1, 1))
    first, second = application(workspace=shared), application(workspace=shared)
    first.refresh_from_db()
    assert "E5" in first.failing_checks.split()
    startups.services.link_application(
        second,
        by=reviewer,
        workspace=own,
        partner=None,
        as_of=date(2026, 1, 21),
        reason="Ticket 12",
    )
    first.refresh_from_db()
    assert "E5" not in first.failing_checks.split()


@pytest.mark.parametrize(
    "first, second",
    [
        ("Limited Run Games", "Run Games"),
        ("Co Labs", "Labs"),
        ("SA Power Networks", "Power Networks"),
    ],
)
def test_e5_a_legal_suffix_word_at_the_start_of_a_name_is_not_dropped(db, first, second):
    # Only a legal SUFFIX is ignored: these are different companies.
    application(company_name=first)
    later = application(company_name=second)

    assert e5(later)["passed"], e5(later)["reason"]


def test_e5_keys_recomputed_fail_e5_of_open_applications_of_one_company(db):
    """startups 0008 recomputes the keys: "Acme S.A." (was "acme s a") and "Acme SA" are one
    company now, and the one whose stored checks said E5 passes (the queue reads them) fails
    it too."""
    import importlib

    from django.apps import apps

    first = application(company_name="Acme S.A.")
    second = application(company_name="Acme SA")
    passed = [{**c, "passed": True} if c["id"] == "E5" else c for c in first.checks]
    StartupApplication.objects.filter(pk=first.pk).update(
        company_key="acme s a",
        checks=passed,
        failing_checks=" ".join(c["id"] for c in passed if not c["passed"]),
    )
    migration = importlib.import_module(
        "startups.migrations.0008_company_keys_punctuation_and_suffix_at_the_end"
    )
    migration.recompute(apps, None)
    first.refresh_from_db()
    assert first.company_key == "acme"
    assert "E5" in first.failing_checks.split()
    assert e5(first)["reason"] == f"Application #{second.pk} for Acme SA is still open"


def test_c7_the_declined_partner_email_echoes_nothing_the_sender_typed(
    db, support, django_capture_on_commit_callbacks
):
    """The accelerators' public form takes any address too: a lure typed as program and contact
    name, declined by staff as the spam it is, reached the stranger whose address was typed,
    from us ("Your accelerator partner application for Your account is suspended - pay at
    evil.example"). The declined email names the application by number and day."""
    from datetime import date

    lure = "Your account is suspended - pay at evil.example"
    partner = coupons.partners.apply_as_partner(
        lure, contact_name=lure, contact_email="victim@example.org", as_of=date(2026, 1, 20)
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        coupons.partners.decline_partner(
            partner, by=support, reason="Not a program.", as_of=date(2026, 1, 21)
        )
    [message] = mail.outbox
    assert message.subject == f"Your accelerator partner application #{partner.pk}"
    assert "Not a program." in message.body and "20 Jan 2026" in message.body
    for body in [message.body, *(html for html, _ in message.alternatives)]:
        assert "evil.example" not in body
