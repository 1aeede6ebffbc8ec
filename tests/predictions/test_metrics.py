"""The active model's hold-out evaluation as gauges on /metrics (registered by PredictionsConfig)."""

import re

import pytest

from predictions.models import ModelVersion
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def scraped(client) -> str:
    response = client.get("/metrics")  # the test client calls from 127.0.0.1: an allowed network
    assert response.status_code == 200
    return response.content.decode()


def gauge(text: str, name: str) -> dict[str, float]:
    """version label -> value for one gauge."""
    return {version: float(value) for version, value in re.findall(rf'^{name}{{version="([^"]+)"}} (\S+)$', text, re.M)}


def test_the_active_models_holdout_metrics_and_threshold_are_gauges(client):
    ModelVersionFactory(name="risk-old", status=ModelVersion.Status.RETIRED, metrics={"holdout": {"roc_auc": 0.5}})
    ModelVersionFactory(
        name="risk-now",
        status=ModelVersion.Status.ACTIVE,
        threshold=0.42,
        metrics={"holdout": {"roc_auc": 0.81, "pr_auc": 0.57, "brier": 0.12}},
    )
    text = scraped(client)
    assert gauge(text, "campusiq_active_model_holdout_roc_auc") == {"risk-now": 0.81}
    assert gauge(text, "campusiq_active_model_holdout_pr_auc") == {"risk-now": 0.57}
    assert gauge(text, "campusiq_active_model_holdout_brier") == {"risk-now": 0.12}
    assert gauge(text, "campusiq_active_model_threshold") == {"risk-now": 0.42}


def test_a_metric_the_holdout_could_not_measure_has_no_sample_and_no_model_none(client):
    # A hold-out term with one class only has no ROC-AUC: no sample rather than a made-up number.
    ModelVersionFactory(status=ModelVersion.Status.ACTIVE, metrics={"holdout": {"roc_auc": None, "brier": 0.2}})
    text = scraped(client)
    assert gauge(text, "campusiq_active_model_holdout_roc_auc") == {}
    assert list(gauge(text, "campusiq_active_model_holdout_brier").values()) == [0.2]
    ModelVersion.objects.all().delete()
    assert gauge(scraped(client), "campusiq_active_model_threshold") == {}
    assert "# TYPE campusiq_active_model_threshold gauge" in scraped(client)
