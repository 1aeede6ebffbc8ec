from django.conf import settings
from django.core.checks import Error, register


@register("campusiq")
def celery_visibility_outlasts_tasks(app_configs, **kwargs) -> list[Error]:
    """Redis redelivers unacknowledged tasks after the visibility timeout: a shorter one runs tasks twice."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if visibility <= settings.CELERY_TASK_TIME_LIMIT:
        return [
            Error(
                f"CELERY_VISIBILITY_TIMEOUT ({visibility}s) must be longer than CELERY_TASK_TIME_LIMIT "
                f"({settings.CELERY_TASK_TIME_LIMIT}s), or long tasks are delivered twice.",
                id="campusiq.E001",
            )
        ]
    return []
