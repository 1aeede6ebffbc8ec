"""The guarded /metrics endpoint, the plumbing's own metrics (campusiq_*), and the registry of collectors
read at scrape time. The apps define their metrics in their own `metrics` modules.

Under gunicorn every worker is its own process: with PROMETHEUS_MULTIPROC_DIR set (deploy/), each
writes its samples to files there and /metrics adds them up (prometheus_client multiprocess mode;
deploy/gunicorn.conf.py marks a dead worker's files). In production /metrics answers only callers
from METRICS_ALLOWED_CIDRS or with the METRICS_BEARER_TOKEN; everyone else gets 404.
"""

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable

import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

log = structlog.get_logger(__name__)

CELERY_TASKS = Counter("campusiq_celery_tasks", "Celery task outcomes by task.", ["task", "outcome"])
READY = Gauge("campusiq_ready", "1 when /health/ready last passed, else 0.", multiprocess_mode="mostrecent")
# Metrics read when /metrics is scraped, registered from the AppConfig.ready() of the apps that own them.
_collectors: dict[str, Callable[[], Iterable[Metric]]] = {}


def metrics_collector_register(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """`collect()` yields metric families (e.g. GaugeMetricFamily) read at scrape time; a failing one is
    logged and left out of that scrape, the others still answer."""
    _collectors[name] = collect


class _ThisProcess:
    """This process's own samples (without multiprocess mode: one process, e.g. runserver)."""

    def collect(self):
        return REGISTRY.collect()


class StateCollector:
    """Metrics read from the database, the broker and what the apps register when /metrics is scraped:
    they outlive any process (a worker restart does not reset a "last success" timestamp)."""

    def collect(self):
        yield from _queue_metrics()
        yield from _database_metrics()
        yield from _active_user_metrics()
        for name, collect in _collectors.items():
            try:
                families = list(collect())
            except Exception as error:
                log.warning("metrics_collector_failed", collector=name, error=f"{type(error).__name__}: {error}"[:300])
                continue
            yield from families


def _queue_metrics():
    queues = GaugeMetricFamily("campusiq_celery_queue_length", "Tasks waiting in each queue.", labels=["queue"])
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if broker.startswith(("redis://", "rediss://")) and not settings.CELERY_TASK_ALWAYS_EAGER:
        import redis

        client = redis.Redis.from_url(broker, socket_connect_timeout=1, socket_timeout=1)
        for queue in settings.CAMPUSIQ_CELERY_QUEUES:
            try:
                queues.add_metric([queue], client.llen(queue))
            except redis.RedisError:
                continue  # readiness reports the broker; /metrics still answers
    yield queues


def _database_metrics():
    """This database's connections by state, all clients (every worker, replica and Celery worker)."""
    connections = GaugeMetricFamily(
        "campusiq_db_connections", "Connections to this PostgreSQL database by state.", labels=["state"]
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' GROUP BY 1"
            )
            counts = dict(cursor.fetchall())
        for state in ("active", "idle", "idle in transaction"):
            counts.setdefault(state, 0)
        for state, count in sorted(counts.items()):
            connections.add_metric([state], count)
    yield connections


def _active_user_metrics():
    from campusiq.core.activity import WINDOW_SECONDS, active_users_count

    users = GaugeMetricFamily(
        "campusiq_active_users", f"Distinct signed-in users seen in the last {WINDOW_SECONDS // 60} minutes."
    )
    count = active_users_count()
    if count is not None:  # Redis unreachable: no sample rather than a false 0
        users.add_metric([], count)
    yield users


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_caller_allowed(request):
        # A bare 404 (no error page): the caller may have sent any Host, and learns nothing.
        return HttpResponseNotFound(b"", content_type="text/plain")
    if request.method not in ("GET", "HEAD"):  # after the caller check: strangers still learn nothing
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # Each gunicorn worker writes its samples to files; add them all up.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ThisProcess())
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def metrics_caller_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in settings.METRICS_ALLOWED_CIDRS)
