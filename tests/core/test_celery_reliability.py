"""A task is not lost when its process dies mid-task, and its effect still happens exactly once.

A real `celery worker` (prefork, one pool process) on the real Redis and the PostgreSQL test database
runs tests/core/reliability_tasks.py: it closes a class session (absent records for the enrolled
students), then stalls before it is acknowledged, and the test kills it there. Two ways to die:

- the pool process is killed: the worker notices (billiard checks its pool every 5 s) and, with
  acks_late and reject_on_worker_lost, puts the message back; a new pool process runs it again. The
  visibility timeout (30 s for this worker) plays no part;
- the whole worker is killed: nobody is left to put it back; Redis holds it as unacknowledged until
  the visibility timeout (5 s for this worker), then another worker gets it.

Either way the task runs twice and the students are marked absent once.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection

from attendance.models import AttendanceRecord, ClassSession
from campusiq.core.models import AuditLogEntry
from tests.factories import SESSION_START, ClassSessionFactory, EnrollmentFactory, SectionFactory
from tests.support.processes import ROOT, stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
ENROLLED = 3
TASK = "tests.reliability.close_session_then_stall"
SHORT_VISIBILITY_TIMEOUT = 5


@pytest.fixture
def broker():
    url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def ended_session():
    section = SectionFactory()
    for _ in range(ENROLLED):
        EnrollmentFactory(section=section)
    return ClassSessionFactory(section=section, state=ClassSession.State.OPEN, opened_at=SESSION_START)


def start_worker(broker: str, log: Path, *, visibility_timeout: int) -> subprocess.Popen:
    """A worker as in production (prefork, acks late, prefetch 1) but for the visibility timeout, on the
    test database."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.core.reliability_worker_settings",
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
        "LOG_FORMAT": "console",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "celery", "-A", "campusiq", "worker", "--pool=prefork", "--concurrency=1"]
    command += ["--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO"]
    command += ["--include=tests.core.reliability_tasks", f"--hostname=reliability-{time.monotonic_ns()}@%h"]
    with log.open("a") as output:
        # A session of its own, so that the whole worker (main and pool processes) can be killed at once.
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(path: Path, worker: subprocess.Popen, log: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if worker.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{path.name} never appeared; worker log:\n{log.read_text()[-3000:]}")


def send(broker: str, session: ClassSession, run_log: Path):
    sender = Celery(broker=broker, backend=broker, set_as_current=False)  # the project's app stays current
    sender.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    return sender.send_task(TASK, kwargs={"session_id": session.pk, "run_log": str(run_log)})


def runs(run_log: Path) -> list[tuple[int, float]]:
    return [(int(pid), float(at)) for pid, at in (line.split() for line in run_log.read_text().splitlines())]


def assert_marked_absent_once(session: ClassSession) -> None:
    absent = AttendanceRecord.objects.filter(session=session, status=AttendanceRecord.Status.ABSENT)
    assert absent.count() == ENROLLED
    assert absent.values("student").distinct().count() == ENROLLED
    assert AuditLogEntry.objects.filter(verb="class_session.closed", object_id=str(session.pk)).count() == 1
    session.refresh_from_db()
    assert session.state == ClassSession.State.CLOSED


def still_queued(broker: str, task_id: str) -> bool:
    client = redis.Redis.from_url(broker)
    pending = [*client.lrange("celery", 0, -1), *client.hvals("unacked")]
    return any(task_id.encode() in message for message in pending)


def test_a_killed_pool_process_task_is_redelivered_and_its_effect_happens_once(broker, ended_session, tmp_path):
    run_log, worker_log = tmp_path / "runs", tmp_path / "worker.log"
    visibility_timeout = 30
    worker = start_worker(broker, worker_log, visibility_timeout=visibility_timeout)
    try:
        result = send(broker, ended_session, run_log)
        pool_process = int(wait_for(Path(f"{run_log}.stalled"), worker, worker_log))
        assert pool_process != worker.pid  # the pool process, not the worker
        assert AttendanceRecord.objects.filter(session=ended_session).count() == ENROLLED  # the work is done
        killed_at = time.monotonic()
        os.kill(pool_process, signal.SIGKILL)
        assert result.get(timeout=30) == 0  # the second run found everyone already marked
        redelivered_after = time.monotonic() - killed_at
    finally:
        stop(worker)
    (first, _), (second, _) = runs(run_log)
    assert first == pool_process and second != pool_process  # ran twice, in two pool processes
    assert redelivered_after < visibility_timeout / 2  # put back by the worker, not by the visibility timeout
    assert "WorkerLostError" in worker_log.read_text()
    assert not still_queued(broker, result.id)  # acknowledged: no third delivery is coming
    assert_marked_absent_once(ended_session)


def test_a_task_of_a_killed_worker_is_redelivered_after_the_visibility_timeout_and_its_effect_happens_once(
    broker, ended_session, tmp_path
):
    run_log, worker_log = tmp_path / "runs", tmp_path / "worker.log"
    worker = start_worker(broker, worker_log, visibility_timeout=SHORT_VISIBILITY_TIMEOUT)
    try:
        result = send(broker, ended_session, run_log)
        wait_for(Path(f"{run_log}.stalled"), worker, worker_log)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool process: nobody acknowledges or rejects
        worker.wait(timeout=10)
        worker = start_worker(broker, worker_log, visibility_timeout=SHORT_VISIBILITY_TIMEOUT)
        assert result.get(timeout=30) == 0
    finally:
        stop(worker)
    (_, first_started), (_, second_started) = runs(run_log)
    assert second_started - first_started >= SHORT_VISIBILITY_TIMEOUT  # Redis held it until the timeout
    assert_marked_absent_once(ended_session)
