"""R6: staff sign-in is throttled. After 5 failed attempts for one username or from one client
address within 15 minutes, sign-in is refused for 15 minutes with a message, and the lockout
is logged (django-axes, configured in config/settings.py).

Sign-ins go through the real admin login page, so axes sees the request like in production.
"Fifteen minutes later" is made by moving the recorded attempts and failures back in time.
"""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.services import PRODUCTION_CACHE_URL
from tests.test_settings import load_settings, reported

PASSWORD = "pass-for-tests"
ADDRESS = "203.0.113.5"


def sign_in(client, username, password, *, address=ADDRESS, **extra):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        **extra,
    )


def signed_in(client, response) -> bool:
    return response.status_code == 302 and SESSION_KEY in client.session


def locked_out(response) -> bool:
    page = response.content.decode()
    return (
        response.status_code == 429
        and "Too many failed sign-ins" in page
        and "Try again in 15 minutes" in page
    )


def fail(client, username, times, *, address=ADDRESS, **extra):
    return [sign_in(client, username, "wrong", address=address, **extra) for _ in range(times)]


def move_attempts_back(minutes, seconds=0):
    for model in (AccessAttempt, AccessFailureLog):
        for attempt in model.objects.all():
            attempt.attempt_time -= timedelta(minutes=minutes, seconds=seconds)
            attempt.save(update_fields=["attempt_time"])


