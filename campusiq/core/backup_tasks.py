"""The nightly backup as a Celery task (CELERY_BEAT_SCHEDULE names it; `manage.py backup` does the same)."""

import psycopg
from celery import shared_task
from django.db import OperationalError

from campusiq.core.backups import backup_create


# A run takes minutes on a large campus; the time limit stays under the broker's visibility timeout.
# Running it twice is harmless: retention keeps one backup per day.
@shared_task(
    name="core.backup_nightly",
    soft_time_limit=90 * 60,
    time_limit=100 * 60,
    autoretry_for=(OperationalError, psycopg.OperationalError),
    retry_backoff=300,
    max_retries=3,
)
def backup_nightly() -> str:
    """Backs up the database and the model artifacts; returns the backup's path."""
    result = backup_create()
    return str(result.path)
