"""Settings shared by every environment. One environ.Env() reads everything.

The embedded default needs nothing but Python: SQLite, local-memory cache, eager Celery and console
email. Each integration (PostgreSQL, Redis, SMTP) switches on when its variable is set.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from corsheaders.defaults import default_headers as default_cors_headers
from csp.constants import NONCE, NONE, SELF

from campusiq.core.logging import build_logging_config, configure_structlog
from campusiq.core.secrets import read_secret

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = read_secret(env, "DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    "django_prometheus",
    "import_export",
    "campusiq.core",
    "accounts",
    "students",
    "attendance",
    "predictions",
    "portal",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # First: everything after it (rate limits, logs, check-in evidence) sees the real client address.
    "campusiq.core.client_ip.ClientIpMiddleware",
    # Outermost of our own: every response, error pages included, carries the request id.
    "campusiq.core.middleware.RequestIdMiddleware",
    # Who is signed in (campusiq_active_users).
    "campusiq.core.middleware.ActiveUsersMiddleware",
    # /metrics, answered whatever the Host header (Prometheus scrapes pods by IP).
    "campusiq.core.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "campusiq.core.middleware.ApiBodySizeMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "campusiq.urls"
WSGI_APPLICATION = "campusiq.wsgi.application"
ASGI_APPLICATION = "campusiq.asgi.application"

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
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",
                "accounts.context_processors.portal_roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# django-prometheus's subclasses of Django's own PostgreSQL and SQLite engines: the same backends
# (connection.vendor unchanged) that also count queries, their durations and errors (django_db_*).
INSTRUMENTED_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def database_instrumented(config: dict) -> dict:
    return {**config, "ENGINE": INSTRUMENTED_ENGINES.get(config["ENGINE"], config["ENGINE"])}


DATABASES = {"default": database_instrumented(env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = read_secret(env, "REDIS_URL", default="")
if REDIS_URL:
    _redis_cache = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
    CACHES = {"default": _redis_cache, "ratelimit": _redis_cache}
else:
    # Rate limits must be shared by every process, so never a per-process cache (django-ratelimit E003).
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "campusiq_ratelimit_cache",
        },
    }
RATELIMIT_USE_CACHE = "ratelimit"

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
# Campus single sign-on: a JSON file of identity providers (docs/SSO.md); none without one.
SSO_CONFIG_FILE = env.str("SSO_CONFIG_FILE", default="")
# Sign-in pages of SSO (begin and callback) per client address, like the password pages' budget.
SSO_RATE_PER_IP = env.str("SSO_RATE_PER_IP", default="30/m")
# The provider's server reporting logouts (OIDC back-channel): one address, many people at once.
SSO_BACKCHANNEL_RATE_PER_IP = env.str("SSO_BACKCHANNEL_RATE_PER_IP", default="600/m")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("CAMPUSIQ_TIME_ZONE", default="Europe/Lisbon")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media")))
# Trained at-risk models: on a volume shared by web and workers in production, included in backups.
MODEL_ARTIFACT_ROOT = Path(env.str("MODEL_ARTIFACT_ROOT", default=str(BASE_DIR / "var" / "models")))
MODEL_ARTIFACT_STORAGE = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(MODEL_ARTIFACT_ROOT)},
}
# Students' attachments (advance absences): outside MEDIA_ROOT, served only by permission-checked views.
PRIVATE_FILE_ROOT = Path(env.str("PRIVATE_FILE_ROOT", default=str(BASE_DIR / "var" / "private")))
PRIVATE_FILE_STORAGE = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(PRIVATE_FILE_ROOT), "base_url": None},
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "models": MODEL_ARTIFACT_STORAGE,
    "private": PRIVATE_FILE_STORAGE,
}

# --- Request limits -------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- Security headers -----------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "campusiq.core.views.csrf_failure"

# django-csp 4: scripts and styles only from our origin or with a per-response nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Reverse proxies (nginx) whose X-Forwarded-For is believed, e.g. 10.0.0.0/8. Empty: none.
TRUSTED_PROXY_CIDRS = env.list("TRUSTED_PROXY_CIDRS", default=[])

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = env.bool("CORS_ALLOW_CREDENTIALS", default=False)
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Idempotent-Replayed", "Retry-After"]
CORS_ALLOW_HEADERS = (*default_cors_headers, "idempotency-key", "x-request-id")

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.TokenScopeAllows",
    ],
    "DEFAULT_PAGINATION_CLASS": "campusiq.core.pagination.CappedPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["campusiq.core.parsers.DepthLimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "campusiq.core.schema.ProblemAutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "campusiq.core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CampusIQ API",
    "DESCRIPTION": "Campus portal API for integrators. Errors follow RFC 9457 (application/problem+json).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "campusiq.core.schema.query_parameters_need_a_value",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StudentStatusEnum": "students.models.Student.Status",
        "EnrollmentStatusEnum": "students.models.Enrollment.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = read_secret(env, "CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
# Without a broker the tasks run in-process, so `make run` needs nothing but Python.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Tasks that must not be lost: acknowledge after the work, redeliver when a worker dies mid-task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=20 * 60)
# Redis redelivers an unacknowledged task after this long: it must outlast the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)}
CELERY_RESULT_EXPIRES = 24 * 60 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SEND_SENT_EVENT = True
# Periodic work (run `celery -A campusiq beat`; exactly one beat process per deployment).
CELERY_BEAT_SCHEDULE = {
    "attendance-close-finished-sessions": {"task": "attendance.close_finished_sessions", "schedule": 5 * 60},
    "attendance-evidence-purge": {"task": "attendance.evidence_purge", "schedule": crontab(hour=3, minute=30)},
    "idempotency-keys-purge": {"task": "core.idempotency_keys_purge", "schedule": crontab(hour=3, minute=45)},
    "expired-sessions-purge": {"task": "core.expired_sessions_purge", "schedule": crontab(hour=3, minute=50)},
    "predictions-score-current-term": {"task": "predictions.score_current_term", "schedule": crontab(hour=2, minute=0)},
    # Each SAML provider's metadata read from a URL, when its copy is older than its metadata_refresh_hours.
    "accounts-sso-metadata-refresh": {"task": "accounts.sso_metadata_refresh", "schedule": crontab(minute=20)},
}

# --- Email ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CampusIQ <noreply@campusiq.local>")

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
# Django applies LOGGING at setup; structlog feeds the same handlers (see campusiq/core/logging.py).
LOGGING = build_logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
configure_structlog()

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"

# --- API tokens -----------------------------------------------------------------------------
# Longest lifetime, in days, of a personal token and of a service account's token.
API_TOKEN_MAX_DAYS = {
    "personal": env.int("API_TOKEN_PERSONAL_MAX_DAYS", default=30),
    "service": env.int("API_TOKEN_SERVICE_MAX_DAYS", default=365),
}
# Sign-in attempts for a token, per client address and per account.
API_TOKEN_RATE_PER_IP = env.str("API_TOKEN_RATE_PER_IP", default="30/m")
# Tokens a person may issue from their "API tokens" page (accounts/views.py), per person.
API_TOKEN_ISSUE_RATE_PER_USER = env.str("API_TOKEN_ISSUE_RATE_PER_USER", default="10/h")

# --- Campus rules ---------------------------------------------------------------------------
CAMPUSIQ_SEMESTER_RANGE = (env.int("CAMPUSIQ_SEMESTER_MIN", default=1), env.int("CAMPUSIQ_SEMESTER_MAX", default=8))
# The library strips a leading "="; campusiq/core/admin.py (FormulaSafeCSV/XLSX) neutralises = + - @ tab CR.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_USE_TRANSACTIONS = True
# Bulk history imports (campusiq/core/imports.py): a file of more rows than this runs as a background job.
IMPORT_JOB_THRESHOLD_ROWS = env.int("IMPORT_JOB_THRESHOLD_ROWS", default=2000)
IMPORT_JOB_CHUNK_ROWS = env.int("IMPORT_JOB_CHUNK_ROWS", default=2000)
IMPORT_JOB_ERRORS_KEPT = 50
# A running job whose progress stood still this long lost its worker; its task, delivered again, restarts it.
IMPORT_JOB_ABANDONED_SECONDS = 15 * 60
IMPORT_JOB_RATE_PER_USER = env.str("IMPORT_JOB_RATE_PER_USER", default="30/h")
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

# --- Attendance -----------------------------------------------------------------------------
ATTENDANCE_QR_ROTATION_SECONDS = env.int("ATTENDANCE_QR_ROTATION_SECONDS", default=15)
# Each process keeps a session it read this long (0: off): closing, cancelling or rotating a session
# reaches every other process within this time. The shared cache is cleared at once.
ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS = env.float("ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS", default=1.0)
# How long a scanned code is held while the student signs in (the login detour): what a sign-in needs,
# no more, since the scan is recorded at the in-room time. Held on the scanning device only.
ATTENDANCE_SCAN_HOLD_SECONDS = env.int("ATTENDANCE_SCAN_HOLD_SECONDS", default=120)
ATTENDANCE_OPEN_EARLY_MINUTES = env.int("ATTENDANCE_OPEN_EARLY_MINUTES", default=15)
# Check-ins from a device before it counts as the student's usual one (anti-proxy "new device" sign).
ATTENDANCE_USUAL_DEVICE_CHECK_INS = env.int("ATTENDANCE_USUAL_DEVICE_CHECK_INS", default=3)
# CIDRs of the campus networks; empty: no "off campus" sign. E.g. 193.136.0.0/16,2001:690::/32
ATTENDANCE_CAMPUS_NETWORKS = env.list("ATTENDANCE_CAMPUS_NETWORKS", default=[])
# Signs that refuse a check-in instead of flagging it: shared_device, new_device, off_campus.
ATTENDANCE_REFUSE_FLAGS = env.list("ATTENDANCE_REFUSE_FLAGS", default=[])
# Below this rate the student, the lecturers and the advisor get one email per crossing.
ATTENDANCE_WARNING_RATE = env.float("ATTENDANCE_WARNING_RATE", default=0.8)
# Sessions still open this long after their end are closed by the periodic task.
ATTENDANCE_AUTO_CLOSE_AFTER_MINUTES = env.int("ATTENDANCE_AUTO_CLOSE_AFTER_MINUTES", default=30)
# Check-in evidence (IP, user agent, device id) is purged after this many days.
ATTENDANCE_EVIDENCE_RETENTION_DAYS = env.int("ATTENDANCE_EVIDENCE_RETENTION_DAYS", default=180)
# Rate limits of check-in: strict per person, generous per address (a lecture hall behind one NAT).
ATTENDANCE_CHECK_IN_RATE_PER_USER = env.str("ATTENDANCE_CHECK_IN_RATE_PER_USER", default="20/m")
ATTENDANCE_CHECK_IN_RATE_PER_IP = env.str("ATTENDANCE_CHECK_IN_RATE_PER_IP", default="3000/m")

# --- At-risk predictions (docs/PREDICTIONS.md) ------------------------------------------------
# Training uses what was known this many weeks into each past term (no leakage from final grades).
PREDICTIONS_TRAINING_AS_OF_WEEKS = env.int("PREDICTIONS_TRAINING_AS_OF_WEEKS", default=6)
PREDICTIONS_MIN_OUTCOMES = env.int("PREDICTIONS_MIN_OUTCOMES", default=50)
# A model is activated only if the lower bound of the paired bootstrap interval of its hold-out PR-AUC
# minus each available rule baseline's is above this (0: better beyond noise; docs/PREDICTIONS.md).
PREDICTIONS_ACTIVATION_MARGIN = env.float("PREDICTIONS_ACTIVATION_MARGIN", default=0.0)
PREDICTIONS_GATE_RESAMPLES = env.int("PREDICTIONS_GATE_RESAMPLES", default=1000)
PREDICTIONS_GATE_CONFIDENCE = env.float("PREDICTIONS_GATE_CONFIDENCE", default=0.95)
# Hold-out metrics of a department or program with fewer students are reported as "too few".
PREDICTIONS_GROUP_MIN_SIZE = env.int("PREDICTIONS_GROUP_MIN_SIZE", default=30)
PREDICTIONS_CV_FOLDS = env.int("PREDICTIONS_CV_FOLDS", default=5)
# Bands: probability at or above MEDIUM is medium, at or above HIGH is high.
PREDICTIONS_BAND_MEDIUM = env.float("PREDICTIONS_BAND_MEDIUM", default=0.3)
PREDICTIONS_BAND_HIGH = env.float("PREDICTIONS_BAND_HIGH", default=0.6)
PREDICTIONS_TOP_FACTORS = env.int("PREDICTIONS_TOP_FACTORS", default=3)
# Students see their own risk only where the institution decides so.
PREDICTIONS_STUDENTS_SEE_OWN_RISK = env.bool("PREDICTIONS_STUDENTS_SEE_OWN_RISK", default=False)
# Where `evaluate_uci` reads the UCI Student Performance CSVs; unset: the copy shipped in predictions/data.
UCI_DATASET_DIR = env.str("UCI_DATASET_DIR", default="") or None

# --- Metrics and health (docs/OPERATIONS.md) --------------------------------------------------
# /metrics answers these networks, or a caller with the bearer token; everyone else gets 404.
METRICS_ALLOWED_CIDRS = env.list("METRICS_ALLOWED_CIDRS", default=["127.0.0.0/8", "::1/128"])
METRICS_BEARER_TOKEN = read_secret(env, "METRICS_BEARER_TOKEN", default="")
# Queues whose backlog /metrics reports (campusiq_celery_queue_length).
CAMPUSIQ_CELERY_QUEUES = env.list("CAMPUSIQ_CELERY_QUEUES", default=["celery"])

# --- Error tracking and tracing (campusiq/core/telemetry.py; docs/OPERATIONS.md) ---------------
# Each off unless set; off, its library is never imported.
SENTRY_DSN = read_secret(env, "SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
# The deployed version (an image tag or commit), for Sentry's release and the traces' service.version.
CAMPUSIQ_RELEASE = env.str("CAMPUSIQ_RELEASE", default="")
# OpenTelemetry's own variable: the OTLP/HTTP collector (e.g. http://otel-collector:4318). The SDK reads
# the other OTEL_* variables itself.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
if SENTRY_DSN:
    MIDDLEWARE.insert(MIDDLEWARE.index("campusiq.core.middleware.RequestIdMiddleware") + 1,
                      "campusiq.core.telemetry.SentryUserMiddleware")  # fmt: skip

# --- Celery: broker outages and the outbox (docs/OPERATIONS.md, Celery) ------------------------
# How long a web request that enqueues a task waits for an unreachable or hung Redis before the task
# goes to the outbox (campusiq/core/outbox.py). Without them a dropped SYN waits minutes, and a publish
# on a connection the broker silently lost waits forever. Workers read with BRPOP's 1 s timeout, well
# inside the socket timeout.
CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = env.int("CELERY_BROKER_CONNECT_TIMEOUT", default=2)
CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] = env.int("CELERY_BROKER_SOCKET_TIMEOUT", default=5)
# Tasks kept in the outbox while the broker was down are published by this (and when a worker starts).
CELERY_BEAT_SCHEDULE["core-outbox-flush"] = {"task": "core.outbox_flush", "schedule": 60}

# --- Backups (docs/OPERATIONS.md, "Back up and restore") --------------------------------------
# `manage.py backup` writes campusiq-<UTC time>.tar and its .sha256 here; `manage.py restore` reads them.
BACKUP_ROOT = Path(env.str("BACKUP_ROOT", default=str(BASE_DIR / "var" / "backups")))
# Retention: the newest backup of each of the last N days and of each of the last M ISO weeks.
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", default=7)
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", default=4)
# Where pg_dump/pg_restore are, when those on PATH are older than the server. Empty: PATH, then PostgreSQL 15's.
BACKUP_PG_BIN_DIR = env.str("BACKUP_PG_BIN_DIR", default="")
# Off-site copy of each backup to S3-compatible storage (needs django-storages[s3]). Empty: none.
BACKUP_S3_BUCKET = env.str("BACKUP_S3_BUCKET", default="")
BACKUP_S3_PREFIX = env.str("BACKUP_S3_PREFIX", default="campusiq/backups")
BACKUP_S3_ENDPOINT_URL = env.str("BACKUP_S3_ENDPOINT_URL", default="")
# Registers core.backup_nightly (the beat schedule names it); autodiscovery only finds tasks.py modules.
CELERY_IMPORTS = [*globals().get("CELERY_IMPORTS", []), "campusiq.core.backup_tasks"]
# The nightly backup through Celery beat (compose, a single server); off where a CronJob takes it (k8s).
if env.bool("BACKUP_NIGHTLY_IN_BEAT", default=True):
    CELERY_BEAT_SCHEDULE["core-backup-nightly"] = {
        "task": "core.backup_nightly",
        "schedule": crontab(hour=1, minute=30),
    }

# --- Outages of Redis and PostgreSQL (docs/OPERATIONS.md, "Redis or PostgreSQL down") ----------
# A database that is down answers 503 at once (problem+json under /api/, a page elsewhere), logged
# once per outage rather than a traceback per request.
MIDDLEWARE.insert(
    MIDDLEWARE.index("campusiq.core.middleware.RequestIdMiddleware") + 1,
    "campusiq.core.middleware.DatabaseUnavailableMiddleware",
)
# With Redis: both caches behind a circuit breaker. Redis down, the default cache is skipped (reads go
# to the database) and rate limits are counted in the database table core_ratecounter
# (campusiq/core/counters.py): same limits, never open.
CACHE_RETRY_AFTER_SECONDS = env.int("CACHE_RETRY_AFTER_SECONDS", default=5)
if REDIS_URL:
    from campusiq.core.cache import failover_caches

    CACHES = failover_caches(REDIS_URL, retry_after_seconds=CACHE_RETRY_AFTER_SECONDS)

# --- Sign-in: throttling, known browsers, two-factor (issue 8; docs/ACCOUNTS.md) ----------------
# Failed sign-ins allowed in any rolling window (accounts/signin.py). Per account and address, per
# address (short and daily), per account (OWASP ASVS 2.2.1: at most 100 an hour), per browser that
# has signed in to the account before (exempt from the others), and wrong second-step codes per person.
SIGN_IN_FAILURE_LIMITS = {
    "account_ip": env.str("SIGN_IN_FAILURES_PER_ACCOUNT_AND_IP", default="5/15m"),
    "ip": env.str("SIGN_IN_FAILURES_PER_IP", default="30/15m"),
    "ip_day": env.str("SIGN_IN_FAILURES_PER_IP_DAY", default="300/d"),
    "account": env.str("SIGN_IN_FAILURES_PER_ACCOUNT", default="100/h"),
    "device": env.str("SIGN_IN_FAILURES_PER_KNOWN_BROWSER", default="10/15m"),
    "code": env.str("SIGN_IN_CODE_FAILURES_PER_ACCOUNT", default="10/15m"),
}
# The signed "known browser" cookie set at each successful sign-in (OWASP's device cookie).
SIGN_IN_DEVICE_COOKIE_NAME = env.str("SIGN_IN_DEVICE_COOKIE_NAME", default="campusiq_known_browser")
SIGN_IN_DEVICE_COOKIE_DAYS = env.int("SIGN_IN_DEVICE_COOKIE_DAYS", default=180)
# How long the second step (the authenticator code) waits after the password step.
SIGN_IN_CODE_TIMEOUT_SECONDS = env.int("SIGN_IN_CODE_TIMEOUT_SECONDS", default=300)
# "Sudo mode": issuing an API token from the portal needs a sign-in this recent (accounts/reauth.py).
SIGN_IN_RECENT_MINUTES = env.int("SIGN_IN_RECENT_MINUTES", default=15)
# Two-factor (TOTP) for staff, with django-otp. On in production (prod.py): the admin then admits
# only staff whose session was verified by a code.
ADMIN_REQUIRE_TWO_FACTOR = env.bool("ADMIN_REQUIRE_TWO_FACTOR", default=False)
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "accounts.middleware.CurrentRequestMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("accounts.middleware.CurrentRequestMiddleware") + 1,
    "accounts.middleware.AdminTwoFactorMiddleware",
)
# Inside CSPMiddleware: it widens form-action for a session begun at a campus provider (its logout).
MIDDLEWARE.insert(
    MIDDLEWARE.index("accounts.middleware.AdminTwoFactorMiddleware") + 1,
    "accounts.middleware.SsoLogoutFormActionMiddleware",
)
OTP_TOTP_ISSUER = "CampusIQ"
# The admin never shows a device's secret or QR code (people enrol in the portal, /accounts/two-factor/).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Headers and cookies (issue 8, "Headers and configuration"; tests/security/test_headers.py) --------
# The body-size guard answers 413 by itself: inside the CORS, CSP and frame-denial middleware, so that
# answer carries the same headers as every other API response (first in the list, it carried none).
MIDDLEWARE.remove("campusiq.core.middleware.ApiBodySizeMiddleware")
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.clickjacking.XFrameOptionsMiddleware") + 1,
    "campusiq.core.middleware.ApiBodySizeMiddleware",
)
# Blank query parameters are refused there too, with the same headers.
MIDDLEWARE.insert(MIDDLEWARE.index("campusiq.core.middleware.ApiBodySizeMiddleware") + 1,
                  "campusiq.core.middleware.ApiBlankQueryMiddleware")  # fmt: skip
# No script reads the CSRF cookie: forms carry the token, and the API docs get it rendered into the page.
CSRF_COOKIE_HTTPONLY = True
