"""Fail-fast checks of production configuration: every problem found, in one clear message."""

from django.core.exceptions import ImproperlyConfigured

MIN_SECRET_KEY_LENGTH = 50
MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5
KNOWN_UNSAFE_PREFIXES = ("django-insecure", "dev-only", "test-only", "change-me", "changeme")


def production_problems(
    *, secret_key: str, debug: bool, allowed_hosts: list[str], database_url: str, redis_url: str
) -> list[str]:
    problems = []
    if not secret_key:
        problems.append("DJANGO_SECRET_KEY is required (or DJANGO_SECRET_KEY_FILE).")
    elif (
        len(secret_key) < MIN_SECRET_KEY_LENGTH
        or len(set(secret_key)) < MIN_SECRET_KEY_UNIQUE_CHARACTERS
        or secret_key.lower().startswith(KNOWN_UNSAFE_PREFIXES)
    ):
        problems.append(
            f"DJANGO_SECRET_KEY is unsafe: use at least {MIN_SECRET_KEY_LENGTH} random characters, "
            "not a development or example key."
        )
    if debug:
        problems.append("DJANGO_DEBUG must be off in production.")
    if not allowed_hosts:
        problems.append("DJANGO_ALLOWED_HOSTS is required: the host names this site answers to.")
    elif "*" in allowed_hosts:
        problems.append("DJANGO_ALLOWED_HOSTS must name the hosts; '*' is not allowed in production.")
    if not database_url:
        problems.append("DATABASE_URL is required (postgres://user:password@host:5432/name).")
    elif not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        problems.append("DATABASE_URL must point to PostgreSQL in production.")
    if not redis_url:
        problems.append("REDIS_URL is required (redis://host:6379/0) for the cache, rate limits and Celery.")
    return problems


def validate_production(**settings_values) -> None:
    problems = production_problems(**settings_values)
    if problems:
        raise ImproperlyConfigured(
            "CampusIQ refuses to start with unsafe production settings:\n- " + "\n- ".join(problems)
        )
