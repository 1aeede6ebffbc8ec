"""Health endpoints for load balancers and orchestrators. Neither is rate limited, and a success is
not logged (campusiq.core.middleware.QUIET_PATH_PREFIXES)."""

import secrets
import time
from collections.abc import Callable

import structlog
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from campusiq.core.cache import FailoverCache
from campusiq.core.metrics import READY

log = structlog.get_logger(__name__)

# A check returns (status, detail): "ok", "degraded" or another word it chooses ("skipped", "none"), or
# raises, which reports "fail" with the error's type.
Check = Callable[[], tuple[str, str]]
# Readiness checks in the order /health/ready reports them: this module's own, then those the apps
# register from their AppConfig.ready().
_checks: dict[str, Check] = {}
_required: set[str] = set()


def health_check_register(name: str, check: Check, *, required: bool) -> None:
    """Adds `check` to /health/ready. A required check that fails makes the instance not ready (503); any
    other failure, like a check answering "degraded", makes it "degraded" and still 200."""
    _checks[name] = check
    if required:
        _required.add(name)
    else:
        _required.discard(name)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process answers. Checks no dependency: a database outage must not restart every pod."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Can this instance serve? Each registered check (database, cache (Redis), Celery broker, and those
    of the apps) with its status and latency. 503 when a required one fails: the database, since nothing
    works without it. Another failure is "degraded" and still 200: pages and check-ins work without a
    cache or broker (the caches fall back, campusiq/core/cache.py; tasks wait in the outbox), and taking
    every pod out of service would not help."""
    checks = {name: _timed(name, check) for name, check in _checks.items()}
    failed = {name for name, result in checks.items() if result["status"] == "fail"}
    ready = not failed & _required
    status = "fail" if not ready else ("degraded" if failed or _any_degraded(checks) else "ok")
    READY.set(1 if ready else 0)
    response = JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
    # Each failing check is logged above; django.request would add an error line per probe.
    response._has_been_logged = True
    return response


def _any_degraded(checks: dict) -> bool:
    return any(result["status"] == "degraded" for result in checks.values())


def _timed(name: str, check) -> dict:
    started = time.perf_counter()
    try:
        status, detail = check()
    except Exception as error:
        log.warning("readiness_check_failed", check=name, error=f"{type(error).__name__}: {error}")
        status, detail = "fail", type(error).__name__
    result = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    if detail:
        result["detail"] = detail
    return result


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok", ""


def _cache():
    """Each cache round trip. A FailoverCache probes Redis itself (closing its circuit when Redis is
    back) and is "degraded" while it serves from its fallback."""
    problems = {}
    for alias in settings.CACHES:
        backend = caches[alias]
        if isinstance(backend, FailoverCache):
            problem = backend.probe()
            if problem:
                problems[alias] = f"{problem} (serving from {type(backend.fallback).__name__})"
            continue
        nonce = secrets.token_hex(8)
        backend.set("health:ready", nonce, 10)
        if backend.get("health:ready") != nonce:
            return "fail", f"{alias}: value not read back"
    if problems:
        return "degraded", "; ".join(f"{alias}: {problem}" for alias, problem in problems.items())
    return "ok", ""


def _broker():
    from campusiq.celery import app

    if app.conf.task_always_eager:
        return "skipped", "tasks run in-process (CELERY_TASK_ALWAYS_EAGER)"
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    return "ok", ""


health_check_register("database", _database, required=True)
health_check_register("cache", _cache, required=False)
health_check_register("broker", _broker, required=False)
