"""Enqueue a Celery task without letting a broker outage fail the request that asked for it.

`enqueue("app.task_name", **kwargs)` publishes at once. When Redis cannot be reached it stores an OutboxMessage
instead (in the caller's transaction, if one is open) and returns: the user's request succeeds, and
the periodic task core.outbox_flush publishes the message once the broker is back (workers also
flush when they start). Only idempotent tasks are sent this way: a message may be published twice.
With eager Celery (dev, tests) the task simply runs in-process, as `.delay()` would.
"""

from datetime import timedelta

import redis
import structlog
from celery import Task
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from campusiq.core.models import OutboxMessage
from campusiq.core.request_id import current_request_id
from campusiq.core.signals import REQUEST_ID_HEADER

log = structlog.get_logger(__name__)

# What a publish raises when the broker is down or unreachable (kombu wraps most of them).
BROKER_ERRORS = (OperationalError, redis.RedisError, OSError)
# One quick retry (a pooled connection may be stale after a Redis restart), never a long wait: a web
# request is waiting. The timeouts are socket_connect_timeout and socket_timeout in CELERY_BROKER_TRANSPORT_OPTIONS.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
FLUSH_BATCH = 100
SENT_KEPT_FOR = timedelta(days=7)


def enqueue(task: Task | str, /, **kwargs) -> bool:
    """Publishes `task` (a task, or a registered task's name) with keyword arguments; True if published
    (or run eagerly), False if it was kept in the outbox for later. Never raises a broker error. Call it
    after commit (`transaction.on_commit`) when the task reads rows the caller is writing. Services pass
    the name, so that they never import their app's tasks module (which imports them)."""
    if isinstance(task, str):
        task = registered_task(task)
    if task.app.conf.task_always_eager:
        task.apply_async(kwargs=kwargs)
        return True
    try:
        _publish(task.app, task.name, args=[], kwargs=kwargs, request_id=current_request_id())
    except BROKER_ERRORS as error:
        OutboxMessage.objects.create(
            task=task.name,
            kwargs=kwargs,
            request_id=current_request_id() or "",
            attempts=1,
            last_error=_describe(error),
        )
        log.warning("outbox.stored", task=task.name, error=_describe(error))
        return False
    return True


def registered_task(name: str) -> Task:
    """The Celery task of that name; KeyError if no app defines it (a typo fails in the caller, not
    later in a worker). A web process imports no tasks module by itself: the first look-up of a name
    not yet known imports them all, as a worker does when it starts."""
    from campusiq.celery import app

    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def outbox_flush() -> int:
    """Publishes the unsent messages, oldest first, and marks each sent; stops at the first broker
    error (the broker is still down: the next flush tries again). Returns how many were published.
    Rows are locked with SKIP LOCKED (PostgreSQL), so flushes running at once do not both send one."""
    from campusiq.celery import app

    published = 0
    while True:
        with transaction.atomic():
            batch = list(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(sent_at__isnull=True)
                .order_by("created_at", "id")[:FLUSH_BATCH]
            )
            for message in batch:
                try:
                    _publish(app, message.task, args=message.args, kwargs=message.kwargs, request_id=message.request_id)
                except BROKER_ERRORS as error:
                    message.attempts += 1
                    message.last_error = _describe(error)
                    message.save(update_fields=["attempts", "last_error"])
                    log.warning("outbox.flush_failed", task=message.task, message=message.pk, error=message.last_error)
                    return published
                message.attempts += 1
                message.sent_at = timezone.now()
                message.save(update_fields=["attempts", "sent_at"])
                published += 1
        if len(batch) < FLUSH_BATCH:
            break
    OutboxMessage.objects.filter(sent_at__lt=timezone.now() - SENT_KEPT_FOR).delete()
    if published:
        log.info("outbox.flushed", count=published)
    return published


def _publish(app, name: str, *, args: list, kwargs: dict, request_id: str | None) -> None:
    options = {
        "headers": {REQUEST_ID_HEADER: request_id} if request_id else None,
        # Nobody waits for these results: it also spares a round trip to the result backend.
        "ignore_result": True,
        "retry": True,
        "retry_policy": PUBLISH_RETRY_POLICY,
    }
    task = app.tasks.get(name)
    if task is not None:
        task.apply_async(args=args, kwargs=kwargs, **options)  # the task's own options (queue, limits)
    else:
        app.send_task(name, args=args, kwargs=kwargs, **options)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:1000]
