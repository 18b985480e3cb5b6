"""Test settings: the real settings with the test doubles Django and Celery provide."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run in-process unless a test starts a real worker (tests/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
SECURE_SSL_REDIRECT = False
PRIVATE_MEDIA_ROOT = MEDIA_ROOT = BASE_DIR / "test-artifacts" / "private-media"  # noqa: F405
# Tests run with DEBUG off and no collectstatic: plain names instead of the manifest's hashed ones
# (the hashed files and their cache headers are checked by .ci/run against gunicorn).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# No collectstatic before tests: WhiteNoise looks files up per request instead of at start-up.
WHITENOISE_AUTOREFRESH = True
