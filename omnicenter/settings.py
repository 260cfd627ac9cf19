"""Omnicenter settings, read from the environment (see .env.example for every variable).

Two run modes, chosen by the environment alone:

* embedded (neither DATABASE_URL nor REDIS_URL): SQLite in var/, the in-memory channel layer,
  Celery tasks run eagerly in the one uvicorn process. For trying it out and development.
* production (both set): PostgreSQL, Redis, real Celery workers and beat.

Setting only one of the two URLs is a configuration error, not a silent half-mode.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from omnicenter import env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.string("OMNICENTER_VAR_DIR", str(BASE_DIR / "var")))

DATABASE_URL = env.string("DATABASE_URL")
REDIS_URL = env.string("REDIS_URL")
if bool(DATABASE_URL) != bool(REDIS_URL):
    raise ImproperlyConfigured(
        "Set both DATABASE_URL and REDIS_URL (production mode) or neither (embedded mode); "
        f"only {'DATABASE_URL' if DATABASE_URL else 'REDIS_URL'} is set."
    )
EMBEDDED = not DATABASE_URL


def _persistent_secret(name: str, factory) -> str:
    """Embedded mode keeps generated secrets in var/ so sessions and encrypted data survive restarts."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(factory())
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = env.string("SECRET_KEY")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY is required in production mode.")
    SECRET_KEY = _persistent_secret("secret_key", lambda: secrets.token_urlsafe(50))

# Channel secrets are encrypted with these, never with SECRET_KEY: rotating one must not break the
# other. The first key encrypts, every key decrypts.
FIELD_ENCRYPTION_KEYS = env.string_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    if not EMBEDDED:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is required in production mode.")
    FIELD_ENCRYPTION_KEYS = [_persistent_secret("field_encryption_key", _fernet_key)]

DEBUG = env.boolean("DEBUG", default=EMBEDDED)
ALLOWED_HOSTS = env.string_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.string_list("CSRF_TRUSTED_ORIGINS")
PUBLIC_BASE_URL = env.string("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Where agent pages open their websocket. Empty means the page's own origin (behind the proxy that
# routes /ws/ to the ASGI service); `make run` in production mode points it at the uvicorn port.
WEBSOCKET_URL = env.string("WEBSOCKET_URL")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "anymail",
    "channels",
    "omnicenter",
    "customers",
    "channels_inbound",
    "tickets",
    "knowledge",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "omnicenter.middleware.UserLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "omnicenter.urls"
WSGI_APPLICATION = "omnicenter.wsgi.application"
ASGI_APPLICATION = "omnicenter.asgi.application"
AUTH_USER_MODEL = "omnicenter.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/app/"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "omnicenter.context_processors.omnicenter",
            ],
        },
    }
]

