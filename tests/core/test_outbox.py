"""The outbox: a request that enqueues a task succeeds when the broker is down, and the task is published
later by core.outbox_flush. Simulated broker errors, a real unreachable Redis, and a real Redis."""

import ast
import datetime
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import redis
import time_machine
from celery.app.task import Task
from django.conf import settings
from django.urls import reverse
from kombu.exceptions import OperationalError

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from campusiq.celery import app
from campusiq.core import outbox, signals
from campusiq.core.models import OutboxMessage
from campusiq.core.tasks import outbox_flush, ping
from predictions.models import ScoringRun
from tests.factories import (
    SESSION_START,
    ClassSessionFactory,
    EnrollmentFactory,
    ModelVersionFactory,
    SectionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once


@pytest.fixture(autouse=True)
def _project_app():
    """Shared tasks resolve to the current app: make sure it is the project's (a test that made an app of
    its own may have left that one current)."""
    app.set_current()


@contextmanager
def celery_broker(url: str | None = None):
    """Celery as in production for the duration: not eager, and publishing to `url` when given. The app
    reads the Django settings once, so its configuration is changed in place and put back after."""
    conf = app.conf
    saved = (conf.task_always_eager, conf.broker_url)
    _forget_broker_connections()
    conf.task_always_eager = False
    if url:
        conf.broker_url = url
    try:
        yield
    finally:
        _forget_broker_connections()
        conf.task_always_eager, conf.broker_url = saved


def _forget_broker_connections() -> None:
    # The pools are looked up again for the broker URL of the moment (kombu keeps one per URL).
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down():
    """Every publish fails as kombu fails when Redis is unreachable."""
    with celery_broker(), mock.patch.object(Task, "apply_async", side_effect=OperationalError("Connection refused")):
        yield


@pytest.fixture
def broker_up():
    """Publishing succeeds; the calls are recorded (the tasks are not run)."""
    with celery_broker(), mock.patch.object(Task, "apply_async", autospec=True) as published:
        yield published


@pytest.fixture
def ended_session():
    lecturer = UserFactory(roles=[Role.LECTURER])
    section = SectionFactory(lecturers=[lecturer])
    for _ in range(3):
        EnrollmentFactory(section=section)
    session = ClassSessionFactory(section=section, state=ClassSession.State.OPEN, opened_at=SESSION_START)
    return SimpleNamespace(session=session, lecturer=lecturer)


def close_by_api(client, ended):
    client.force_login(ended.lecturer)
    with time_machine.travel(ended.session.ends_at, tick=False):
        return client.post(
            f"/api/v1/class-sessions/{ended.session.pk}/close/",
            data="{}",
            content_type="application/json",
            HTTP_X_REQUEST_ID="trace-outbox-000001",
        )


@pytest.fixture
def scoring_possible(term):
    """A current term and an active model (its artifact is never loaded: the run is only enqueued)."""
    version = ModelVersionFactory(status="active")
    with mock.patch("predictions.services.scoring_model_load", return_value=SimpleNamespace(version=version)):
        yield term


# --- Eager (dev, tests) ----------------------------------------------------------------------


def test_eager_enqueue_runs_the_task_in_process_and_keeps_nothing():
    with mock.patch.object(ping, "run", wraps=ping.run) as ran:
        assert outbox.enqueue(ping, message="now") is True
    ran.assert_called_once_with(message="now")
    assert not OutboxMessage.objects.exists()


# --- Tasks enqueued by name -------------------------------------------------------------------


def _names_enqueued_in_the_code() -> set[str]:
    """Every task name the project's code (tests aside) hands to outbox.enqueue as a string."""
    names = set()
    folders = [folder for folder in Path(settings.BASE_DIR).iterdir() if (folder / "__init__.py").exists()]
    for source in (source for folder in folders if folder.name != "tests" for source in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            if getattr(node.func, "id", getattr(node.func, "attr", None)) == "enqueue":
                names.add(node.args[0].value)
    return names


def test_every_task_name_the_services_enqueue_is_a_registered_task():
    """A renamed task would otherwise only fail in the request that enqueues it (or wait unsent in the outbox)."""
    app.loader.import_default_modules()
    names = _names_enqueued_in_the_code()
    assert {"attendance.warnings_send", "predictions.scoring_run_execute"} <= names
    assert names <= set(app.tasks), names - set(app.tasks)


def test_enqueue_by_an_unknown_name_fails_in_the_caller():
    with pytest.raises(KeyError):
        outbox.enqueue("attendance.no_such_task", section_id=1)
    assert not OutboxMessage.objects.exists()


# --- Broker errors --------------------------------------------------------------------------


def test_closing_a_session_with_the_broker_down_succeeds_and_keeps_the_warnings_task(
    client, ended_session, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = close_by_api(client, ended_session)
    assert response.status_code == 200, response.content
    assert response.json()["marked_absent"] == 3
    message = OutboxMessage.objects.get()
    assert message.task == "attendance.warnings_send"
    assert message.kwargs == {"section_id": ended_session.session.section_id}
    assert message.sent_at is None and message.attempts == 1
    assert "Connection refused" in message.last_error


def test_the_scoring_run_api_with_the_broker_down_answers_202_and_keeps_the_run(client, scoring_possible, broker_down):
    client.force_login(UserFactory(roles=[Role.REGISTRAR]))
    response = client.post("/api/v1/scoring-runs/", data="{}", content_type="application/json")
    assert response.status_code == 202, response.content
    run = ScoringRun.objects.get(pk=response.json()["id"])
    assert run.started_at is None  # not scored yet: the worker will, once the run is published
    message = OutboxMessage.objects.get()
    assert (message.task, message.kwargs) == ("predictions.scoring_run_execute", {"run_id": run.pk})


def test_the_admin_button_with_the_broker_down_redirects_and_keeps_the_run(client, scoring_possible, broker_down):
    client.force_login(UserFactory(roles=[Role.REGISTRAR], is_staff=True))
    response = client.post(reverse("admin:predictions_scoringrun_start"))
    assert response.status_code == 302
    run = ScoringRun.objects.get()
    message = OutboxMessage.objects.get()
    assert (message.task, message.kwargs) == ("predictions.scoring_run_execute", {"run_id": run.pk})


def test_with_the_broker_up_nothing_is_kept(broker_up):
    assert outbox.enqueue(ping, message="up") is True
    (call,) = broker_up.call_args_list
    assert call.args[0].name == "core.ping" and call.kwargs["kwargs"] == {"message": "up"}
    assert call.kwargs["retry_policy"]["max_retries"] <= 1  # a request never waits through long retries
    assert not OutboxMessage.objects.exists()


# --- Flush ----------------------------------------------------------------------------------


def test_flush_publishes_unsent_messages_once_and_marks_them_sent(broker_up):
    first = OutboxMessage.objects.create(task="attendance.warnings_send", kwargs={"section_id": 7}, attempts=1)
    second = OutboxMessage.objects.create(
        task="predictions.scoring_run_execute", kwargs={"run_id": 3}, attempts=1, request_id="trace-outbox-000002"
    )
    already = OutboxMessage.objects.create(task="core.ping", sent_at=datetime.datetime.now(datetime.UTC))

    assert outbox_flush.apply().get() == 2
    published = [
        (call.args[0].name, call.kwargs["kwargs"], call.kwargs["headers"]) for call in broker_up.call_args_list
    ]
    assert published == [
        ("attendance.warnings_send", {"section_id": 7}, None),
        ("predictions.scoring_run_execute", {"run_id": 3}, {"campusiq_request_id": "trace-outbox-000002"}),
    ]
    for message in (first, second):
        message.refresh_from_db()
        assert message.sent_at is not None and message.attempts == 2
    assert OutboxMessage.objects.get(pk=already.pk).attempts == 0

    broker_up.reset_mock()
    assert outbox_flush.apply().get() == 0  # a second flush has nothing to do
    broker_up.assert_not_called()


def test_flush_while_the_broker_is_still_down_keeps_the_messages(broker_down):
    message = OutboxMessage.objects.create(task="attendance.warnings_send", kwargs={"section_id": 7}, attempts=1)
    OutboxMessage.objects.create(task="attendance.warnings_send", kwargs={"section_id": 8}, attempts=1)
    assert outbox.outbox_flush() == 0
    message.refresh_from_db()
    assert message.sent_at is None and message.attempts == 2 and "Connection refused" in message.last_error
    assert OutboxMessage.objects.get(kwargs={"section_id": 8}).attempts == 1  # the flush stopped at the first error


def test_flush_forgets_messages_sent_over_a_week_ago(broker_up):
    now = datetime.datetime.now(datetime.UTC)
    OutboxMessage.objects.create(task="core.ping", sent_at=now - datetime.timedelta(days=8))
    recent = OutboxMessage.objects.create(task="core.ping", sent_at=now - datetime.timedelta(days=1))
    outbox.outbox_flush()
    assert list(OutboxMessage.objects.all()) == [recent]


def test_a_starting_worker_asks_for_a_flush():
    worker = SimpleNamespace(app=mock.Mock())
    worker.app.conf.task_always_eager = False
    signals.flush_outbox_on_start(sender=worker)
    worker.app.send_task.assert_called_once_with("core.outbox_flush", ignore_result=True)
    worker.app.send_task.side_effect = OperationalError("Connection refused")
    signals.flush_outbox_on_start(sender=worker)  # logged; beat flushes within the minute anyway


def test_the_flush_is_scheduled_every_minute():
    entry = app.conf.beat_schedule["core-outbox-flush"]
    assert entry == {"task": "core.outbox_flush", "schedule": 60}


# --- Real brokers ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_redis_unreachable_the_request_succeeds_quickly_and_the_task_waits_in_the_outbox(client, ended_session):
    with celery_broker(UNREACHABLE_BROKER):
        started = time.monotonic()
        response = close_by_api(client, ended_session)
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    assert elapsed < 3, f"the request waited {elapsed:.1f}s for the broker"
    assert AttendanceRecord.objects.filter(session=ended_session.session, status="absent").count() == 3
    message = OutboxMessage.objects.get()
    assert message.task == "attendance.warnings_send" and message.sent_at is None
    assert "Connection refused" in message.last_error or "111" in message.last_error
    assert message.request_id == "trace-outbox-000001"  # the flush sends it on to the task's logs


@pytest.fixture
def real_redis_broker():
    url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/10"
    client = redis.Redis.from_url(url)
    client.flushdb()
    with celery_broker(url):
        yield client
    client.flushdb()


def _queued(client: redis.Redis) -> list[dict]:
    return [json.loads(raw)["headers"] for raw in reversed(client.lrange("celery", 0, -1))]


@pytest.mark.redis
def test_with_redis_up_enqueue_publishes_and_a_flush_sends_what_was_kept(real_redis_broker):
    assert outbox.enqueue(ping, message="over redis") is True
    assert [headers["task"] for headers in _queued(real_redis_broker)] == ["core.ping"]
    assert not OutboxMessage.objects.exists()

    kept = OutboxMessage.objects.create(
        task="attendance.warnings_send", kwargs={"section_id": 7}, attempts=1, request_id="trace-outbox-000003"
    )
    assert outbox.outbox_flush() == 1
    assert outbox.outbox_flush() == 0
    queued = _queued(real_redis_broker)
    assert [headers["task"] for headers in queued] == ["core.ping", "attendance.warnings_send"]
    assert queued[1]["campusiq_request_id"] == "trace-outbox-000003"
    kept.refresh_from_db()
    assert kept.sent_at is not None
