"""A Celery worker serves its own Prometheus metrics when CELERY_METRICS_PORT is set."""

import urllib.request

from prometheus_client import REGISTRY

from campusiq.celery import metrics_server_start
from predictions.metrics import STUDENTS_SCORED
from tests.support.processes import free_port


def test_the_worker_metrics_server_answers_on_its_port(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    port = free_port()
    monkeypatch.setenv("CELERY_METRICS_PORT", str(port))
    monkeypatch.setenv("CELERY_METRICS_ADDRESS", "127.0.0.1")
    STUDENTS_SCORED.inc(0)
    metrics_server_start()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "campusiq_students_scored_total" in body
    assert REGISTRY.get_sample_value("campusiq_students_scored_total") is not None
