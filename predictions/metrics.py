"""The active model's hold-out evaluation as Prometheus gauges, read from its ModelVersion when /metrics
is scraped (registered with campusiq.core.metrics in PredictionsConfig.ready()): what the model scored
on the term it never saw, and the at-risk threshold it applies."""

from prometheus_client.core import GaugeMetricFamily

from predictions.models import ModelVersion

# Hold-out metric (ModelVersion.metrics["holdout"]) -> gauge.
HOLDOUT_GAUGES = {
    "roc_auc": ("campusiq_active_model_holdout_roc_auc", "The active model's ROC-AUC on its hold-out term."),
    "pr_auc": ("campusiq_active_model_holdout_pr_auc", "The active model's PR-AUC on its hold-out term."),
    "brier": ("campusiq_active_model_holdout_brier", "The active model's Brier score on its hold-out term."),
}


def active_model_metrics():
    version = (
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).only("name", "threshold", "metrics").first()
    )
    holdout = (version.metrics or {}).get("holdout", {}) if version else {}
    for key, (name, documentation) in HOLDOUT_GAUGES.items():
        gauge = GaugeMetricFamily(name, documentation, labels=["version"])
        if isinstance(holdout.get(key), int | float):  # None: the hold-out term had one class only
            gauge.add_metric([version.name], holdout[key])
        yield gauge
    threshold = GaugeMetricFamily(
        "campusiq_active_model_threshold", "The active model's at-risk threshold (probability).", labels=["version"]
    )
    if version is not None:
        threshold.add_metric([version.name], version.threshold)
    yield threshold
