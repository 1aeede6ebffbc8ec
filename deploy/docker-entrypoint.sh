#!/bin/sh
# The image's entrypoint. The first argument picks the role:
#   web (default)  gunicorn with deploy/gunicorn.conf.py
#   worker         a Celery worker (acks_late, time limits and retries are in the settings)
#   beat           Celery beat: exactly one per deployment
#   migrate        apply migrations, once per release, before the new web and workers start
# Anything else runs as given, e.g. `python manage.py backup` or `deploy/scripts/restore.sh FILE`.
set -eu

# prometheus_client keeps one file per process here; files left by a previous run of this container
# would add dead processes' samples to every scrape.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
fi

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
    web)
        exec gunicorn -c deploy/gunicorn.conf.py campusiq.wsgi:application "$@"
        ;;
    worker)
        # Concurrency is set, never derived: a container sees every core of its host.
        exec celery -A campusiq worker \
            --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
            --concurrency="${CELERY_WORKER_CONCURRENCY:-2}" \
            --max-tasks-per-child="${CELERY_WORKER_MAX_TASKS_PER_CHILD:-200}" \
            "$@"
        ;;
    beat)
        # --enable-remote-control: beat answers `celery inspect ping` while it ticks (the health check).
        exec celery -A campusiq beat --enable-remote-control \
            --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
            --schedule="${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" \
            "$@"
        ;;
    migrate)
        python manage.py migrate --noinput "$@"
        # Compose: nginx serves /static/ from a shared volume. Hashed names never collide, so the
        # previous release's files stay for pages it already served.
        if [ -n "${STATIC_PUBLISH_DIR:-}" ]; then
            cp -R "${DJANGO_STATIC_ROOT:-/app/staticfiles}/." "$STATIC_PUBLISH_DIR"/
            echo "static files published to $STATIC_PUBLISH_DIR"
        fi
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
