"""Test settings: production mode against the local PostgreSQL and Redis (DATABASE_URL and
REDIS_URL override), with each pytest-xdist worker on its own Redis database."""

from __future__ import annotations

import os

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
# OC_REDIS_DB_BASE and OC_TEST_DB let several test runs share one machine without crosstalk.
_redis_db = (int(os.environ.get("OC_REDIS_DB_BASE", "1")) + int(_worker)) % 16
# The xdist controller imports this module first and its workers inherit its environment, so a
# REDIS_URL chosen here (not by the person running the tests) is chosen again in each worker.
if "REDIS_URL" not in os.environ or os.environ.get("OC_REDIS_URL_FROM_TEST_SETTINGS"):
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{_redis_db}"
    os.environ["OC_REDIS_URL_FROM_TEST_SETTINGS"] = "1"
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "XhwulRtxeiZybrhu4wx6Ti-G6_yBXzzOObUNcI5DKyc=")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("ANYMAIL_WEBHOOK_SECRET", "esp-user:esp-tests-secret")
os.environ.setdefault("OMNICENTER_VAR_DIR", f"/tmp/omnicenter-tests-{os.getpid()}")

from omnicenter.settings import *  # noqa: E402,F403
from omnicenter.settings import VAR_DIR  # noqa: E402

if os.environ.get("OC_TEST_DB"):
    DATABASES["default"]["TEST"] = {"NAME": "test_" + os.environ["OC_TEST_DB"]}  # noqa: F405

# Tests that need a real broker and worker switch eager mode off themselves (tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}  # noqa: F405
