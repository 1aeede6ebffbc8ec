"""Readiness: each dependency checked with its latency, 503 when the database fails, "degraded" (200)
when Redis, the broker or the model does; and /metrics only for the monitoring networks or the token."""

import pytest
from django.test import override_settings

from campusiq.core import cache as cache_module
from campusiq.core import health
from predictions.models import ModelVersion
from tests.core.test_cache import FlakyCache, flaky_caches
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_ready_reports_each_check_with_its_latency(client, log_output):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "model"}
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"] == "skipped"  # eager Celery in the tests: no broker
    assert body["checks"]["model"] == {"status": "none", "latency_ms": body["checks"]["model"]["latency_ms"],
                                       "detail": "no model is active yet"}  # fmt: skip
    assert all(check["latency_ms"] >= 0 for check in body["checks"].values())
    assert "/health/ready" not in log_output.getvalue()  # a success is not logged
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_failing_dependency_makes_the_instance_not_ready(client, monkeypatch, log_output):
    def broken():
        raise ConnectionError("database is down")

    monkeypatch.setitem(health._checks, "database", broken)
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {"status": "fail", "latency_ms": body["checks"]["database"]["latency_ms"],
                                          "detail": "ConnectionError"}  # fmt: skip
    assert "readiness_check_failed" in log_output.getvalue()
    metrics = client.get("/metrics").content.decode()
    assert "campusiq_ready 0.0" in metrics


def test_an_unusable_model_or_broker_degrades_readiness_without_taking_the_instance_out(client, monkeypatch):
    ModelVersionFactory(status=ModelVersion.Status.ACTIVE)  # registry entry with no file
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["model"]["status"] == "fail"

    def unreachable():
        raise ConnectionRefusedError("broker")

    monkeypatch.setitem(health._checks, "broker", unreachable)
    ModelVersion.objects.all().delete()
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["checks"]["broker"]["status"] == "fail"


def test_a_failing_cache_degrades_readiness_without_taking_the_instance_out(client, monkeypatch):
    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setitem(health._checks, "cache", broken)
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["checks"]["cache"]["status"] == "fail"


def test_redis_down_is_degraded_with_the_fallback_named_and_ok_once_it_is_back(client, monkeypatch):
    """The production caches (campusiq/core/cache.py) with a Redis that comes and goes."""
    monkeypatch.setattr(cache_module, "_circuits", {})
    FlakyCache.state.update(down=True, calls=0)
    try:
        with override_settings(CACHES=flaky_caches()):
            body = client.get("/health/ready").json()
            assert body["status"] == "degraded" and body["checks"]["database"]["status"] == "ok"
            assert body["checks"]["cache"]["status"] == "degraded"
            detail = body["checks"]["cache"]["detail"]
            assert "DummyCache" in detail and "LockingDatabaseCache" in detail and "ConnectionError" in detail
            assert "redis:6379" not in detail  # the address stays in the logs
            FlakyCache.state["down"] = False
            # Readiness asks Redis whatever the circuit says, and closes it: ready at once.
            response = client.get("/health/ready")
            assert response.status_code == 200 and response.json()["checks"]["cache"]["status"] == "ok"
    finally:
        FlakyCache.state.update(down=False, calls=0)


def test_metrics_answer_the_monitoring_network_and_the_token_only(client):
    assert client.get("/metrics").status_code == 200  # loopback is allowed by default outside production
    with override_settings(METRICS_ALLOWED_CIDRS=["10.9.0.0/16"], METRICS_BEARER_TOKEN="s3cret-token-value"):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", REMOTE_ADDR="10.9.3.4").status_code == 200
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token-value").status_code == 200
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    with override_settings(METRICS_ALLOWED_CIDRS=[], METRICS_BEARER_TOKEN=""):
        assert client.get("/metrics").status_code == 404  # production's default: nobody until configured