# --- Database ----------------------------------------------------------------------------------
if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.string("SQLITE_PATH", str(VAR_DIR / "omnicenter.sqlite3")),
            "OPTIONS": {
                # WAL lets readers proceed while the single writer commits; IMMEDIATE avoids the
                # "database is locked" upgrade deadlock between two writing transactions.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env.integer("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channel layer, Celery -------------------------------------------------------------
if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "oc",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    # channels_redis's pub/sub layer: one PUBLISH per group send, fanned out inside each server
    # process. The core layer queues one copy per socket and pays three Redis round trips to
    # deliver each: a web chat message reaches 20 agent sockets through two groups each, and at
    # 100 messages/s agents saw it 3.9 s late (p50) against 32 ms with this layer
    # (docs/performance.md, web chat). Live events are hints either way (clients catch up).
    # Redis pub/sub channels ignore the database number: two deployments (or two test runs) on one
    # Redis server with different databases would hear each other's live events. The prefix
    # carries the database, as the cache's and the broker's keys do.
    _redis_db = (urlsplit(REDIS_URL).path.strip("/") or "0").split("/")[0]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_connect_timeout": 2}], "prefix": f"oc-ws-db{_redis_db}"},
        }
    }
    # CHANNEL_LAYER=core: the queued layer instead. Its defaults (capacity 100, pool 100) dropped
    # half of a 200-message burst and failed websocket handshakes in a 200-connect storm on these
    # machines, so it is sized here.
    if env.string("CHANNEL_LAYER", "pubsub") == "core":
        CHANNEL_LAYERS["default"] = {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env.integer("CHANNELS_REDIS_POOL", 500),
                        "socket_connect_timeout": 2,
                        # Above channels_redis's 5 s BZPOPMIN: redis-py 8 defaults to a 5 s read
                        # timeout, which killed every socket idle for 5 s.
                        "socket_timeout": 15,
                    }
                ],
                "capacity": env.integer("CHANNELS_CAPACITY", 2000),
                "expiry": 30,
                "group_expiry": 86400,
                "prefix": "oc-ws",
            },
        }

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must not hold a webhook answer: publish once, log, let the sweep catch up.
CELERY_TASK_PUBLISH_RETRY = False
# max_retries 0: without it kombu retries the publish connection for ~7 s (its own connect timeout).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1, "socket_timeout": 2, "visibility_timeout": 3600, "max_retries": 0,
}
CELERY_TASK_DEFAULT_QUEUE = "omnicenter"
# Every periodic job lives here (STYLE.md rule 12). Embedded mode runs the same schedule in-process.
CELERY_BEAT_SCHEDULE = {
    "sweep-inbound-events": {"task": "channels_inbound.tasks.sweep_inbound_events", "schedule": 30.0},
    "sweep-outbound-messages": {"task": "channels_inbound.tasks.sweep_outbound_messages", "schedule": 60.0},
    "worker-heartbeat": {"task": "omnicenter.tasks.heartbeat", "schedule": 30.0},
    "poll-mailboxes": {"task": "channels_inbound.tasks.poll_mailboxes", "schedule": float(env.integer("EMAIL_POLL_INTERVAL", 60))},
    "send-nps-surveys": {"task": "tickets.portal.tasks.send_nps_surveys", "schedule": float(env.integer("NPS_RUN_INTERVAL", 3600))},
    "purge-webchat-email-codes": {"task": "channels_inbound.tasks.purge_webchat_email_codes", "schedule": 3600.0},
}

