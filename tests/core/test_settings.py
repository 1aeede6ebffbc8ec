"""Production start-up refuses unsafe configuration, each problem with its own message."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured

from campusiq.core.checks import celery_visibility_outlasts_tasks
from campusiq.settings.validation import production_problems, validate_production

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k3Jf8#vQ2!pLx9@Rz7$Wm4^Tn6&Yb1*Hc5(Ds0)Ge8-Fa2+Ju7=Ki3"
SAFE = {
    "secret_key": GOOD_KEY,
    "debug": False,
    "allowed_hosts": ["campus.example.edu"],
    "database_url": "postgres://campusiq:pw@db:5432/campusiq",
    "redis_url": "redis://redis:6379/0",
}
PROD_ENV = {
    "DJANGO_SECRET_KEY": GOOD_KEY,
    "DJANGO_ALLOWED_HOSTS": "campus.example.edu",
    "DATABASE_URL": "postgres://campusiq:pw@db:5432/campusiq",
    "REDIS_URL": "redis://redis:6379/0",
}


def test_safe_settings_pass():
    assert production_problems(**SAFE) == []
    validate_production(**SAFE)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"secret_key": ""}, "DJANGO_SECRET_KEY is required"),
        ({"secret_key": "short-key"}, "DJANGO_SECRET_KEY is unsafe"),
        ({"secret_key": "django-insecure-" + "x" * 60}, "DJANGO_SECRET_KEY is unsafe"),
        ({"secret_key": "ab" * 40}, "DJANGO_SECRET_KEY is unsafe"),
        ({"debug": True}, "DJANGO_DEBUG must be off"),
        ({"allowed_hosts": []}, "DJANGO_ALLOWED_HOSTS is required"),
        ({"allowed_hosts": ["*"]}, "'*' is not allowed"),
        ({"database_url": ""}, "DATABASE_URL is required"),
        ({"database_url": "sqlite:///db.sqlite3"}, "DATABASE_URL must point to PostgreSQL"),
        ({"redis_url": ""}, "REDIS_URL is required"),
    ],
)
def test_each_unsafe_setting_is_refused_with_its_message(override, message):
    problems = production_problems(**{**SAFE, **override})
    assert len(problems) == 1
    assert message in problems[0]
    with pytest.raises(ImproperlyConfigured, match="refuses to start"):
        validate_production(**{**SAFE, **override})


def test_all_problems_are_reported_at_once():
    problems = production_problems(secret_key="", debug=True, allowed_hosts=[], database_url="", redis_url="")
    assert len(problems) == 5


def run_prod_settings(monkeypatch, env: dict) -> dict:
    for name in list(os.environ):
        # Not the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE: Playwright's loop outlives them in this thread.
        if name.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_")) and name != "DJANGO_ALLOW_ASYNC_UNSAFE":
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_module("campusiq.settings.prod")


def test_production_settings_load_with_safe_environment(monkeypatch):
    prod = run_prod_settings(monkeypatch, PROD_ENV)
    assert prod["DEBUG"] is False
    assert prod["DATABASES"]["default"]["ENGINE"] == "django_prometheus.db.backends.postgresql"  # django_db_*
    # Redis behind a circuit breaker: rate limits fall back to the database, never to nothing.
    ratelimit = prod["CACHES"]["ratelimit"]
    assert ratelimit["BACKEND"] == "campusiq.core.cache.FailoverCache"
    assert ratelimit["OPTIONS"]["PRIMARY"]["BACKEND"] == "django_prometheus.cache.backends.redis.RedisCache"
    assert ratelimit["OPTIONS"]["PRIMARY"]["LOCATION"] == PROD_ENV["REDIS_URL"]
    assert ratelimit["OPTIONS"]["FALLBACK"]["BACKEND"] == "campusiq.core.cache.LockingDatabaseCache"
    # PostgreSQL unreachable: a request gives up connecting quickly and answers 503.
    assert prod["DATABASES"]["default"]["OPTIONS"]["connect_timeout"] == 2
    assert prod["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is True
    assert "campusiq.core.middleware.DatabaseUnavailableMiddleware" in prod["MIDDLEWARE"]
    assert prod["SECURE_HSTS_SECONDS"] >= 31536000
    assert prod["SESSION_COOKIE_SECURE"] and prod["CSRF_COOKIE_SECURE"] and prod["SECURE_SSL_REDIRECT"]
    assert prod["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert prod["CELERY_TASK_ALWAYS_EAGER"] is False


def test_production_settings_refuse_missing_secret(monkeypatch):
    env = {k: v for k, v in PROD_ENV.items() if k != "DJANGO_SECRET_KEY"}
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is required"):
        run_prod_settings(monkeypatch, env)


def test_secrets_can_come_from_files(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(GOOD_KEY + "\n")
    db_file = tmp_path / "database_url"
    db_file.write_text("postgres://u:from-file@db:5432/campus")
    env = {k: v for k, v in PROD_ENV.items() if k not in {"DJANGO_SECRET_KEY", "DATABASE_URL"}}
    env |= {"DJANGO_SECRET_KEY_FILE": str(secret_file), "DATABASE_URL_FILE": str(db_file)}
    prod = run_prod_settings(monkeypatch, env)
    assert prod["SECRET_KEY"] == GOOD_KEY
    assert prod["DATABASES"]["default"]["PASSWORD"] == "from-file"


def test_secret_file_that_does_not_exist_is_refused(monkeypatch, tmp_path):
    env = {k: v for k, v in PROD_ENV.items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_SECRET_KEY_FILE"] = str(tmp_path / "missing")
    with pytest.raises(ImproperlyConfigured, match="not a readable file"):
        run_prod_settings(monkeypatch, env)


def test_process_start_fails_fast_with_readable_message():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    env["DJANGO_SETTINGS_MODULE"] = "campusiq.settings.prod"
    env["DJANGO_DEBUG"] = "true"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    for message in ["DJANGO_SECRET_KEY is required", "DJANGO_DEBUG must be off", "DATABASE_URL is required"]:
        assert message in result.stderr


def test_visibility_timeout_must_outlast_the_longest_task(settings):
    assert celery_visibility_outlasts_tasks(None) == []
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": settings.CELERY_TASK_TIME_LIMIT}
    errors = celery_visibility_outlasts_tasks(None)
    assert [type(e) for e in errors] == [Error] and errors[0].id == "campusiq.E001"


def test_visibility_timeout_must_outlast_a_task_with_a_longer_limit_of_its_own(settings):
    from campusiq.celery import app

    assert celery_visibility_outlasts_tasks(None) == []  # imports every task module
    longest = max((task for task in app.tasks.values() if task.time_limit), key=lambda task: task.time_limit)
    assert longest.time_limit > settings.CELERY_TASK_TIME_LIMIT  # scoring runs, backups
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": longest.time_limit - 1}
    (error,) = celery_visibility_outlasts_tasks(None)
    assert error.id == "campusiq.E001" and longest.name in error.msg


def test_ratelimit_uses_a_shared_cache(settings):
    backend = settings.CACHES[settings.RATELIMIT_USE_CACHE]["BACKEND"]
    assert "locmem" not in backend.lower()
