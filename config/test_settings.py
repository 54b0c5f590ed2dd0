"""Settings for the test suite: a real PostgreSQL and Redis, everything else on loopback."""

import os
from urllib.parse import urlsplit

# A DATABASE_URL, REDIS_URL (its databases 1 and 2), CACHE_URL or CELERY_BROKER_URL already in the
# environment wins; otherwise the PostgreSQL and Redis that scripts/ensure_services.sh starts.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault(
    "CACHE_URL", urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))._replace(path="/1").geturl()
)
os.environ.setdefault(
    "CELERY_BROKER_URL", urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))._replace(path="/2").geturl()
)
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-that-is-long-enough-for-hmac-sha256")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("PUBLIC_BASE_URL", "http://testserver")
os.environ.setdefault("RUNNINGHUB_API_KEY", "sim-api-key")
os.environ.setdefault("RUNNINGHUB_BASE_URL", "http://127.0.0.1:9")
os.environ.setdefault("RUNNINGHUB_WEBAPP_ID", "1937084629516193794")
os.environ.setdefault("RUNNINGHUB_WEBHOOK_SECRET", "test-webhook-secret")
os.environ.setdefault("INPUT_URL_ALLOWED_HOSTS", "images.example.com")
# The RunningHub simulator serves result files on 127.0.0.1.
os.environ.setdefault("PROVIDER_URL_ALLOW_LOOPBACK", "true")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Pages rendered by the test client need no collectstatic run; the browser tests collect the files
# and serve them through the production storage and WhiteNoise (tasks/tests/test_admin_browser.py).
# No collected files to serve here (WhiteNoise would warn about a missing folder on every start).
STATIC_ROOT = None  # type: ignore[assignment]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
