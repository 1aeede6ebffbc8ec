"""gunicorn settings for production and for the benchmarks. Every value can be set from the environment."""

import gc
import multiprocessing
import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Classic sizing for I/O-bound Django: two workers per core plus one.
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Import the app once in the master (and scikit-learn, openpyxl: when_ready below): a recycled worker is
# then a fork, not a fresh import of Django and scikit-learn (about 2.5 s of CPU each time). Nothing opens a
# connection at import.
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() in {"1", "true", "yes"}
# Recycle workers now and then so a slow leak never becomes an outage.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
backlog = _int("GUNICORN_BACKLOG", 2048)
# Heartbeat files on tmpfs: a worker is never killed because a disk was slow.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108  # nosec B108
# CampusIQ writes its own access line (with the request id); gunicorn's would double it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Only the reverse proxy may set X-Forwarded-For / -Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
limit_request_line = 8190
limit_request_fields = 100


def when_ready(server):
    """In the master, after the preloaded app and before the first fork: what a worker would otherwise import
    on its first scoring, schema or export request (campusiq.wsgi.worker_imports_preload)."""
    if server.cfg.preload_app:
        from campusiq.wsgi import worker_imports_preload

        worker_imports_preload()


def pre_fork(server, worker):
    """Everything the master loaded (Django, scikit-learn, the URL lookups) lives as long as the worker:
    frozen, the worker's garbage collector never walks it, so it never writes to (and copies) the
    memory pages it shares with the master. That keeps workers small and a recycled one fast."""
    gc.freeze()


def child_exit(server, worker):
    """With PROMETHEUS_MULTIPROC_DIR, a dead worker's live gauges stop counting (campusiq.core.metrics)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
