"""R7: public forms are limited per client address across all server processes (a shared
cache, Redis in production), behind a configured number of trusted proxies; only accepted
submissions count toward the limit (billing/ratelimit.py, used by both public forms)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from django.urls import reverse

from billing import ratelimit
from coupons.models import AcceleratorPartner
from startups.models import StartupApplication
from tests.coupons.factories import PARTNER_FORM
from tests.services import clean_env, require_redis
from tests.startups.factories import APPLICATION_FORM
from tests.test_settings import load_settings, reported

REPO = Path(__file__).resolve().parents[2]
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
# What a person gets wrong on each public form: refused, so never counted against the address.
STARTUP_MISTAKES = {"company_name": "", "total_funding": "-1"}
PARTNER_MISTAKES = {"name": "", "contact_email": "mira@"}


def request_from(remote_addr="203.0.113.1", forwarded=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().post("/", REMOTE_ADDR=remote_addr, **extra)


# --- who the client is -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        pytest.param(0, "203.0.113.1", "198.51.100.7", "203.0.113.1", id="no-proxy-ignores-xff"),
        pytest.param(1, "10.0.0.2", "198.51.100.7", "198.51.100.7", id="one-proxy"),
        pytest.param(
            1, "10.0.0.2", "192.0.2.66, 198.51.100.7", "198.51.100.7", id="one-proxy-spoofed"
        ),
        pytest.param(
            2, "10.0.0.3", "192.0.2.66,198.51.100.7, 10.0.0.2", "198.51.100.7", id="two-proxies"
        ),
        pytest.param(2, "10.0.0.3", "198.51.100.7", "10.0.0.3", id="too-few-entries"),
        pytest.param(1, "10.0.0.2", None, "10.0.0.2", id="no-header"),
        pytest.param(1, "10.0.0.2", "", "10.0.0.2", id="empty-header"),
        pytest.param(1, "10.0.0.2", "198.51.100.7, not-an-ip", "10.0.0.2", id="not-an-ip"),
        # An IPv6 client is counted by its /64 (the security audit's seven applications from
        # 2001:db8::1 … ::7 were all taken), an IPv4 one written as IPv6 as itself.
        pytest.param(1, "10.0.0.2", "2001:DB8:0::1", "2001:db8::", id="ipv6-canonical"),
        pytest.param(1, "10.0.0.2", "2001:db8::7", "2001:db8::", id="ipv6-same-64"),
        pytest.param(1, "10.0.0.2", "2001:db8:0:1::1", "2001:db8:0:1::", id="ipv6-next-64"),
        pytest.param(0, "2001:db8::5", None, "2001:db8::", id="ipv6-remote"),
        pytest.param(1, "10.0.0.2", "::ffff:5.5.5.5", "5.5.5.5", id="ipv4-mapped"),
        # Some proxies add the client's port: every client behind them shared the proxy's
        # address, and with it one limit (and one sign-in lockout, R6).
        pytest.param(1, "10.0.0.2", "198.51.100.7:41234", "198.51.100.7", id="with-port"),
        pytest.param(1, "10.0.0.2", "[2001:db8::1]:41234", "2001:db8::", id="ipv6-with-port"),
        pytest.param(1, "10.0.0.2", "198.51.100.7:x:y", "10.0.0.2", id="not-an-ip-with-colons"),
        pytest.param(0, "", None, None, id="no-address-at-all"),
    ],
)
def test_r7_client_address_behind_trusted_proxies(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies

    assert ratelimit.client_address(request_from(remote, forwarded)) == expected


def test_r7_trusted_proxy_count_defaults_to_zero_and_comes_from_the_environment():
    report = '{"proxies": settings.TRUSTED_PROXY_COUNT}'

    assert reported(load_settings(report, DEBUG="true")) == {"proxies": 0}
    assert reported(load_settings(report, DEBUG="true", TRUSTED_PROXY_COUNT="2")) == {"proxies": 2}


# --- the shared cache ----------------------------------------------------------------------------


def test_r7_cache_url_defaults_to_memory_and_redis_urls_use_djangos_redis_backend():
    report = '{key: settings.CACHES["default"].get(key) for key in ("BACKEND", "LOCATION")}'

    default = reported(load_settings(report, DEBUG="true"))
    production = reported(load_settings(report, DEBUG="true", CACHE_URL="redis://127.0.0.1:6379/1"))

    assert default["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert production == {"BACKEND": REDIS_CACHE, "LOCATION": "redis://127.0.0.1:6379/1"}


def test_r7_cache_url_key_prefix_reaches_django():
    # Several environments may share one Redis: each gives its keys a prefix.
    report = '{key: settings.CACHES["default"].get(key) for key in ("KEY_PREFIX", "TIMEOUT")}'
    config = reported(
        load_settings(
            report, DEBUG="true", CACHE_URL="redis://127.0.0.1:6379/1?key_prefix=staging&timeout=60"
        )
    )

    assert config == {"KEY_PREFIX": "staging", "TIMEOUT": 60}


# --- the limit -----------------------------------------------------------------------------------


def test_r7_the_limit_counts_per_form_and_per_address(settings):
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    first, second = request_from("203.0.113.1"), request_from("203.0.113.2")

    assert [ratelimit.count_submission(first, "a") for _ in range(2)] == [1, 2]
    assert ratelimit.limit_reached(first, "a")
    assert not ratelimit.limit_reached(first, "b")
    assert not ratelimit.limit_reached(second, "a")


@pytest.mark.parametrize(
    "url, good, bad, model",
    [
        ("startups:apply", APPLICATION_FORM, STARTUP_MISTAKES, StartupApplication),
        ("coupons:partner_apply", PARTNER_FORM, PARTNER_MISTAKES, AcceleratorPartner),
    ],
    ids=["startup-form", "partner-form"],
)
def test_r7_refused_submissions_do_not_count_accepted_ones_do(
    client, db, settings, url, good, bad, model
):
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    address = {"REMOTE_ADDR": "203.0.113.40"}
    name_field = "company_name" if model is StartupApplication else "name"

    # Invalid forms (and a bot's honeypot) are refused: any number of them costs nothing.
    for _ in range(6):
        assert client.post(reverse(url), {**good, **bad}, **address).status_code == 200
    honeypot = "nickname" if model is StartupApplication else "fax"
    assert client.post(reverse(url), {**good, honeypot: "bot"}, **address).status_code == 302
    assert not model.objects.exists()

    for n in range(2):
        accepted = client.post(reverse(url), {**good, name_field: f"Applicant {n}"}, **address)
        assert accepted.status_code == 302
    refused = client.post(reverse(url), {**good, name_field: "One too many"}, **address)

    assert refused.status_code == 429
    assert model.objects.count() == 2


def test_r7_a_duplicate_refused_by_the_service_does_not_count(client, db, settings):
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    url = reverse("coupons:partner_apply")
    client.post(url, PARTNER_FORM)
    for _ in range(3):  # "has applied already": refused, so not counted
        assert "has applied already" in client.post(url, PARTNER_FORM).content.decode()

    assert client.post(url, {**PARTNER_FORM, "name": "Second Program"}).status_code == 302
    assert client.post(url, {**PARTNER_FORM, "name": "Third Program"}).status_code == 429


def test_r7_behind_a_proxy_the_forwarded_address_is_the_key_and_spoofing_does_not_help(
    client, db, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    url = reverse("startups:apply")
    proxy = {"REMOTE_ADDR": "10.0.0.2"}  # every request arrives from the proxy

    for n in range(2):
        response = client.post(
            url,
            {**APPLICATION_FORM, "company_name": f"Co {n}"},
            HTTP_X_FORWARDED_FOR="198.51.100.20",
            **proxy,
        )
        assert response.status_code == 302
    # The client writes its own X-Forwarded-For; the proxy appends the real address.
    spoofed = client.post(
        url,
        {**APPLICATION_FORM, "company_name": "Spoofed"},
        HTTP_X_FORWARDED_FOR="192.0.2.99, 198.51.100.20",
        **proxy,
    )
    assert spoofed.status_code == 429
    # Another client behind the same proxy has its own count.
    other = client.post(
        url,
        {**APPLICATION_FORM, "company_name": "Other"},
        HTTP_X_FORWARDED_FOR="198.51.100.21",
        **proxy,
    )
    assert other.status_code == 302
    assert StartupApplication.objects.count() == 3


# --- across processes, on Redis ------------------------------------------------------------------

COUNT_IN_A_PROCESS = """
import json
import sys

