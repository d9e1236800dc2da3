"""Settings for every environment, read from the environment through one reader.

`DJANGO_ENV` picks the profile: `development` (default: DEBUG on, console email, safe local
defaults), `test`, or `production` (refuses to start with DEBUG on or a default/weak secret).
Every variable is listed in `.env.example`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()

ENVIRONMENT = env.str("DJANGO_ENV", default="development")
if ENVIRONMENT not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {ENVIRONMENT!r}")
IS_PRODUCTION = ENVIRONMENT == "production"

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-never-use-in-production"  # noqa: S105 (refused in production)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=ENVIRONMENT == "development")

if IS_PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production.")
    if SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a random value of 50+ characters when DJANGO_ENV=production."
        )

# The public site is served at the bare domain, tenant <slug> at <slug>.<PLATFORM_DOMAIN>.
PLATFORM_DOMAIN = env.str("PLATFORM_DOMAIN", default="localhost").lower()
# Scheme and port used when the platform writes absolute URLs to a tenant (signup redirect, emails).
PLATFORM_SCHEME = env.str("PLATFORM_SCHEME", default="https" if IS_PRODUCTION else "http")
PLATFORM_PORT = env.str("PLATFORM_PORT", default="" if IS_PRODUCTION else "8000")

ALLOWED_HOSTS = [PLATFORM_DOMAIN, f".{PLATFORM_DOMAIN}", *env.list("EXTRA_ALLOWED_HOSTS", default=[])]

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "public_site",
    "accounts",
    "djstripe",
    "billing.connect",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
]
TENANT_APPS = [
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "affiliates",
    "billing",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New tenants are cloned from this pre-migrated schema instead of replaying every migration
# (tens of seconds per tenant, mostly Django rebuilding migration state); `platform_setup`
# keeps it migrated whenever migrations run.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# Set the search_path once per connection and schema switch, not before every cursor.
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tenants.middleware.TenantRoutingMiddleware",
    "affiliates.middleware.ReferralFastPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The wiring's own templates: the API docs page without third-party assets.
        "DIRS": [BASE_DIR / "platform" / "config" / "templates"],
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

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/affiliate_platform"),
}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# A Unix-socket directory arrives URL-encoded (postgres://user@%2Fpath%2Fto%2Fdir/db) and
# django-environ passes it through as is; libpq wants the plain path.
DATABASES["default"]["HOST"] = unquote(str(DATABASES["default"].get("HOST") or ""))
# One connection pool per process (psycopg's, through Django), or none (0). On by default in
# development only: `make run`'s server (runserver) starts a thread per request, and a persistent
# connection is per thread, so each finished request left its connection open until CONN_MAX_AGE
# (60 s) or the garbage collector: 500 concurrent conversions took 96 of PostgreSQL's 100
# connections and 406 answered "too many clients" (issue 14, item 6). With the pool the server
# holds at most this many, and a request beyond them waits for one (tests/test_healing.py). Off
# in production: a sync gunicorn worker (deploy/gunicorn.conf.py) serves one request at a time on
# one persistent connection, which is already the bound, with no checkout per request.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=8 if ENVIRONMENT == "development" else 0)
if DATABASE_POOL_MAX_SIZE:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE}
# Persistent connections: a new connection per request costs more than the request itself. A pool
# keeps them itself and needs 0 here (Django refuses anything else).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0 if DATABASE_POOL_MAX_SIZE else 60)
if DATABASE_POOL_MAX_SIZE and DATABASES["default"]["CONN_MAX_AGE"]:
    raise ImproperlyConfigured("DATABASE_POOL_MAX_SIZE needs DATABASE_CONN_MAX_AGE=0 (or unset): the pool keeps them.")
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
# Prepared statements only where asked for (`core.sqlrows.prepared`, the hot paths): Django's
# own queries bind on the client and are never prepared. PostgreSQL plans each once per
# connection and search_path (it re-plans when a connection moves to another tenant; psycopg
# forgets them after a rollback). Turn them off behind a pooler in
# transaction mode (PgBouncer), which cannot keep a prepared statement on one server connection.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    2**31 - 1 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
)
DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("DATABASE_TEST_NAME", default="test_affiliate_platform")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Short socket timeouts: against a Redis that hangs (accepts, never answers) a request whose
# tenant route is not in the process's memory took 5.4 s before the routing fell back to the
# database; with these, 0.8 s (tests/test_routing.py).
_CACHE_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key carries the schema of the tenant it was written for.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="ap"),
        "OPTIONS": _CACHE_TIMEOUTS,
    },
    # Host -> tenant routes: read before any tenant is selected, so keys carry no schema.
    "routing": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="ap") + "-routing",
        "OPTIONS": _CACHE_TIMEOUTS,
    },
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if ENVIRONMENT == "test":
    # Hashing cost is not what the tests measure; benchmarks run with the real hasher.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / ".data" / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"no-reply@{PLATFORM_DOMAIN}")

# Seconds a signup handover link stays valid (the owner's browser follows it at once).
LOGIN_TOKEN_MAX_AGE = env.int("LOGIN_TOKEN_MAX_AGE", default=60)
# Seconds a host -> tenant lookup is cached; suspensions and domain changes invalidate it at once.
TENANT_ROUTING_CACHE_SECONDS = env.int("TENANT_ROUTING_CACHE_SECONDS", default=300)

# Who calls the API (staff, an affiliate, an API key): the kernel's base views ask this policy.
API_ACCESS_POLICY = "affiliates.access.TenantAccess"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that an unauthenticated call gets 401 with `WWW-Authenticate: Bearer`.
        "affiliates.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("TRACK_RATE", default="100000/hour" if ENVIRONMENT == "test" else "600/minute")
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # How many proxies in front of the app append to X-Forwarded-For (0: use the peer address).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
# Signups allowed per client address (public site form and API together).
SIGNUP_RATE = env.str("SIGNUP_RATE", default="10000/hour" if ENVIRONMENT == "test" else "20/hour")
SPECTACULAR_SETTINGS = {
    "TITLE": "Affiliate platform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Redoc from the pinned copy in drf-spectacular-sidecar, served as our own static file.
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.errors.add_error_responses",
    ],
    # Choice sets whose field name (status, kind) other models share: named after their model.
    "ENUM_NAME_OVERRIDES": {
        "CommissionKindEnum": "affiliates.models.Commission.Kind",
        "PayoutRunStatusEnum": "billing.models.PayoutRun.Status",
        "PayoutItemStatusEnum": "billing.models.PayoutItem.Status",
    },
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
# Celery's Django fixup closes the database connection after every task unless told to reuse it;
# with a drain task per tenant every second that is a new PostgreSQL session per task. Reused,
# it is still closed when it failed or outlived CONN_MAX_AGE, around every task
# (config.celery.connections_refresh), as Django does around a request.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / ".data" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Sent once per active tenant, in its schema (tenants.scheduler.ActiveTenantScheduler).
    "purge-login-tokens": {"task": "accounts.tasks.login_tokens_purge", "schedule": 3600.0},
    # Buffered clicks reach PostgreSQL within about a second (conversions flush it themselves).
    "drain-clicks": {"task": "affiliates.tasks.clicks_drain", "schedule": 1.0},
    "approve-due-commissions": {"task": "affiliates.tasks.commissions_approve_due", "schedule": 600.0},
    # Runs left queued (a worker died) or waiting for funds are picked up again.
    "resume-payout-runs": {"task": "billing.tasks.payout_runs_resume", "schedule": 300.0},
    # Programs paying weekly or monthly get their run on the day (once per day: billing.scheduling).
    "schedule-payout-runs": {"task": "billing.tasks.payout_runs_schedule", "schedule": 3600.0},
}

# Stripe: every call goes through billing.gateway. A key starting with sk_test_double talks to
# the local Stripe double (devtools.stripe_double: tests and the offline `make run`); any other key
# (a real sk_test_ or live key) talks to Stripe itself, with no code change. Without a key (the
# production default) payouts are off: every Stripe call fails with `not_configured`.
STRIPE_DOUBLE_KEY_PREFIX = "sk_test_double"
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="" if IS_PRODUCTION else "sk_test_double_local")
STRIPE_API_BASE = env.str(
    "STRIPE_API_BASE",
    default="http://127.0.0.1:12111"
    if STRIPE_SECRET_KEY.startswith(STRIPE_DOUBLE_KEY_PREFIX)
    else "https://api.stripe.com",
)
_stripe_base = urlsplit(STRIPE_API_BASE)
_stripe_host = _stripe_base.hostname or ""
if IS_PRODUCTION and (
    STRIPE_SECRET_KEY.startswith(STRIPE_DOUBLE_KEY_PREFIX)
    or _stripe_base.scheme != "https"
    or not (_stripe_host == "stripe.com" or _stripe_host.endswith(".stripe.com"))
):
    raise ImproperlyConfigured(
        "DJANGO_ENV=production talks to Stripe itself: set STRIPE_SECRET_KEY to a Stripe key and leave "
        "STRIPE_API_BASE unset (the local Stripe double is for development and tests only)."
    )
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
# stripe-python retries connection errors, 409s, 5xx and retryable 429s with the same idempotency key.
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# Country of an affiliate's new Stripe account when its onboarding request names none.
PAYOUT_DEFAULT_COUNTRY = env.str("PAYOUT_DEFAULT_COUNTRY", default="US")
STRIPE_LIVE_MODE = False
# Stripe webhooks reach dj-stripe's endpoint on the public host, /stripe/webhook/<uuid>/, and are
# verified with the secret of its WebhookEndpoint row; billing.webhooks applies them (the callback
# below, so dj-stripe never syncs objects from Stripe itself). `manage.py stripe_webhooks` makes
# the rows from these secrets and prints their URLs: one endpoint for the platform account's
# events, one for its connected accounts' events (Stripe signs the two with different secrets).
# The double delivers everything to the first, signed with whatever secret it is given.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="" if IS_PRODUCTION else "whsec_double_local")
STRIPE_CONNECT_WEBHOOK_SECRET = env.str("STRIPE_CONNECT_WEBHOOK_SECRET", default="")
if IS_PRODUCTION and any(s.startswith("whsec_double") for s in (STRIPE_WEBHOOK_SECRET, STRIPE_CONNECT_WEBHOOK_SECRET)):
    raise ImproperlyConfigured("DJANGO_ENV=production: set the webhook secrets Stripe shows, not the double's.")
DJSTRIPE_WEBHOOK_EVENT_CALLBACK = "billing.webhooks.trigger_process"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Beat sends the click drain to every tenant each second: per-task lines would drown the log.
        "celery.app.trace": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.worker.strategy": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "tenant_schemas_celery": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.beat": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
    },
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = [f"https://{PLATFORM_DOMAIN}", f"https://*.{PLATFORM_DOMAIN}"]
else:
    CSRF_TRUSTED_ORIGINS = [
        f"http://{PLATFORM_DOMAIN}:{PLATFORM_PORT}",
        f"http://*.{PLATFORM_DOMAIN}:{PLATFORM_PORT}",
    ]