def test_r6_production_settings_throttle_sign_in():
    config = reported(
        load_settings(
            '{"backends": settings.AUTHENTICATION_BACKENDS, "last": settings.MIDDLEWARE[-1],'
            ' "apps": "axes" in settings.INSTALLED_APPS, "enabled": settings.AXES_ENABLED,'
            ' "limit": settings.AXES_FAILURE_LIMIT,'
            ' "cooloff": settings.AXES_COOLOFF_TIME.total_seconds(),'
            ' "by": settings.AXES_LOCKOUT_PARAMETERS, "ip": settings.AXES_CLIENT_IP_CALLABLE,'
            ' "handler": settings.AXES_HANDLER, "log": settings.AXES_ENABLE_ACCESS_FAILURE_LOG,'
            ' "template": settings.AXES_LOCKOUT_TEMPLATE}',
            DEBUG="false",
            SECRET_KEY="a-long-random-production-secret-key-for-this-settings-test",
            CACHE_URL=PRODUCTION_CACHE_URL,
        )
    )

    assert config == {
        "backends": [
            "axes.backends.AxesStandaloneBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        "last": "axes.middleware.AxesMiddleware",
        "apps": True,
        "enabled": True,
        "limit": 5,
        "cooloff": 900.0,
        "by": ["username", "ip_address"],
        "ip": "billing.ratelimit.client_address",
        "handler": "billing.signin_throttle.SlidingWindowHandler",
        "log": True,
        "template": "registration/lockout.html",
    }


def test_r6_four_failures_then_the_right_password_signs_in(client, support):
    for response in fail(client, support.username, 4):
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()

    response = sign_in(client, support.username, PASSWORD)

    assert signed_in(client, response)
    assert AccessLog.objects.filter(username=support.username, ip_address=ADDRESS).exists()


@pytest.mark.parametrize(
    "next_", ["https://evil.example.com/", "//evil.example.com/", "javascript:alert(1)", ""]
)
def test_r6_an_off_site_next_signs_in_to_the_admin_index(client, support, next_):
    """A sign-in link whose `next` is off site (or missing) lands on the admin's index, not
    on /accounts/profile/, a 404."""
    response = client.post(
        reverse("admin:login") + "?next=" + next_,
        {"username": support.username, "password": PASSWORD, "next": next_},
        REMOTE_ADDR=ADDRESS,
    )
    assert signed_in(client, response)
    assert response["Location"] == reverse("admin:index")


def test_r6_five_wrong_passwords_lock_the_username_and_the_lockout_is_logged(
    client, support, caplog
):
    caplog.set_level(logging.WARNING, logger="axes")
    *first, fifth = fail(client, support.username, 5)

    assert all(response.status_code == 200 for response in first)
    assert locked_out(fifth)
    page = fifth.content.decode()
    assert "5 wrong attempts" in page and "Sign-in locked" in page

    # The right password is refused too, with the same message.
    right = sign_in(client, support.username, PASSWORD)
    assert locked_out(right)
    assert SESSION_KEY not in client.session

    attempt = AccessAttempt.objects.get(username=support.username)
    assert (attempt.ip_address, attempt.failures_since_start) == (ADDRESS, 6)
    assert not AccessLog.objects.exists()
    lockouts = [r for r in caplog.records if "Locking out" in r.getMessage()]
    assert lockouts and all(r.levelno == logging.WARNING for r in lockouts)


def test_r6_the_lockout_log_names_the_username_and_the_address_on_one_line(client, support, caplog):
    """The lockout was logged as `{username: "********************", ip_address: "****…"}`
    (django-axes masks both by default), so the log could not say who was locked out or from
    where (attacker's walk 8). It names them now, escaped: a username with a line break in it
    cannot write a line of its own into the log."""
    caplog.set_level(logging.WARNING, logger="axes")
    forged = "x\n2026-12-05 09:00:00,000 WARNING axes.handlers.database FORGED"

    fail(client, support.username, 5)
    fail(client, forged, 5, address="198.51.100.7")

    lockouts = [r.getMessage() for r in caplog.records if "Locking out" in r.getMessage()]
    assert any(
        f'username: "{support.username}", ip_address: "{ADDRESS}"' in line for line in lockouts
    )
    assert any(
        'username: "x\\n2026-12-05 09:00:00,000 WARNING axes.handlers.database FORGED", '
        'ip_address: "198.51.100.7"' in line
        for line in lockouts
    )
    assert all("\n" not in line and "****" not in line for line in lockouts)


def test_r6_a_locked_username_is_refused_from_any_address(client, support):
    fail(client, support.username, 5, address="203.0.113.5")

    assert locked_out(sign_in(client, support.username, PASSWORD, address="198.51.100.9"))


def test_r6_five_failures_from_one_address_lock_it_for_every_username(client, support, finance):
    responses = [sign_in(client, f"guess-{n}", "wrong", address="203.0.113.66") for n in range(5)]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert locked_out(responses[-1])
    # A real user from that address is refused as well...
    assert locked_out(sign_in(client, support.username, PASSWORD, address="203.0.113.66"))
    # ...while the same user elsewhere, and other users, are not affected.
    assert signed_in(client, sign_in(client, finance.username, PASSWORD, address="198.51.100.9"))


def test_r6_an_ipv6_client_is_one_address_across_its_64(client, support, finance):
    """The security audit: a client with an IPv6 /64 (any home or office network) sprayed
    passwords from 2001:db8::1, ::2, … each a fresh address to the throttle. Five failures from
    one /64 lock it; the next /64 is another client."""
    responses = [
        sign_in(client, f"guess-{n}", "wrong", address=f"2001:db8::{n + 1}") for n in range(5)
    ]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert locked_out(sign_in(client, support.username, PASSWORD, address="2001:db8::ffff"))
    assert signed_in(client, sign_in(client, finance.username, PASSWORD, address="2001:db8:0:1::1"))


def test_r6_sign_in_works_again_after_15_minutes(client, support):
    fail(client, support.username, 5)

    move_attempts_back(minutes=14)
    assert locked_out(sign_in(client, support.username, PASSWORD))

    # That attempt started the 15 minutes again; once they are over the right password works.
    move_attempts_back(minutes=15, seconds=1)
    response = sign_in(client, support.username, PASSWORD)

    assert signed_in(client, response)
    assert response.url == "/admin/"


def test_r6_failures_older_than_15_minutes_do_not_count(client, support):
    fail(client, support.username, 4)
    move_attempts_back(minutes=15, seconds=1)

    assert sign_in(client, support.username, "wrong").status_code == 200
    assert signed_in(client, sign_in(client, support.username, PASSWORD))


def test_r6_five_failures_spread_over_more_than_15_minutes_do_not_lock(client, support):
    # One failure every 14 minutes: never more than two within any 15 minutes.
    for _ in range(4):
        assert sign_in(client, support.username, "wrong").status_code == 200
        move_attempts_back(minutes=14)

    assert sign_in(client, support.username, "wrong").status_code == 200
    assert signed_in(client, sign_in(client, support.username, PASSWORD))


def test_r6_failures_from_one_address_count_within_15_minutes_only(client, support):
    for n in range(4):
        sign_in(client, f"guess-{n}", "wrong", address="203.0.113.66")
        move_attempts_back(minutes=14)

    assert sign_in(client, "guess-4", "wrong", address="203.0.113.66").status_code == 200
    assert signed_in(client, sign_in(client, support.username, PASSWORD, address="203.0.113.66"))


def test_r6_the_lockout_lasts_15_minutes_after_the_failure_that_set_it(client, support):
    fail(client, support.username, 4)
    move_attempts_back(minutes=10)
    assert locked_out(fail(client, support.username, 1)[0])  # 5 within 10 minutes

    # Six minutes on, the first four failures are 16 minutes old: the lockout still holds.
    move_attempts_back(minutes=6)
    assert locked_out(sign_in(client, support.username, PASSWORD))

    move_attempts_back(minutes=15, seconds=1)
    assert signed_in(client, sign_in(client, support.username, PASSWORD))


def test_r6_a_client_that_keeps_guessing_stays_locked(client, support):
    fail(client, support.username, 5)
    for _ in range(15):  # a guess every 2 minutes for half an hour: 7 or 8 in any 15
        move_attempts_back(minutes=2)
        assert locked_out(sign_in(client, support.username, "wrong"))
    # Then it waits; 15 minutes after its last guess the right password works again.
    move_attempts_back(minutes=15, seconds=1)
    assert signed_in(client, sign_in(client, support.username, PASSWORD))


def test_r6_support_can_lift_a_lockout_by_username_or_address(client, support, finance):
    fail(client, support.username, 5)
    call_command("axes_reset_username", support.username)
    assert signed_in(client, sign_in(client, support.username, PASSWORD))

    client.logout()
    for n in range(5):
        sign_in(client, f"guess-{n}", "wrong", address="203.0.113.66")
    call_command("axes_reset_ip", "203.0.113.66")
    assert signed_in(client, sign_in(client, finance.username, PASSWORD, address="203.0.113.66"))


def test_r6_behind_a_proxy_the_forwarded_client_address_is_throttled(client, support, settings):
    # The throttle and the public-form limit share billing.ratelimit.client_address.
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for n in range(5):
        sign_in(
            client,
            f"guess-{n}",
            "wrong",
            address=proxy,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.70",  # left entries are invented
        )

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.70"}
    locked = sign_in(
        client, support.username, PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.70"
    )
    assert locked_out(locked)
    # Another client behind the same proxy signs in.
    other = sign_in(
        client, support.username, PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.71"
    )
    assert signed_in(client, other)


def change_password(client, old, new="A-new-Passw0rd-for-tests!", *, address=ADDRESS):
    return client.post(
        reverse("admin:password_change"),
        {"old_password": old, "new_password1": new, "new_password2": new},
        REMOTE_ADDR=address,
    )


def test_r6_wrong_old_passwords_on_the_change_page_count_as_failed_sign_ins(client, support):
    """The password-change page checked the old password without the throttle: a session left
    open (or taken) could guess it without limit, 8 wrong guesses in a row answered "entered
    incorrectly" with no failure recorded (attacker's walk 8). Each wrong old password is now a
    failed sign-in of that user: the fifth locks the account out (R6) and, while locked, the
    right old password changes nothing either."""
    client.force_login(support)

    *first, fifth = [change_password(client, "wrong") for _ in range(5)]

    assert all(r.status_code == 200 for r in first)
    assert "Your old password was entered incorrectly" in first[0].content.decode()
    assert locked_out(fifth)
    assert AccessFailureLog.objects.filter(username=support.username).count() == 5
    assert locked_out(change_password(client, PASSWORD))
    support.refresh_from_db()
    assert support.check_password(PASSWORD)
    assert locked_out(sign_in(Client(), support.username, PASSWORD, address="198.51.100.9"))


def test_r6_the_right_old_password_changes_it_and_keeps_the_session(client, support):
    client.force_login(support)
    page = client.get(reverse("admin:password_change")).content.decode()
    assert "Billing back office" in page and 'name="old_password"' in page  # the admin's page

    response = change_password(client, PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:password_change_done")
    support.refresh_from_db()
    assert support.check_password("A-new-Passw0rd-for-tests!")
    assert client.get(reverse("admin:index")).status_code == 200
    assert not AccessFailureLog.objects.exists()
