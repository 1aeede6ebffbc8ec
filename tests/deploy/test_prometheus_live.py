"""The dashboard and the alert rules against a real Prometheus (Debian's `prometheus`) scraping a real
gunicorn and a real Celery worker under the production settings, after a little traffic: every PromQL
expression of deploy/monitoring must return data, so a panel that can never show anything fails here.

The stack: a private PostgreSQL and Redis, the demo campus with a trained model and scores
(manage.py dev_setup), one backup, gunicorn (2 workers, PROMETHEUS_MULTIPROC_DIR as deployed), a
worker that runs one scoring task, and Prometheus scraping both every second with the config of
deploy/monitoring/prometheus.yml (static targets for its DNS discovery) and its alerts.yml.
"""

import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from celery import Celery

from tests.conftest import service_missing
from tests.deploy.promql import MONITORING, alert_rules, dashboard_expressions, metric_names
from tests.support import stack
from tests.support.processes import free_port

RATE_WINDOW = "1m"  # Grafana's $__rate_interval for a 1 s scrape: several samples in every window
STUDENT = ("student1@campusiq.example", "demo-student1-pass-2026")  # docs/DEMO_DATA.md


@dataclass
class Monitored:
    prometheus: str
    web: stack.GunicornServer
    worker: stack.CeleryWorker

    def query(self, expr: str) -> list[dict]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.prometheus}{path}", timeout=10) as response:
            return json.load(response)["data"]


def prometheus_config(token_file: Path, *, web: int, worker: int, itself: int) -> dict:
    """deploy/monitoring/prometheus.yml with static targets instead of Docker's DNS and a 1 s scrape."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    ports = {"campusiq-web": web, "campusiq-worker": worker, "prometheus": itself}
    assert {job["job_name"] for job in config["scrape_configs"]} == set(ports)
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token_file)
    return config


def request(base: str, method: str, path: str, *, headers: dict | None = None, body: dict | None = None):
    """(status, body) of one request as nginx forwards it."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**stack.HTTPS, "X-Forwarded-For": "10.9.0.7", **(headers or {})}
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data, headers, method=method), timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def traffic(base: str) -> None:
    """What a few users do: a student gets an API token and reads their own data, scans a forged code
    (refused), opens the sign-in page and a page that does not exist; probes ask if the replica is ready."""
    credentials = {"email": STUDENT[0], "password": STUDENT[1], "name": "phone", "scope": "read_write"}
    status, body = request(base, "POST", "/api/v1/auth/token/", body=credentials)
    assert status == 201, body
    bearer = {"Authorization": f"Bearer {json.loads(body)['token']}"}
    for _ in range(3):
        for path in ("/api/v1/students/", "/api/v1/attendance-records/"):
            assert request(base, "GET", path, headers=bearer)[0] == 200, path
        assert request(base, "POST", "/api/v1/check-ins/", headers=bearer, body={"token": "forged.code"})[0] == 400
        assert request(base, "GET", "/accounts/login/")[0] == 200
        assert request(base, "GET", "/no/such/page/")[0] == 404
        assert request(base, "GET", "/health/ready")[0] == 200


