"""Celery: the sample task, eager and on a real worker with Redis, request id carried across."""

import json
import os
import subprocess
import sys
import time

import pytest
import redis
import structlog
from celery import Celery

from campusiq.core.tasks import ping
from tests.support.processes import ROOT, stop


def test_ping_task_returns_pong():
    assert ping.apply(args=["x"]).get() == "pong: x"


def test_reliability_defaults(settings):
    from campusiq.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"] and app.conf.task_serializer == "json"
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


@pytest.mark.redis
def test_real_worker_runs_task_with_the_request_id():
    broker = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.test",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "LOG_FORMAT": "json",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "campusiq",
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sender = Celery(broker=broker, backend=broker)
    sender.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    try:
        structlog.contextvars.bind_contextvars(request_id="trace-worker-000001")
        try:
            result = sender.send_task("core.ping", args=["over redis"])
        finally:
            structlog.contextvars.clear_contextvars()
        assert result.get(timeout=60) == "pong: over redis"
        time.sleep(0.5)
    finally:
        output = stop(worker)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    ping_lines = [line for line in lines if line.get("event") == "core.ping"]
    assert ping_lines, output[-2000:]
    assert ping_lines[0]["request_id"] == "trace-worker-000001"
    assert ping_lines[0]["task_id"] == result.id


@pytest.mark.django_db
def test_beat_schedule_names_registered_tasks():
    from campusiq.celery import app

    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry["task"]


@pytest.mark.django_db
def test_idempotency_purge_task_runs():
    from campusiq.core.tasks import idempotency_keys_purge

    assert idempotency_keys_purge.delay().get() == 0


@pytest.mark.django_db
def test_expired_sessions_purge_deletes_expired_sessions_only(client, settings):
    import datetime

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from campusiq.core.tasks import expired_sessions_purge
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    live = Session.objects.get()
    Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - datetime.timedelta(days=1)
    )
    expired_sessions_purge.delay().get()
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
    assert "expired-sessions-purge" in settings.CELERY_BEAT_SCHEDULE
