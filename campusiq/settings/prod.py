"""Production. Every secret comes from the environment (or a *_FILE); an unsafe value stops start-up."""

from campusiq.core.secrets import read_secret

from .base import *  # noqa: F403
from .base import MODEL_ARTIFACT_STORAGE, PRIVATE_FILE_STORAGE, database_instrumented, env
from .validation import validate_production

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = read_secret(env, "DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
DATABASE_URL = read_secret(env, "DATABASE_URL", default="")
REDIS_URL = read_secret(env, "REDIS_URL", default="")

validate_production(
    secret_key=SECRET_KEY,
    debug=DEBUG,
    allowed_hosts=ALLOWED_HOSTS,
    database_url=DATABASE_URL,
    redis_url=REDIS_URL,
)

DATABASES = {"default": database_instrumented(env.db_url_config(DATABASE_URL))}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
_redis_cache = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": REDIS_URL,
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
}
CACHES = {"default": _redis_cache, "ratelimit": _redis_cache}
CELERY_BROKER_URL = read_secret(env, "CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = False

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "models": MODEL_ARTIFACT_STORAGE,
    "private": PRIVATE_FILE_STORAGE,
}

# HTTPS everywhere; nginx terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
USE_X_FORWARDED_HOST = False

# Production: /metrics only from the monitoring network(s) named here, or with METRICS_BEARER_TOKEN.
METRICS_ALLOWED_CIDRS = env.list("METRICS_ALLOWED_CIDRS", default=[])

# --- Outages of Redis and PostgreSQL (docs/OPERATIONS.md, "Redis or PostgreSQL down") ----------
# PostgreSQL unreachable: a request gives up connecting after this many seconds and answers 503
# (campusiq.core.middleware.DatabaseUnavailableMiddleware) instead of holding a worker.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2)
)
# Redis behind a circuit breaker, each cache with its fallback (campusiq/core/cache.py).
from campusiq.core.cache import failover_caches  # noqa: E402

CACHES = failover_caches(REDIS_URL, retry_after_seconds=env.int("CACHE_RETRY_AFTER_SECONDS", default=5))

# --- Sign-in (issue 8; docs/ACCOUNTS.md) ------------------------------------------------------------
# The admin admits only staff who signed in with a code from their authenticator app.
ADMIN_REQUIRE_TWO_FACTOR = env.bool("ADMIN_REQUIRE_TWO_FACTOR", default=True)
# __Host-: sent only over HTTPS, to this host, for the whole site; no subdomain can plant one.
SIGN_IN_DEVICE_COOKIE_NAME = "__Host-campusiq_known_browser"
