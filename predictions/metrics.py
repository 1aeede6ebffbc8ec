"""The scoring metrics: the runs' duration and students scored, counted by the process that scores; and,
read from the database when /metrics is scraped (collectors registered with campusiq.core.metrics in
PredictionsConfig.ready()), the last successful run, its bands, the active model, and the active model's
hold-out evaluation (what it scored on the term it never saw) and at-risk threshold."""

from django.db.models import Count
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from predictions.models import ModelVersion, RiskScore, ScoringRun

SCORING_RUN_SECONDS = Histogram(
    "campusiq_scoring_run_seconds", "Duration of a scoring run.", buckets=(1, 5, 15, 30, 60, 120, 300, 900)
)
STUDENTS_SCORED = Counter("campusiq_students_scored", "Students scored by scoring runs.")

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


def scoring_metrics():
    last = ScoringRun.objects.filter(status=ScoringRun.Status.SUCCEEDED).order_by("-finished_at").first()
    when = GaugeMetricFamily(
        "campusiq_scoring_last_success_timestamp_seconds", "When a scoring run last succeeded (0: never)."
    )
    when.add_metric([], last.finished_at.timestamp() if last and last.finished_at else 0)
    yield when
    bands = GaugeMetricFamily("campusiq_risk_band_students", "Students per band in the latest run.", labels=["band"])
    counts = dict(
        RiskScore.objects.filter(run=last).values_list("band").annotate(n=Count("pk")).order_by() if last else []
    )
    for band in RiskScore.Band.values:
        bands.add_metric([band], counts.get(band, 0))
    yield bands
    active = GaugeMetricFamily("campusiq_active_model_version_info", "The active model version.", labels=["version"])
    for name in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("name", flat=True):
        active.add_metric([name], 1)
    yield active
