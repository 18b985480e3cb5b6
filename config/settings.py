"""Settings, all from the environment (django-environ).

Every variable is listed in README.md. DEBUG and CELERY_TASK_ALWAYS_EAGER default to
production's false, so with no environment at all start-up stops and asks for a SECRET_KEY. A
laptop sets both to true (`make run` does) and runs on a local SQLite file with no broker.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.logs import LOG_FORMATS, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_LAPTOP_SECRET_KEY = "insecure-local-development-key-only-used-when-DEBUG-is-true"
# Keys anyone can read in this repository: whoever knows the key forges sessions and
# password-reset links. The example env file's placeholder is the one a hurried install keeps.
_PUBLISHED_SECRET_KEYS = {_LAPTOP_SECRET_KEY, "change-me-to-a-long-random-string"}
_NEW_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


def _secret_key_problem(key: str) -> str | None:
    """Why `key` cannot sign production's sessions, or None: Django's own measure of a weak
    key (`check --deploy`, security.W009: under 50 characters, under 5 different ones, or
    generated as insecure), or a key published in this repository."""
    if key in _PUBLISHED_SECRET_KEYS:
        return "it is published in this repository, for anyone to read"
    if key.startswith("django-insecure-"):
        return "it was generated as an insecure development key"
    if len(key) < 50 or len(set(key)) < 5:
        return (
            f"it has {len(key)} characters, {len(set(key))} different; at least 50 and 5 are needed"
        )
    return None


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Production settings (DEBUG=false) need a long random "
            "SECRET_KEY in the environment; for a laptop, set DEBUG=true."
        )
    SECRET_KEY = _LAPTOP_SECRET_KEY
elif not DEBUG and (_problem := _secret_key_problem(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"SECRET_KEY is not fit for production (DEBUG=false): {_problem}. Set a long random "
        f"one, e.g. from `{_NEW_SECRET_KEY}`."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "django_countries",
    "simple_history",
    "axes",
    "billing.apps.BillingConfig",
    "coupons.apps.CouponsConfig",
    "startups.apps.StartupsConfig",
]

MIDDLEWARE = [
    # One log line per request, with its id (config/logs.py): first, so everything counts.
    "config.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A Content-Security-Policy on every HTML page (config/content_policy.py).
    "config.content_policy.ContentPolicyMiddleware",
    # A NUL in the query string is a 400 before any view passes it to the database.
    "config.nul_guard.NulGuardMiddleware",
    # Static files (the admin's CSS and JavaScript) from the app itself, before sessions.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A body larger than the sender may send is refused by its declared size, before the CSRF
    # check reads it (config/body_limit.py).
    "config.body_limit.BodyLimitMiddleware",
    # Pages for a signed-in user are kept by no cache (config/private_pages.py).
    "config.private_pages.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records request.user on every history row (SPEC R4: who changed what).
    "simple_history.middleware.HistoryRequestMiddleware",
    # Turns a sign-in refused by the throttle into the lockout page (SPEC R6). Keep it last.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database that accepts the connection and never answers (a failover, a stuck server)
    # fails a page or a task after this many seconds, instead of holding it until gunicorn or
    # the task's time limit kills it. A connect_timeout in DATABASE_URL's query wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves requests on threads (two tabs, a double click): a transaction
    # takes the write lock when it begins and another waits for it, instead of failing with
    # "database is locked" when both read, then write (an attacker's walk got 500s).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Where sign-in goes when `?next=` is missing or off-site (Django's default is a 404 here).
LOGIN_REDIRECT_URL = "admin:index"

# Sign-in throttling (SPEC R6), by django-axes: the first backend refuses a locked-out client
# before ModelBackend checks the password. 5 failures for one username or one client address
# (either one locks) within 15 minutes lock sign-in for 15 minutes. Attempts and sign-ins are
# kept as AccessAttempt/AccessLog rows (axes' database handler), every failure as an
# AccessFailureLog row, which the handler counts over the last 15 minutes (billing.signin_throttle),
# and each failure and lockout is logged as a warning by the "axes" logger.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "billing.signin_throttle.SlidingWindowHandler"
# Without it every process and command starts its log with "AXES: BEGIN version …" at INFO.
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not wipe the failures: with one valid account an attacker could otherwise
# reset the address's count (and with it other usernames' rows from that address) at will.
AXES_RESET_ON_SUCCESS = False
# An attempt while locked out (even with the right password) is recorded as a failure, so a
# guesser who keeps trying stays locked; the lockout page's "try again in 15 minutes" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
# The same client address as the public-form rate limiter (behind TRUSTED_PROXY_COUNT proxies).
AXES_CLIENT_IP_CALLABLE = "billing.ratelimit.client_address"
# axes' lines (a lockout, R6) name the username and the address, the one place the logs hold an
# address: a lockout is read for who was locked out and from where.
AXES_CLIENT_STR_CALLABLE = "billing.signin_throttle.client_str"
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"

LANGUAGE_CODE = "en-us"
# Admin dates read "1 Dec 2026", as the templates' `day` filter writes them (config/formats).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Uploaded documents (exemption certificates, non-profit proofs) are private: kept outside the
# static tree and served only through views that check permissions, never by the web server.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / "private-media")
MEDIA_ROOT = PRIVATE_MEDIA_ROOT
# No URL pattern serves this prefix: documents go out only through permission-checked views.
MEDIA_URL = "/private-media-not-served/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed copies made by collectstatic, served by WhiteNoise with a one-year
    # immutable Cache-Control (with DEBUG, files come straight from the apps, unhashed).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

EMAIL_CONFIG = env.email("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Seconds an SMTP server may take to answer before the send counts as failed (and is retried):
# without it a server that accepts and never answers holds the task until its time limit. A
# send task starts emails for 150 s (half its soft limit): against a hung server, 15 of them.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Billing <billing@example.com>")

# The seller on invoice and credit-note documents (SPEC I5); address lines separated by ";".
SELLER_NAME = env.str("SELLER_NAME", default="Example Analytics, Inc.")
SELLER_ADDRESS = env.str(
    "SELLER_ADDRESS", default="548 Market Street; San Francisco, CA 94104; United States"
)

# Security: strict by default, relaxed only by DEBUG for the laptop.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
# A staff sign-in lasts a working day, not Django's two weeks: a laptop left signed in to the
# billing back office is closed to the next person by the next morning.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Set to false on purpose behind a proxy that redirects already (README): `check --deploy`'s
# warning that it is off is then that decision, not a slip. Left unset, it stays on.
SILENCED_SYSTEM_CHECKS = [] if SECURE_SSL_REDIRECT else ["security.W008"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A load balancer probes the backend over plain HTTP without X-Forwarded-Proto; a redirect to
# HTTPS would read as "down". /healthz carries no data and sets no cookie.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
# Every subdomain, and the browsers' preload list, are the domain owner's call: an internal
# service on plain HTTP under the same domain stops opening for a year. On by default
# (`check --deploy` asks for both); `false` where the portal's domain is shared.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Celery: JSON only, late acks so a killed worker's task is redelivered, hard limits so a stuck
# task cannot hold a worker forever. Tasks are idempotent, which makes redelivery safe.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# One Redis may serve several environments: each gives its workers and tasks its own queue.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# Redis hands a task not acknowledged within this many seconds (it runs, or waits for its
# retry's countdown) to another worker: every task's hard time limit and longest retry
# countdown stay under it (tests/test_celery_worker.py checks each registered task).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Workers log through LOGGING below (JSON in production) instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # D1: shortly after midnight UTC, for the day that has just ended.
    "daily-billing-cycle": {
        "task": "billing.tasks.run_daily_billing",
        "schedule": crontab(hour=0, minute=15),
    },
    # A day whose month close finished while the broker was down goes on (D1).
    "resume-billing-day": {
        "task": "billing.tasks.resume_billing_day",
        "schedule": crontab(minute="*/5"),
    },
    # The outbox's sweep: emails left pending (broker down at commit) are sent again.
    "sweep-stuck-emails": {
        "task": "billing.tasks.sweep_stuck_emails",
        "schedule": crontab(minute="*/5"),
    },
    # Usage import jobs left queued the same way are handed to a worker again.
    "sweep-stuck-import-jobs": {
        "task": "billing.tasks.sweep_stuck_import_jobs",
        "schedule": crontab(minute="*/5"),
    },
    # Uploaded documents whose row was rolled back or never committed are deleted.
    "sweep-orphan-documents": {
        "task": "billing.tasks.sweep_orphan_documents",
        "schedule": crontab(hour=3, minute=30),
    },
    # The workers' heartbeat: check_billing says so when no worker ran one for 15 minutes. One
    # left in the queue while no worker was up expires instead of running late with the next.
    "worker-heartbeat": {
        "task": "billing.tasks.record_heartbeat",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
}
# An email pending this long with no send attempt is stuck: the sweep sends it again and the
# admin lists it. Longer than the send task's longest wait between retries (10 minutes) and
# the time its batch may take (150 s and the email under way).
EMAIL_STUCK_AFTER_MINUTES = env.int("EMAIL_STUCK_AFTER_MINUTES", default=15)

# One line per record on stderr: JSON in production (LOG_FORMAT=json), plain text on a laptop.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}.")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

# The shared cache: rate limits must hold across processes, so production uses Redis
# (CACHE_URL=redis://127.0.0.1:6379/1). Redis URLs always go to Django's own Redis backend,
# whatever django-environ would pick when django-redis happens to be installed. Set empty
# (`CACHE_URL=` in a .env or a unit file) is unset, as it reads, not "Invalid cache schema".
_cache_url = env.str("CACHE_URL", default="") or "locmemcache://"
_cache = environ.Env.cache_url_config(
    _cache_url,
    backend="django.core.cache.backends.redis.RedisCache"
    if _cache_url.startswith("redis")
    else None,
)
# django-environ spells Django's own options from the query string (?key_prefix=staging) in
# lower case for the Redis backend, where Django would silently ignore them.
_CACHE_OPTIONS = ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION")
CACHES = {
    "default": {(k.upper() if k.upper() in _CACHE_OPTIONS else k): v for k, v in _cache.items()}
}
# R7 counts in the cache: every server process must share it and count atomically. A cache in
# one process's memory counts each gunicorn worker apart, from zero again whenever a worker
# restarts (`max_requests`); a file or database cache shares but counts by read-then-write, so
# concurrent submissions read the same count. Production takes Redis or memcached only.
_COUNTING_CACHES = ("redis.RedisCache", "memcached.PyMemcacheCache", "memcached.PyLibMCCache")
if not DEBUG and not CACHES["default"]["BACKEND"].endswith(_COUNTING_CACHES):
    raise ImproperlyConfigured(
        "CACHE_URL is not set to a cache every server process shares and counts in atomically. "
        "Production settings (DEBUG=false) count the public forms' submissions in it (SPEC R7): "
        "set e.g. CACHE_URL=redis://127.0.0.1:6379/1 (or memcached); for a laptop, set "
        "DEBUG=true."
    )

# Proxies in front of the portal that append to X-Forwarded-For (0: clients connect directly).
# The client address is then the Nth entry from the right (billing/ratelimit.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Public forms (startup program, partner programs): accepted submissions per client address
# per hour (SPEC R7).
PUBLIC_FORM_RATE_LIMIT = env.int("PUBLIC_FORM_RATE_LIMIT", default=5)
# A public form that says whether something exists (the startup form: "No workspace has that
# slug") answers this many misses per client address per hour, then nothing: otherwise anyone
# could list the customers by trying names, refused forms costing nothing under R7.
PUBLIC_FORM_MISS_LIMIT = env.int("PUBLIC_FORM_MISS_LIMIT", default=20)
