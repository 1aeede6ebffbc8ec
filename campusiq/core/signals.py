"""Celery signal handlers: the request id carried from the web request into every task it enqueues
and into its logs; task outcomes counted in campusiq_celery_tasks_total; and, in a worker, the
outbox flush at start-up (the worker's metrics endpoint is in campusiq/celery.py)."""

import structlog
from celery.signals import (
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_revoked,
    task_success,
    task_unknown,
    worker_ready,
)

from campusiq.core.metrics import CELERY_TASKS
from campusiq.core.request_id import current_request_id

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "campusiq_request_id"
_bound_tokens: dict[str, dict] = {}


@before_task_publish.connect
def add_request_id_header(headers: dict | None = None, **_kwargs) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@task_prerun.connect
def bind_task_context(task_id: str | None = None, task=None, **_kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        REQUEST_ID_HEADER
    )
    context = {"task_id": task_id, "task_name": getattr(task, "name", None)}
    if request_id:
        context["request_id"] = request_id
    _bound_tokens[task_id] = structlog.contextvars.bind_contextvars(**context)


@task_postrun.connect
def unbind_task_context(task_id: str | None = None, **_kwargs) -> None:
    tokens = _bound_tokens.pop(task_id, None)
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)


def _task_name(task) -> str:
    return getattr(task, "name", None) or "unknown"


@task_success.connect
def count_task_success(sender=None, **_kwargs) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="success").inc()


@task_failure.connect
def count_task_failure(sender=None, **_kwargs) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="failure").inc()


@task_retry.connect
def count_task_retry(sender=None, **_kwargs) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="retry").inc()


@task_revoked.connect
def count_task_revoked(sender=None, expired: bool = False, **_kwargs) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="expired" if expired else "revoked").inc()


@task_unknown.connect
def count_task_unknown(name: str | None = None, **_kwargs) -> None:
    # A message for a task this release does not have (renamed, or sent by a newer release).
    CELERY_TASKS.labels(task=name or "unknown", outcome="unknown").inc()


@worker_ready.connect
def flush_outbox_on_start(sender=None, **_kwargs) -> None:
    """Tasks kept in the outbox while the broker was down are published as soon as a worker is up,
    not at the next beat tick. Sent (never run here): the worker's main process stays off the database."""
    app = getattr(sender, "app", None)
    if app is None or app.conf.task_always_eager:  # eager: nothing is ever kept in the outbox
        return
    try:
        app.send_task("core.outbox_flush", ignore_result=True)
    except Exception as error:  # start-up goes on; beat flushes every minute anyway
        log.warning("outbox.flush_not_sent", error=f"{type(error).__name__}: {error}")
