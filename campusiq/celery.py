import logging
import os

from celery import Celery
from celery.signals import worker_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campusiq.settings.prod")

app = Celery("campusiq")
# Every CELERY_* Django setting configures the app (reliability defaults live in settings/base.py).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def metrics_server_start(**kwargs) -> None:
    """With CELERY_METRICS_PORT set, the worker serves its Prometheus metrics (task outcomes, scoring
    runs) there; under PROMETHEUS_MULTIPROC_DIR the pool processes' samples are added up."""
    port = os.environ.get("CELERY_METRICS_PORT")
    if not port:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    try:
        # Binds where the operator says (CELERY_METRICS_ADDRESS); all interfaces inside a container by default.
        start_http_server(int(port), addr=os.environ.get("CELERY_METRICS_ADDRESS", "0.0.0.0"), registry=registry)  # noqa: S104  # nosec B104
    except OSError as error:  # the port is taken: the worker still works, unscraped
        logging.getLogger(__name__).error("worker metrics unavailable on port %s: %s", port, error)


@worker_process_shutdown.connect
def metrics_process_forget(pid=None, **kwargs) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
