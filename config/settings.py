"""Settings, all from the environment (SPEC §7).

With no environment variables at all the project runs on its *embedded default*: SQLite in WAL
mode, a broker on the local filesystem, a local-memory cache, files on local disk and the
RunningHub simulator on loopback. As soon as DATABASE_URL is set the project is a deployment and
every secret must be given explicitly.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

EMBEDDED = not os.environ.get("DATABASE_URL")
VAR_DIR = Path(os.environ.get("DJANGO_VAR_DIR") or BASE_DIR / "var")


def _setting(name: str, parse: Any, default: Any = environ.Env.NOTSET) -> Any:
    """Read one variable; a missing or unparseable value stops start-up with its name."""
    try:
        return parse(name, default=default)
    except (ImproperlyConfigured, ValueError, TypeError, KeyError) as exc:
        if name in os.environ:
            raise ImproperlyConfigured(f"{name} has a bad value: {exc}") from None
        raise ImproperlyConfigured(f"Set the {name} environment variable.") from None


def _strict_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}.")


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, got {value!r}.")
    return value.rstrip("/")


def _rate(name: str, default: str) -> str:
    value: str = _setting(name, env.str, default)
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name} must look like 30/min, got {value!r}.")
    return value


def _secret(name: str, embedded_default: str) -> str:
    value = os.environ.get(name, embedded_default if EMBEDDED else "")
    if not value:
        raise ImproperlyConfigured(
            f"Set the {name} environment variable (it has no default outside the embedded default)."
        )
    return value


def _positive_int(name: str, default: int, maximum: int | None = None) -> int:
    value: int = _setting(name, env.int, default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}.")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value: str = _setting(name, env.str, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


DEBUG = _strict_bool("DJANGO_DEBUG", EMBEDDED)
SECRET_KEY = (
    os.environ.get("DJANGO_SECRET_KEY") or "embedded-default-insecure-key-do-not-deploy"
    if DEBUG and EMBEDDED
    else _secret("DJANGO_SECRET_KEY", "")
)
ALLOWED_HOSTS: list[str] = _setting("DJANGO_ALLOWED_HOSTS", env.list, ["localhost", "127.0.0.1", "[::1]"])

SECURE_SSL_REDIRECT = _strict_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
# A deployment is served over HTTPS (TLS ends at the proxy) whether or not Django redirects.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Asking browsers to hard-code the domain as HTTPS-only is its owner's decision, not a default.
SECURE_HSTS_PRELOAD = _strict_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_structlog",
    "django_celery_beat",
    "core",
    "accounts",
    "quota",
    "tasks",
    "aimodel",
    "media",
]

MIDDLEWARE = [
    # First: every response, errors included, carries X-Request-ID and is timed.
    "core.observability.RequestLogMiddleware",
    "core.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The admin's own static files, compressed and hashed, without a proxy in front (SPEC §8).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "core.middleware.RefuseUnstorableText",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# --- Database -----------------------------------------------------------------------------------
DATABASES = {"default": _setting("DATABASE_URL", env.db, f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if not DATABASES["default"].get("ENGINE"):
    raise ImproperlyConfigured("DATABASE_URL has a bad value: use e.g. postgres://user@host:5432/name.")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web process read while the worker writes; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue on the busy timeout instead of failing mid-transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # An unreachable database fails a request (and /health) in seconds, not after the OS's timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # Parameters travel apart from the statement text, and psycopg prepares a statement once a
    # connection has run it five times: the database parses and plans an order's statements once
    # per connection instead of once per request. A pooler that cannot carry prepared statements
    # (PgBouncer before 1.21 in transaction mode) needs `?server_side_binding=false` on DATABASE_URL.
    _binding = str(DATABASES["default"]["OPTIONS"].get("server_side_binding", "true"))
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = _binding.lower() in ("1", "true", "yes", "on")

# --- Cache (throttles and idempotency locks must be shared by every process in production) ------
CACHES = {"default": _setting("CACHE_URL", env.cache_url, "locmemcache://" if EMBEDDED else environ.Env.NOTSET)}
if "redis" in CACHES["default"]["BACKEND"].lower():
    # A hung Redis fails a throttle check (and /health) in two seconds instead of hanging the request.
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 2, "socket_timeout": 2})

# Long-polling task reads are woken through Redis pub/sub: the cache's Redis when there is one.
TASK_EVENTS_REDIS_URL: str = _setting(
    "TASK_EVENTS_REDIS_URL",
    env.str,
    os.environ.get("CACHE_URL", "") if os.environ.get("CACHE_URL", "").startswith(("redis://", "rediss://")) else "",
)

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL: str = _setting("CELERY_BROKER_URL", env.str, "filesystem://" if EMBEDDED else environ.Env.NOTSET)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    # The filesystem transport cannot publish into a folder that does not exist yet.
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # RabbitMQ (amqp://) takes no options here: it hands a dead consumer's unacknowledged
    # messages to another at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        # Redis gives an unacknowledged message (a killed worker's) to another worker after this
        # long. It must outlast the longest step (CELERY_TASK_TIME_LIMIT) plus the longest countdown
        # a message waits out inside a worker (60 s of back-off), or live messages run twice
        # (harmless, but wasted). A killed worker's task does not wait for it: its lease lapses
        # within 30 s and the sweep queues it again (tasks/lifecycle.py LEASE, tasks/sweep.py).
        CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300 + 60 + 60}
        # Kombu's Redis transport, repaired so a worker outlives a broker outage (config/broker.py).
        CELERY_BROKER_TRANSPORT = "config.broker:Transport"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must not hang a web request: publishing gives up fast and the sweep re-enqueues.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Two pools: "cpu" (basic_clean steps: image work, a prefork worker per core) and "io" (RunningHub
# submit/poll/collect, downloads, cancels, the sweep: waiting on the network, a threads worker), so a
# long cut-out never delays a poll. tasks/queue.py picks the queue of a task's step by its type;
# everything else goes to "io". A worker started without -Q consumes both.
CELERY_TASK_QUEUES = (Queue("cpu", routing_key="cpu"), Queue("io", routing_key="io"))
CELERY_TASK_DEFAULT_QUEUE = "io"
CELERY_TASK_ROUTES = {
    "tasks.sweep": {"queue": "io"},
    "tasks.cancel_vendor_task": {"queue": "io"},
    "accounts.*": {"queue": "io"},
}
# Celery keeps Django's logging (structured lines with the task's context) instead of its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# --- Product settings ---------------------------------------------------------------------------
STORAGE_BACKEND = _choice("STORAGE_BACKEND", "local", ("local", "cos"))
BASIC_CLEAN_ENGINE = _choice("BASIC_CLEAN_ENGINE", "local", ("local", "tencent_ci"))
AUDIT_BACKEND = _choice("AUDIT_BACKEND", "none", ("none", "tencent_ci"))
# Tencent CI moderation answers "review" for doubtful images; a service that sells to the public
# treats them as blocked unless an operator decides otherwise.
AUDIT_REVIEW_BLOCKS = _strict_bool("AUDIT_REVIEW_BLOCKS", True)
COS_AUDIT_BIZTYPE: str = _setting("COS_AUDIT_BIZTYPE", env.str, "")

_needs_cos = STORAGE_BACKEND == "cos" or BASIC_CLEAN_ENGINE == "tencent_ci" or AUDIT_BACKEND == "tencent_ci"
COS_SECRET_ID = _secret("COS_SECRET_ID", "") if _needs_cos else os.environ.get("COS_SECRET_ID", "")
COS_SECRET_KEY = _secret("COS_SECRET_KEY", "") if _needs_cos else os.environ.get("COS_SECRET_KEY", "")
COS_REGION: str = _setting("COS_REGION", env.str, "ap-shanghai")
COS_BUCKET: str = _setting("COS_BUCKET", env.str, "" if not _needs_cos else environ.Env.NOTSET)
COS_ENDPOINT_URL: str = _setting("COS_ENDPOINT_URL", env.str, "")
if COS_ENDPOINT_URL:
    COS_ENDPOINT_URL = _url("COS_ENDPOINT_URL", COS_ENDPOINT_URL)
COS_PRIVATE = _strict_bool("COS_PRIVATE", False)
if (BASIC_CLEAN_ENGINE == "tencent_ci" or AUDIT_BACKEND == "tencent_ci") and STORAGE_BACKEND != "cos":
    raise ImproperlyConfigured("BASIC_CLEAN_ENGINE/AUDIT_BACKEND=tencent_ci need STORAGE_BACKEND=cos.")

PUBLIC_BASE_URL: str = _setting("PUBLIC_BASE_URL", env.str, "http://127.0.0.1:8000" if EMBEDDED else "")
if STORAGE_BACKEND == "local" and not PUBLIC_BASE_URL:
    raise ImproperlyConfigured("Set PUBLIC_BASE_URL: local storage builds file URLs from it.")
if PUBLIC_BASE_URL:
    PUBLIC_BASE_URL = _url("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
INPUT_URL_ALLOWED_HOSTS: list[str] = [h.lower() for h in _setting("INPUT_URL_ALLOWED_HOSTS", env.list, [])]
# Result files named by RunningHub must be on public addresses; the local simulator of the embedded
# default and the tests serves them on loopback, which this lets through (and nothing else private).
PROVIDER_URL_ALLOW_LOOPBACK = _strict_bool("PROVIDER_URL_ALLOW_LOOPBACK", EMBEDDED)

RUNNINGHUB_BASE_URL = _url(
    "RUNNINGHUB_BASE_URL",
    _setting("RUNNINGHUB_BASE_URL", env.str, "http://127.0.0.1:8188" if EMBEDDED else "https://www.runninghub.cn"),
)
RUNNINGHUB_API_KEY = _secret("RUNNINGHUB_API_KEY", "sim-api-key")
RUNNINGHUB_WEBAPP_ID: str = _setting(
    "RUNNINGHUB_WEBAPP_ID", env.str, "1937084629516193794" if EMBEDDED else environ.Env.NOTSET
)
RUNNINGHUB_PROMPT_NODE_ID: str = _setting("RUNNINGHUB_PROMPT_NODE_ID", env.str, "103")
RUNNINGHUB_IMAGE_NODE_ID: str = _setting("RUNNINGHUB_IMAGE_NODE_ID", env.str, "74")
RUNNINGHUB_POLL_INTERVAL = _positive_int("RUNNINGHUB_POLL_INTERVAL", 5)
# Jobs in flight at RunningHub at once, across every worker (a consumer key runs about one).
RUNNINGHUB_MAX_CONCURRENCY = _positive_int("RUNNINGHUB_MAX_CONCURRENCY", 1)
# A model_pose12 job succeeds only with this many images.
RUNNINGHUB_EXPECTED_OUTPUTS = _positive_int("RUNNINGHUB_EXPECTED_OUTPUTS", 12)
# Unfinished (pending + processing) tasks one member may have; a create or batch beyond it is 4029.
MEMBER_MAX_ACTIVE_TASKS = _positive_int("MEMBER_MAX_ACTIVE_TASKS", 100)
# The webhook URL carries this secret because RunningHub does not sign its callbacks.
RUNNINGHUB_WEBHOOK_SECRET = _secret("RUNNINGHUB_WEBHOOK_SECRET", "embedded-webhook-secret")

TASK_PENDING_TIMEOUT = _positive_int("TASK_PENDING_TIMEOUT", 600)
TASK_PROCESSING_TIMEOUT = _positive_int("TASK_PROCESSING_TIMEOUT", 1800)
SWEEP_INTERVAL = _positive_int("SWEEP_INTERVAL", 60)
TASK_COSTS = {
    # Task.cost is a PositiveSmallIntegerField.
    "basic_clean": _positive_int("TASK_COST_BASIC_CLEAN", 1, maximum=32767),
    "model_pose12": _positive_int("TASK_COST_MODEL_POSE12", 1, maximum=32767),
}

# --- Uploads ------------------------------------------------------------------------------------
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_PIXELS = 40_000_000
# Uploads no task was ordered on are deleted after this many days (the sweep cleans them up).
UPLOAD_RETENTION_DAYS = _positive_int("UPLOAD_RETENTION_DAYS", 7)
FETCH_TIMEOUT_SECONDS = 15
FETCH_MAX_REDIRECTS = 3
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

TRUSTED_PROXIES: int = _setting("TRUSTED_PROXIES", env.int, 0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must be 0 or more, got {TRUSTED_PROXIES}.")
# X-Forwarded-Proto is the proxy's word only behind a trusted proxy; without one it is the client's.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None

# --- REST framework and JWT ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.authentication.EnvelopeJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.EnvelopeJSONRenderer"],
    # JSON everywhere; the upload endpoint alone takes multipart (declared on its view).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": _rate("THROTTLE_LOGIN_IP", "20/min"),
        "login_user": _rate("THROTTLE_LOGIN_USER", "5/min"),
        "task_create": _rate("THROTTLE_TASK_CREATE", "30/min"),
        "upload": _rate("THROTTLE_UPLOAD", "30/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Client addresses for the per-address throttles: 0 = the socket's address, X-Forwarded-For
    # ignored; N = the N-th address from the right of X-Forwarded-For (N trusted proxies in front).
    "NUM_PROXIES": TRUSTED_PROXIES,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=_positive_int("JWT_ACCESS_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=_positive_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": SECRET_KEY,
    # Every token carries a fingerprint of the password hash: a password change refuses them all.
    "CHECK_REVOKE_TOKEN": True,
}
# /admin/login/ locks an account after this many wrong passwords (and a client address after the
# second number, whatever accounts it tries) until the lockout time from the first has passed.
ADMIN_LOGIN_MAX_FAILURES = _positive_int("ADMIN_LOGIN_MAX_FAILURES", 5)
ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = _positive_int("ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
ADMIN_LOGIN_LOCKOUT_SECONDS = _positive_int("ADMIN_LOGIN_LOCKOUT_SECONDS", 900)
SPECTACULAR_SETTINGS = {
    "TITLE": "Photo task service API",
    "DESCRIPTION": "AI photo jobs for e-commerce sellers. Every answer is wrapped in the success/error envelope.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Separate request and response components, so that an upload's `file` is binary.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskTypeEnum": "tasks.models.TaskType",
        "TaskStatusEnum": "tasks.models.TaskStatus",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.wrap_in_envelope"],
    # Swagger UI's files come from drf-spectacular-sidecar (served as static files): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- I18n, static, media ------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
# Chinese is the source language of the project's own labels; locale/en translates them, and
# locale/zh_Hans fills what third-party apps leave untranslated. The .mo files are committed.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# Hashed names let browsers cache for ever; `collectstatic` must run before the server starts
# (`make run` does), and a template naming a file it did not collect fails loudly.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"

# Argon2id first (accounts/hashers.py); PBKDF2 stays after it so hashes made before are still
# accepted, and Django re-hashes them with Argon2id at their next login.
PASSWORD_HASHERS = [
    "accounts.hashers.TunedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Staff and superusers open the admin console: 12 characters at least.
    {"NAME": "accounts.validators.StaffMinimumLengthValidator", "OPTIONS": {"min_length": 12}},
]

# --- Operations: logs, metrics, error tracking, CORS -----------------------------------------------
# JSON lines in a deployment (one object per line for the log pipeline), readable lines in the
# embedded default; LOG_FORMAT=json|console overrides.
LOG_FORMAT = _choice("LOG_FORMAT", "console" if EMBEDDED else "json", ("json", "console"))
LOGGING = logging_config(json=LOG_FORMAT == "json", level=_setting("LOG_LEVEL", env.str, "INFO"))
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# core.observability.RequestLogMiddleware has already checked (or replaced) the caller's id.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# GET /metrics answers only with this bearer token (404 while unset).
METRICS_TOKEN: str = _setting("METRICS_TOKEN", env.str, "")
# A Celery worker serves its own metrics on this port when set (0: none); see core/metrics.py.
WORKER_METRICS_PORT: int = _setting("WORKER_METRICS_PORT", env.int, 0)
WORKER_METRICS_ADDR: str = _setting("WORKER_METRICS_ADDR", env.str, "0.0.0.0")  # noqa: S104 (container port)

SENTRY_DSN: str = _setting("SENTRY_DSN", env.str, "")
if SENTRY_DSN:
    # No user data, request bodies or query strings leave the service (config/sentry.py). Imported
    # only when configured: sentry-sdk and its HTTP transport cost every process ~25 MB.
    from config.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=_setting("SENTRY_ENVIRONMENT", env.str, "production"),
        traces_sample_rate=_setting("SENTRY_TRACES_SAMPLE_RATE", env.float, 0.0),
    )

# The web front end's origins (e.g. https://app.example.com); none by default. Bearer tokens, no
# cookies: credentials are not allowed cross-origin.
CORS_ALLOWED_ORIGINS: list[str] = _setting("CORS_ALLOWED_ORIGINS", env.list, [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "Idempotent-Replayed"]
CORS_ALLOW_HEADERS = ("accept", "accept-language", "authorization", "content-type", "idempotency-key", "x-request-id")
