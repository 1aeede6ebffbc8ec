import importlib

from django.conf import settings
from django.core.checks import Error, register


@register("campusiq")
def celery_visibility_outlasts_tasks(app_configs, **kwargs) -> list[Error]:
    """Redis redelivers unacknowledged tasks after the visibility timeout: one shorter than a task's
    time limit lets a long task be delivered to a second worker while the first still runs it."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    longest, which = _longest_time_limit()
    if visibility <= longest:
        return [
            Error(
                f"CELERY_VISIBILITY_TIMEOUT ({visibility}s) must be longer than {which} ({longest}s), "
                "or long tasks are delivered twice.",
                id="campusiq.E001",
            )
        ]
    return []


def _longest_time_limit() -> tuple[int, str]:
    """The default time limit, or a task's own when longer (e.g. scoring runs)."""
    from campusiq.celery import app

    longest, which = settings.CELERY_TASK_TIME_LIMIT, "CELERY_TASK_TIME_LIMIT"
    # Imports every task module now (Celery otherwise waits for a worker to start).
    app.autodiscover_tasks(force=True)
    for module in (*app.conf.imports, *app.conf.include):
        importlib.import_module(module)
    for task in app.tasks.values():
        if task.time_limit and task.time_limit > longest:
            longest, which = task.time_limit, f"the time limit of {task.name}"
    return longest, which