import django

django.setup()
from django.test import RequestFactory

from billing import ratelimit

form, times = sys.argv[1], int(sys.argv[2])
request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.77")
print(json.dumps([ratelimit.count_submission(request, form) for _ in range(times)]))
"""


@pytest.fixture
def redis_cache_url(settings):
    """A Redis for the cache: CACHE_URL when it is Redis, else the Celery broker's Redis."""
    url = settings.CACHES["default"]["LOCATION"]
    if settings.CACHES["default"]["BACKEND"] != REDIS_CACHE:
        url = settings.CELERY_BROKER_URL
    require_redis(url)
    return url


@pytest.mark.redis
def test_r7_the_limit_holds_across_processes_on_redis(client, db, settings, redis_cache_url):
    form = "startup-apply"
    # Processes and this test share one Redis; a unique prefix keeps this run's keys apart.
    prefix = f"test-r7-{uuid.uuid4().hex}"
    cache_url = f"{redis_cache_url}?key_prefix={prefix}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", COUNT_IN_A_PROCESS, form, "4"],
            cwd=REPO,
            env=clean_env(
                DJANGO_SETTINGS_MODULE="config.settings", DEBUG="true", CACHE_URL=cache_url
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    counts = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        counts += json.loads(out.strip().splitlines()[-1])

    # INCR is atomic: twelve submissions from three processes got twelve distinct counts.
    assert sorted(counts) == list(range(1, 13))

    settings.CACHES = {
        "default": {"BACKEND": REDIS_CACHE, "LOCATION": redis_cache_url, "KEY_PREFIX": prefix}
    }
    settings.PUBLIC_FORM_RATE_LIMIT = 12
    try:
        # This process sees the other processes' count: the public form refuses the address.
        refused = client.post(
            reverse("startups:apply"), APPLICATION_FORM, REMOTE_ADDR="203.0.113.77"
        )
        assert refused.status_code == 429
        accepted = client.post(
            reverse("startups:apply"), APPLICATION_FORM, REMOTE_ADDR="203.0.113.78"
        )
        assert accepted.status_code == 302
        assert ratelimit.submissions(request_from("203.0.113.78"), form) == 1
    finally:
        for address in ("203.0.113.77", "203.0.113.78"):
            cache.delete(f"public-form:{form}:{address}")


def test_r7_a_submission_handled_while_another_is_in_its_service_still_counts(
    db, settings, monkeypatch
):
    """Two processes take a submission from one address at the same moment, with a limit of
    1 an hour: the second request arrives while the first is inside its service. Checked
    before either was counted, both got in; a place is now taken before the service runs."""
    from django.test import Client

    from startups import forms as startup_forms

    settings.PUBLIC_FORM_RATE_LIMIT = 1
    cache.clear()
    url = reverse("startups:apply")
    address = {"REMOTE_ADDR": "203.0.113.90"}
    submit = startup_forms.services.submit_application
    second = []

    def another_request_arrives(**answers):
        if not second:
            second.append(
                Client().post(url, {**APPLICATION_FORM, "company_name": "Second Co"}, **address)
            )
        return submit(**answers)

    monkeypatch.setattr(startup_forms.services, "submit_application", another_request_arrives)
    first = Client().post(url, {**APPLICATION_FORM, "company_name": "First Co"}, **address)
    assert (first.status_code, second[0].status_code) == (302, 429)
    assert list(StartupApplication.objects.values_list("company_name", flat=True)) == ["First Co"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_r7_eight_requests_at_once_from_one_address_get_the_limit_and_no_more(
    settings, run_together
):
    from django.db import connection
    from django.test import Client

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: one connection per concurrent request")
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    cache.clear()
    url = reverse("startups:apply")

    def post(n):
        return lambda: (
            Client()
            .post(url, {**APPLICATION_FORM, "company_name": f"Co {n}"}, REMOTE_ADDR="203.0.113.91")
            .status_code
        )

    statuses = run_together(*(post(n) for n in range(8)))
    assert sorted(statuses) == [302, 302] + [429] * 6
    assert StartupApplication.objects.count() == 2
