"""The metric names CampusIQ's dashboards and alerts may use, and a small PromQL reader to find them."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MONITORING = DEPLOY / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "campusiq.json"

# CampusIQ's own metrics (campusiq/core/metrics.py), by kind: the contract between the code and deploy/.
CAMPUSIQ_METRICS = {
    "campusiq_checkins_total": "counter",
    "campusiq_checkin_latency_seconds": "histogram",
    "campusiq_scoring_run_seconds": "histogram",
    "campusiq_students_scored_total": "counter",
    "campusiq_scoring_last_success_timestamp_seconds": "gauge",
    "campusiq_active_model_version_info": "gauge",
    "campusiq_risk_band_students": "gauge",
    "campusiq_celery_tasks_total": "counter",
    "campusiq_celery_queue_length": "gauge",
    "campusiq_backup_last_success_timestamp_seconds": "gauge",
    "campusiq_backup_last_size_bytes": "gauge",
    "campusiq_ready": "gauge",
}
# Written by Prometheus itself for every target.
PROMETHEUS_METRICS = {"up"}

_SUFFIXES = {"counter": ("", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}
_SUFFIXES["summary"] = ("", "_sum", "_count", "_created")
_SUFFIXES["info"] = ("_info",)

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def sample_names(name: str, kind: str) -> set[str]:
    return {name + suffix for suffix in _SUFFIXES.get(kind, ("",))}


def campusiq_sample_names() -> set[str]:
    return {sample for name, kind in CAMPUSIQ_METRICS.items() for sample in sample_names(name, kind)}


def django_prometheus_sample_names() -> set[str]:
    """Every series django-prometheus exports, read from its own registry (so a rename shows here)."""
    import django_prometheus.cache.metrics
    import django_prometheus.db.metrics
    import django_prometheus.migrations
    import django_prometheus.models  # noqa: F401 - importing registers the metrics
    from django_prometheus.middleware import Metrics
    from prometheus_client import REGISTRY

    Metrics.get_instance()
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("django_"):
            kind = family.type
            base = family.name
            if kind == "counter":
                names |= {base + "_total", base + "_created"}
            else:
                names |= sample_names(base, kind)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\$\w+", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\b(?:offset\s+-?|@\s*)[\w.]+", "", text)
    text = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)?", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict]:
    panels = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard."""
    return [(panel["title"], target["expr"]) for panel in dashboard_panels() for target in panel.get("targets", [])]


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]
