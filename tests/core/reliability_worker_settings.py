"""Settings of the workers tests/core/test_celery_reliability.py starts: the test settings, with
unacknowledged messages swept every second instead of kombu's default of about every 100 s, so that a
redelivery after the (short, per worker: CELERY_VISIBILITY_TIMEOUT) visibility timeout happens within
the test's time."""

from campusiq.settings.test import *  # noqa: F403
from campusiq.settings.test import CELERY_BROKER_TRANSPORT_OPTIONS

CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