# --- Auth, sessions, security ------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["omnicenter.backends.RoleBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_THROTTLE_ATTEMPTS = env.integer("LOGIN_THROTTLE_ATTEMPTS", 10)
# Reverse proxies in front of the web processes (docker-compose.yml has one: Caddy). Used to find the
# client's address in X-Forwarded-For for per-IP limits; 0 trusts no such header.
NUM_PROXIES = env.integer("NUM_PROXIES", 0 if EMBEDDED else 1)
LOGIN_THROTTLE_WINDOW = env.integer("LOGIN_THROTTLE_WINDOW", 900)
SESSION_COOKIE_AGE = env.integer("SESSION_COOKIE_AGE", 12 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_ENGINE = "django.contrib.sessions.backends.db" if EMBEDDED else "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Agent pages and sign-in send a strict Content-Security-Policy (omnicenter/csp.py); SECURE_CSP stays
# empty so that third-party pages (the API docs, the Django admin) keep working as they ship.
SECURE_CSP: dict = {}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not EMBEDDED:
    _secure = env.boolean("SECURE_COOKIES", True)
    SESSION_COOKIE_SECURE = _secure
    CSRF_COOKIE_SECURE = _secure
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", False)
    # Preloading commits the whole domain to HTTPS in browsers for months; an operator opts in with
    # SECURE_HSTS_PRELOAD=1. Leaving it off is a choice, so `check --deploy` does not warn about it.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
    if env.boolean("TRUST_X_FORWARDED_PROTO", True):
        # Production always sits behind the proxy of docker-compose.yml, which sets this header.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalization ----------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian")), ("pl", _("Polish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.string("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media --------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.string("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.string("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
ATTACHMENT_MAX_BYTES = env.integer("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
INBOUND_MAX_BYTES = env.integer("INBOUND_MAX_BYTES", 40 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INBOUND_MAX_BYTES + 1024 * 1024

# --- Email (outbound notifications; channel mailboxes are configured per channel) ---------------
_email_options = {
    "host": env.string("EMAIL_HOST", "localhost"),
    "port": env.integer("EMAIL_PORT", 25),
    "username": env.string("EMAIL_HOST_USER"),
    "password": env.string("EMAIL_HOST_PASSWORD"),
    "use_tls": env.boolean("EMAIL_USE_TLS", False),
    "use_ssl": env.boolean("EMAIL_USE_SSL", False),
    "timeout": env.integer("EMAIL_TIMEOUT", 20),
}
_email_backend = env.string(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if EMBEDDED else "django.core.mail.backends.smtp.EmailBackend",
)
MAILERS = {
    "default": {
        "BACKEND": _email_backend,
        "OPTIONS": _email_options if _email_backend.endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "Omnicenter <noreply@localhost>")
# anymail's webhooks under /anymail/ (channels_inbound/email/anymail_hooks.py): the shared basic-auth
# secret for every ESP, plus the ESPs that sign their webhooks (Mailgun's HMAC, SendGrid's signed
# event webhook). Postmark and SendGrid's inbound parse rely on basic auth alone; Amazon SES (SNS)
# needs boto3 (django-anymail[amazon-ses]) and basic auth, and SNS's signature is checked too.
ANYMAIL = {
    name: value
    for name, value in {
        "WEBHOOK_SECRET": env.string("ANYMAIL_WEBHOOK_SECRET"),
        "MAILGUN_WEBHOOK_SIGNING_KEY": env.string("MAILGUN_WEBHOOK_SIGNING_KEY"),
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": env.string("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"),
    }.items()
    if value
}
# An insecure anymail configuration stops every process at start rather than warning: without the
# secret the webhooks are not served at all (omnicenter/urls.py), a malformed one is refused here,
# and anymail's "insecure webhook" warning is raised as an error (channels_inbound/apps.py).
if "WEBHOOK_SECRET" in ANYMAIL and not re.fullmatch(r"[^:\s]+:\S+", ANYMAIL["WEBHOOK_SECRET"]):
    raise ImproperlyConfigured(
        "ANYMAIL_WEBHOOK_SECRET must be 'user:password' (the HTTP basic auth of the ESP webhooks), "
        "without spaces and with a non-empty user and password."
    )
# Amazon SES posts through SNS, whose signature channels_inbound/email/sns.py checks: the signing
# certificate must come from an SNS host, and the topic, when this list is set, must be one of these.
AMAZON_SNS_CERT_URL_RE = r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#]+\.pem"
AMAZON_SNS_TOPIC_ARNS = env.string_list("AMAZON_SNS_TOPIC_ARNS")

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "omnicenter.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["omnicenter.permissions.IsStaffMember"],
    "DEFAULT_PAGINATION_CLASS": "omnicenter.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "omnicenter.schema.AutoSchema",
    "EXCEPTION_HANDLER": "omnicenter.api_errors.exception_handler",
    "DEFAULT_FILTER_BACKENDS": [],
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Omnicenter API",
    "DESCRIPTION": "Customers, tickets, timelines and channels of an Omnicenter installation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are for staff and integrators (session or token), not the public.
    "SERVE_PERMISSIONS": ["omnicenter.permissions.IsStaffMember"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `kind` choice field; name the channel's one so the schema stays stable.
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "channels_inbound.models.Channel.Kind",
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "ArticleStatusEnum": "knowledge.models.Article.Status",
    },
}

# Country assumed for phone numbers written without a +country code (ISO 3166 alpha-2, e.g. "PL");
# empty: such numbers are refused rather than guessed.
PHONE_DEFAULT_REGION = env.string("PHONE_DEFAULT_REGION").upper() or None

# --- Inbound processing ------------------------------------------------------------------------
INBOUND_MAX_ATTEMPTS = env.integer("INBOUND_MAX_ATTEMPTS", 8)
INBOUND_SWEEP_BATCH = env.integer("INBOUND_SWEEP_BATCH", 500)
INBOUND_STALE_AFTER = timedelta(seconds=env.integer("INBOUND_STALE_AFTER", 60))
# New events are drained in batches (channels_inbound.services.inbound_events_drain): events per
# claim, how long one drain task may run before handing over to a fresh one, and how long a kick
# (the "a drain is on its way" marker) lives if its task is lost.
INBOUND_BATCH_SIZE = env.integer("INBOUND_BATCH_SIZE", 50)
INBOUND_DRAIN_BUDGET = timedelta(seconds=env.integer("INBOUND_DRAIN_BUDGET", 30))
INBOUND_KICK_SECONDS = env.integer("INBOUND_KICK_SECONDS", 30)
# After a batch smaller than INBOUND_BATCH_SIZE, a drain keeps the kick and waits this long before
# its next claim, so that messages arriving meanwhile join its next batch instead of each burst
# publishing (and a worker running) a drain task of its own. 0: no wait.
INBOUND_DRAIN_LINGER_MS = env.integer("INBOUND_DRAIN_LINGER_MS", 10)
# Webhook views look channels up by key in a per-process cache: deactivating a channel or rotating
# its secret takes effect within this many seconds in every web process (at once in the one that saved).
CHANNEL_CACHE_SECONDS = env.integer("CHANNEL_CACHE_SECONDS", 5)
OUTBOUND_MAX_ATTEMPTS = env.integer("OUTBOUND_MAX_ATTEMPTS", 6)
OUTBOUND_SWEEP_BATCH = env.integer("OUTBOUND_SWEEP_BATCH", 200)
IMAP_MAX_MESSAGE_BYTES = env.integer("IMAP_MAX_MESSAGE_BYTES", 25 * 1024 * 1024)
IMAP_TIMEOUT = env.integer("IMAP_TIMEOUT", 30)
IMAP_POLL_LEASE = timedelta(seconds=env.integer("IMAP_POLL_LEASE", 600))
OUTBOUND_HTTP_TIMEOUT = env.integer("OUTBOUND_HTTP_TIMEOUT", 15)
# Social messengers (channels_inbound/meta, channels_inbound/telegram): provider API base URLs,
# overridable so that tests and proxies can stand in for them.
META_GRAPH_URL = env.string("META_GRAPH_URL", "https://graph.facebook.com/v21.0").rstrip("/")
TELEGRAM_API_URL = env.string("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")

# --- Customer portal and surveys (docs/portal.md) ---------------------------------------------
PORTAL_LINK_MINUTES = env.integer("PORTAL_LINK_MINUTES", 15)  # a magic link works this long, once
PORTAL_CODE_MINUTES = env.integer("PORTAL_CODE_MINUTES", 10)  # an SMS code likewise
PORTAL_CODE_ATTEMPTS = env.integer("PORTAL_CODE_ATTEMPTS", 5)  # wrong guesses before a code dies
PORTAL_SIGNIN_PER_ADDRESS = env.integer("PORTAL_SIGNIN_PER_ADDRESS", 5)  # requests per address per window
PORTAL_SIGNIN_PER_IP = env.integer("PORTAL_SIGNIN_PER_IP", 30)  # requests and code tries per IP per window
PORTAL_SIGNIN_WINDOW = env.integer("PORTAL_SIGNIN_WINDOW", 900)  # seconds
PORTAL_REOPEN_DAYS = env.integer("PORTAL_REOPEN_DAYS", 14)  # a solved ticket can be reopened this long
PORTAL_STATUS_LINK_DAYS = env.integer("PORTAL_STATUS_LINK_DAYS", 60)  # status links in notifications
SURVEY_LINK_DAYS = env.integer("SURVEY_LINK_DAYS", 30)  # CSAT and NPS answer links
CSAT_CHANGE_DAYS = env.integer("CSAT_CHANGE_DAYS", 7)  # a rating can be changed this long after it was given
# NPS: per channel kind, days between two NPS questions to one customer ("kind=days,..."; 0 or absent: never).
NPS_SCHEDULE = {
    kind.strip(): int(days)
    for kind, _sep, days in (item.partition("=") for item in env.string_list("NPS_SCHEDULE", ["email=90"]))
    if kind.strip() and days.strip().isdigit()
}
NPS_RECENT_CONTACT_DAYS = env.integer("NPS_RECENT_CONTACT_DAYS", 30)  # only customers who wrote this recently
NPS_QUIET_DAYS = env.integer("NPS_QUIET_DAYS", 14)  # no NPS within this many days of any other survey
NPS_BATCH = env.integer("NPS_BATCH", 200)

# --- Twilio (channels_inbound/twilio, docs/channels/twilio.md) ----------------------------------
# Where the SDK's REST calls and the account's media downloads go (a local stand-in in tests).
# Credentials are only ever sent to this host.
TWILIO_API_BASE_URL = env.string("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/")
# Hosts Twilio's media URLs may redirect to (no credentials are sent there); "*." matches subdomains.
TWILIO_MEDIA_HOSTS = env.string_list("TWILIO_MEDIA_HOSTS", ["*.twiliocdn.com", "*.twilio.com", "s3-external-1.amazonaws.com"])
# Tests serve media from 127.0.0.1; everywhere else loopback and private addresses are refused.
TWILIO_MEDIA_ALLOW_PRIVATE = env.boolean("TWILIO_MEDIA_ALLOW_PRIVATE", False)
TWILIO_VOICE_TOKEN_TTL = env.integer("TWILIO_VOICE_TOKEN_TTL", 3600)
# What agent pages may reach for browser calling (the Voice SDK's signalling, its ringtones).
TWILIO_CSP_CONNECT = env.string_list("TWILIO_CSP_CONNECT", ["wss://*.twilio.com", "https://*.twilio.com"])
TWILIO_CSP_MEDIA = env.string_list("TWILIO_CSP_MEDIA", ["https://sdk.twilio.com"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.string("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Web chat widget (channels_inbound/webchat, docs/channels/webchat.md) ----------------------
WEBCHAT_AUTH_TIMEOUT = env.integer("WEBCHAT_AUTH_TIMEOUT", 5)  # seconds for the first frame
WEBCHAT_TOKEN_MAX_AGE = env.integer("WEBCHAT_TOKEN_MAX_AGE", 30 * 86400)
WEBCHAT_MAX_MESSAGE_CHARS = env.integer("WEBCHAT_MAX_MESSAGE_CHARS", 4000)
WEBCHAT_ATTACHMENT_MAX_BYTES = env.integer("WEBCHAT_ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024)
WEBCHAT_RATE_VISITOR = env.integer("WEBCHAT_RATE_VISITOR", 20)  # messages per minute per visitor
WEBCHAT_RATE_IP = env.integer("WEBCHAT_RATE_IP", 60)  # messages per minute per IP address
WEBCHAT_RATE_SESSIONS_IP = env.integer("WEBCHAT_RATE_SESSIONS_IP", 30)  # new visitor tokens per minute per IP
# Email from the widget: transcripts, one-time codes that confirm a visitor's email, replies to
# visitors who left. Rate limits are per hour (fixed windows in the cache).
WEBCHAT_EMAIL_CODE_MINUTES = env.integer("WEBCHAT_EMAIL_CODE_MINUTES", 10)  # a code works this long, once
WEBCHAT_EMAIL_CODE_ATTEMPTS = env.integer("WEBCHAT_EMAIL_CODE_ATTEMPTS", 5)  # wrong guesses before a code dies
WEBCHAT_RATE_EMAIL_CODES = env.integer("WEBCHAT_RATE_EMAIL_CODES", 5)  # codes per hour per visitor, and per address
WEBCHAT_RATE_EMAIL_CODES_IP = env.integer("WEBCHAT_RATE_EMAIL_CODES_IP", 20)  # codes per hour per IP address
WEBCHAT_RATE_CODE_CHECKS = env.integer("WEBCHAT_RATE_CODE_CHECKS", 10)  # code checks per hour per visitor (x3 per IP)
WEBCHAT_RATE_TRANSCRIPTS = env.integer("WEBCHAT_RATE_TRANSCRIPTS", 3)  # transcripts per hour per visitor
WEBCHAT_RATE_TRANSCRIPTS_IP = env.integer("WEBCHAT_RATE_TRANSCRIPTS_IP", 10)  # transcripts per hour per IP address
WEBCHAT_OFFLINE_EMAIL_DELAY = env.integer("WEBCHAT_OFFLINE_EMAIL_DELAY", 180)  # seconds: one email per batch of replies
