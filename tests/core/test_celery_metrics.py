"""Task outcomes counted in campusiq_celery_tasks_total{task, outcome}, from Celery's signals."""

from unittest import mock

import pytest
from celery.signals import task_revoked, task_unknown
from prometheus_client import REGISTRY

from campusiq.celery import app, metrics_server_start


@pytest.fixture(autouse=True)
def _project_app():
    app.set_current()  # a test that made a Celery app of its own may have left that one current


class Flaky(Exception):
    pass


@app.task(name="tests.metrics.succeeds")
def succeeds() -> str:
    return "done"


@app.task(name="tests.metrics.fails")
def fails() -> None:
    raise Flaky("always")


@app.task(name="tests.metrics.fails_once", bind=True, max_retries=1, default_retry_delay=0)
def fails_once(self, *, calls: list) -> str:
    calls.append(1)
    if len(calls) == 1:
        raise self.retry(exc=Flaky("once"))
    return "second time lucky"


def count(task: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("campusiq_celery_tasks_total", {"task": task, "outcome": outcome}) or 0.0


def test_a_success_is_counted():
    before = count("tests.metrics.succeeds", "success")
    assert succeeds.delay().get() == "done"
    assert count("tests.metrics.succeeds", "success") == before + 1
    assert count("tests.metrics.succeeds", "failure") == 0


def test_a_failure_is_counted():
    before = count("tests.metrics.fails", "failure")
    # throw=False: with CELERY_TASK_EAGER_PROPAGATES an eager task raises before Celery signals the failure.
    assert isinstance(fails.apply(throw=False).result, Flaky)
    assert count("tests.metrics.fails", "failure") == before + 1
    assert count("tests.metrics.fails", "success") == 0


def test_a_retry_then_a_success_are_counted():
    retries, successes = count("tests.metrics.fails_once", "retry"), count("tests.metrics.fails_once", "success")
    assert fails_once.apply(kwargs={"calls": []}, throw=False).get() == "second time lucky"
    assert count("tests.metrics.fails_once", "retry") == retries + 1
    assert count("tests.metrics.fails_once", "success") == successes + 1


def test_revoked_expired_and_unknown_tasks_are_counted():
    # Sent by the worker's main process (never by an eager task), so sent here as the worker would.
    revoked, expired = count("tests.metrics.succeeds", "revoked"), count("tests.metrics.succeeds", "expired")
    task_revoked.send(sender=succeeds, request=mock.Mock(), terminated=True, signum=15, expired=False)
    task_revoked.send(sender=succeeds, request=mock.Mock(), terminated=False, signum=None, expired=True)
    assert count("tests.metrics.succeeds", "revoked") == revoked + 1
    assert count("tests.metrics.succeeds", "expired") == expired + 1

    unknown = count("renamed.long_ago", "unknown")
    task_unknown.send(sender=None, name="renamed.long_ago", id="x", message=mock.Mock(), exc=KeyError("x"))
    assert count("renamed.long_ago", "unknown") == unknown + 1


def test_a_worker_serves_its_metrics_on_celery_metrics_port(monkeypatch, tmp_path):
    monkeypatch.setenv("CELERY_METRICS_PORT", "9808")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("CELERY_METRICS_ADDRESS", raising=False)
    with mock.patch("prometheus_client.start_http_server") as serve:
        metrics_server_start()
    serve.assert_called_once_with(9808, addr="0.0.0.0", registry=REGISTRY)  # noqa: S104  (the default checked)

    # In the image: the pool processes write their samples to files, added up by this endpoint.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with mock.patch("prometheus_client.start_http_server", side_effect=OSError("in use")) as serve:
        metrics_server_start()  # a taken port is logged, the worker goes on
    assert serve.call_args.kwargs["registry"] is not REGISTRY


def test_no_metrics_endpoint_without_celery_metrics_port(monkeypatch):
    monkeypatch.delenv("CELERY_METRICS_PORT", raising=False)
    with mock.patch("prometheus_client.start_http_server") as serve:
        metrics_server_start()
    serve.assert_not_called()
