"""The test suite. Fast hashing and in-process defaults; DATABASE_URL and REDIS_URL, when set by
scripts/services.sh, point the suite at the real PostgreSQL and Redis."""

import atexit
import os
import shutil
import tempfile

from .base import *  # noqa: F403

DEBUG = False
# Bandit B105: not a secret: a name, code or example.
SECRET_KEY = "test-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH"  # noqa: S105  (tests only)  # nosec B105
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "campusiq_ratelimit_cache",
    },
}
# Static files straight from the finders: the suite never runs collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Quiet test output; tests that read logs attach their own handler (tests/conftest.py: log_output).
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Model artifacts written by tests go to a throwaway directory, never the working tree.
MODEL_ARTIFACT_ROOT = Path(tempfile.mkdtemp(prefix="campusiq-test-models-"))  # noqa: F405
STORAGES["models"] = {  # noqa: F405
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(MODEL_ARTIFACT_ROOT)},
}
# Attachments uploaded by tests too.
PRIVATE_FILE_ROOT = Path(tempfile.mkdtemp(prefix="campusiq-test-private-"))  # noqa: F405
STORAGES["private"] = {  # noqa: F405
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(PRIVATE_FILE_ROOT)},
}
# Backups written by tests go to a throwaway directory too.
BACKUP_ROOT = Path(tempfile.mkdtemp(prefix="campusiq-test-backups-"))  # noqa: F405


def _remove_throwaway_directories(owner: int = os.getpid()) -> None:
    # Forked children inherit this hook; only the process that made the directories removes them.
    if os.getpid() == owner:
        for directory in (MODEL_ARTIFACT_ROOT, PRIVATE_FILE_ROOT, BACKUP_ROOT):
            shutil.rmtree(directory, ignore_errors=True)


atexit.register(_remove_throwaway_directories)
