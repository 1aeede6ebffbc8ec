import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campusiq.settings.prod")

app = Celery("campusiq")
# Every CELERY_* Django setting configures the app (reliability defaults live in settings/base.py).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
