"""Prometheus' own checker on the monitoring files: the config, the alert rules, the alerts' unit tests
(deploy/monitoring/alerts.test.yml) and the PromQL of every Grafana panel. promtool comes with Debian's
`prometheus` package; without it these tests skip on a laptop and fail on CI.
"""

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import service_missing
from tests.deploy.promql import MONITORING, dashboard_expressions


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        service_missing("promtool (apt-get install prometheus)")
    return path


def run(promtool: str, *args: str, cwd=None) -> str:
    result = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_prometheus_config_is_valid(promtool, tmp_path):
    # promtool opens every file the config names: the token file lives in the container, so point
    # at a stand-in; alerts.yml is read next to the config, as in the container.
    token = tmp_path / "metrics_token"
    token.write_text("stand-in")
    config = (MONITORING / "prometheus.yml").read_text()
    assert "/run/secrets/metrics_token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/run/secrets/metrics_token", str(token)))
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    output = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS: 1 rule files found" in output


def test_alert_rules_are_valid(promtool):
    output = run(promtool, "check", "rules", str(MONITORING / "alerts.yml"))
    assert "SUCCESS" in output


def test_alerts_fire_when_they_should_and_not_otherwise(promtool):
    output = run(promtool, "test", "rules", "alerts.test.yml", cwd=MONITORING)
    assert "SUCCESS" in output


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    # Each query as a recording rule, so promtool parses it; Grafana's $__rate_interval becomes 5m.
    rules = [
        {"record": f"dashboard:query_{number}", "expr": expr.replace("$__rate_interval", "5m")}
        for number, (_, expr) in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = run(promtool, "check", "rules", str(path))
    assert f"SUCCESS: {len(rules)} rules found" in output
