import structlog
from celery import shared_task

log = structlog.get_logger(__name__)


@shared_task(name="core.ping", soft_time_limit=10, time_limit=15)
def ping(message: str = "ping") -> str:
    """A harmless task to prove the worker, the broker and the log context work end to end."""
    log.info("core.ping", message=message)
    return f"pong: {message}"


@shared_task(name="core.idempotency_keys_purge", soft_time_limit=300, time_limit=360)
def idempotency_keys_purge() -> int:
    """Forgets Idempotency-Key responses older than a day. Idempotent."""
    from campusiq.core.idempotency import idempotency_keys_purge as purge

    purged = purge()
    log.info("core.idempotency_keys_purged", count=purged)
    return purged


@shared_task(name="core.outbox_flush", soft_time_limit=120, time_limit=150)
def outbox_flush() -> int:
    """Publishes the tasks kept in the outbox while the broker was down (campusiq/core/outbox.py).
    Idempotent: each message is marked sent once published, and the tasks it sends are idempotent."""
    from campusiq.core.outbox import outbox_flush as flush

    return flush()


@shared_task(name="core.expired_sessions_purge", soft_time_limit=300, time_limit=360)
def expired_sessions_purge() -> None:
    """Deletes expired sessions (Django's `clearsessions`), and with them their sign-in index
    (accounts.SignedInSession cascades). Without it, expired sessions stay in the database. Idempotent."""
    from importlib import import_module

    from django.conf import settings

    from campusiq.core.counters import counters_purge_expired

    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    counters = counters_purge_expired()  # rate-limit counters left in the table by an outage or development
    log.info("core.expired_sessions_purged", rate_counters=counters)


@shared_task(name="core.import_job_run", soft_time_limit=100 * 60, time_limit=110 * 60)
def import_job_run(job_id: int) -> str:
    """Runs a big-file import (campusiq/core/imports.py). Idempotent: a job already started is left alone,
    and a job interrupted mid-way wrote nothing (one transaction)."""
    from campusiq.core.imports import import_job_run as run

    return run(job_id=job_id).status