@pytest.fixture(scope="module")
def monitored() -> Iterator[Monitored]:
    for missing in (
        stack.postgres_missing(),
        stack.redis_missing(),
        shutil.which("prometheus") is None and "prometheus",
    ):
        if missing:
            service_missing(f"{missing} (apt-get install postgresql-15 redis-server prometheus)")
    workdir = Path(tempfile.mkdtemp(prefix="campusiq-prometheus-"))
    workdir.chmod(0o755)
    postgres, redis = stack.PostgresServer(workdir / "postgres"), stack.RedisServer(workdir / "redis")
    processes: list = []
    try:
        postgres.init().start()
        redis.start()
        token = secrets.token_urlsafe(32)
        (workdir / "metrics_token").write_text(token)
        env = stack.production_env(
            database_url=postgres.create_database("campusiq"), redis_url=redis.url, static_root=workdir / "static",
            METRICS_BEARER_TOKEN=token, BACKUP_ROOT=str(workdir / "backups"), BACKUP_PG_BIN_DIR=str(stack.PG_BIN),
            MODEL_ARTIFACT_ROOT=str(workdir / "models"), GUNICORN_WORKERS="2",
        )  # fmt: skip
        stack.manage(env, "dev_setup", "-v0")  # migrate, demo campus, a trained model, scores
        stack.manage(env, "backup")
        stack.collectstatic(env)
        for name in ("web", "worker"):
            (workdir / f"metrics-{name}").mkdir()
        web = stack.GunicornServer({**env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics-web")},
                                   log_path=workdir / "gunicorn.log").start()  # fmt: skip
        processes.append(web)
        worker = stack.CeleryWorker({**env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics-worker")},
                                    log_path=workdir / "worker.log", metrics_port=free_port()).start()  # fmt: skip
        processes.append(worker)
        port = free_port()
        config = prometheus_config(workdir / "metrics_token", web=web.port, worker=worker.metrics_port, itself=port)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(MONITORING / "alerts.yml", workdir / "alerts.yml")
        with open(workdir / "prometheus.log", "w") as log:
            prometheus = subprocess.Popen(
                ["prometheus", f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        processes.append(prometheus)
        monitored = Monitored(f"http://127.0.0.1:{port}", web, worker)
        wait_until(lambda: _answers(monitored), what="Prometheus", log=workdir / "prometheus.log")

        broker = Celery(broker=redis.url, set_as_current=False)
        broker.send_task("predictions.score_current_term")
        traffic(web.base)
        # Both targets scraped a few times since the traffic, and the worker's task counted.
        scraped = 'count_over_time(up{job=~"campusiq-.*"}[1m]) >= 8'
        task_counted = "campusiq_celery_tasks_total"
        wait_until(lambda: monitored.query(scraped) and monitored.query(task_counted), what="scrapes",
                   log=workdir / "worker.log")  # fmt: skip
        time.sleep(2)
        yield monitored
    finally:
        for process in reversed(processes):
            process.stop() if hasattr(process, "stop") else _terminate(process)
        redis.stop()
        postgres.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def _answers(monitored: Monitored) -> bool:
    try:
        return len(monitored.query('up{job=~"campusiq-.*"} == 1')) == 2
    except OSError:
        return False


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(predicate, *, what: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout}s; {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def alert_data(expr: str) -> str:
    """An alert's expression as the data it compares: each comparison made a `bool` one (0 or 1 for every
    series, instead of series only while firing) and `absent(x)` read as `x`. Label matchers and strings
    are left as they are."""
    comparisons = re.sub(
        r'\{[^}]*\}|"(?:[^"\\]|\\.)*"|(==|!=|>=|<=|>|<)(?!\s*bool)',
        lambda match: match.group(0) if match.group(1) is None else f"{match.group(1)} bool",
        expr,
    )
    return comparisons.replace("absent(", "(")


def test_alert_data_keeps_matchers_and_makes_comparisons_bool():
    assert (
        alert_data('up{job!="x"} == 0 or absent(up{job="w"} == 1)')
        == 'up{job!="x"} == bool 0 or (up{job="w"} == bool 1)'
    )
    assert alert_data("time() - max(x) > 26 * 3600") == "time() - max(x) > bool 26 * 3600"
    assert alert_data("a > bool 1") == "a > bool 1"


def test_every_dashboard_query_returns_data(monitored):
    empty = [
        (title, expr) for title, expr in dashboard_expressions()
        if not monitored.query(expr.replace("$__rate_interval", RATE_WINDOW))
    ]  # fmt: skip
    assert not empty, "panels with no data:\n" + "\n".join(f"  {title}: {expr}" for title, expr in empty)


def test_every_alert_rule_evaluates_on_data_and_without_errors(monitored):
    rules = alert_rules()
    empty = [rule["alert"] for rule in rules if not monitored.query(alert_data(rule["expr"]))]
    assert not empty, f"alerts whose expression has no data to compare: {empty}"
    loaded = [rule for group in monitored.get("/api/v1/rules")["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in loaded} == {rule["alert"] for rule in rules}
    assert all(rule["health"] == "ok" for rule in loaded), [(r["name"], r.get("lastError")) for r in loaded]
    firing = [alert["labels"]["alertname"] for alert in monitored.get("/api/v1/alerts")["alerts"]]
    assert not firing, f"a healthy stack raised {firing}"


def test_every_campusiq_metric_is_on_the_dashboard_or_in_an_alert(monitored):
    scraped = {name for name in monitored.get("/api/v1/label/__name__/values") if name.startswith("campusiq_")}
    assert {"campusiq_active_users", "campusiq_db_connections", "campusiq_active_model_holdout_roc_auc"} <= scraped
    used = set()
    for _, expr in dashboard_expressions() + [(rule["alert"], rule["expr"]) for rule in alert_rules()]:
        used |= metric_names(expr)
    base = {re.sub(r"_(bucket|sum|count|created)$", "", name) for name in used}
    unwatched = sorted(
        name for name in scraped if name not in used and re.sub(r"_(bucket|sum|count|created)$", "", name) not in base
    )
    assert not unwatched, f"exported but on no panel and in no alert: {unwatched}"
