import structlog
from celery import shared_task

log = structlog.get_logger(__name__)


@shared_task(name="core.ping", soft_time_limit=10, time_limit=15)
def ping(message: str = "ping") -> str:
    """A harmless task to prove the worker, the broker and the log context work end to end."""
    log.info("core.ping", message=message)
    return f"pong: {message}"
