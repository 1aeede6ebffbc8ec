"""The deployment files (deploy/, .dockerignore) say what production needs: read as files, no Docker or cluster.

Each test names the mistake it guards against: a compiler or root user in the image, a secret in a
compose file, a service started before its database, a pod without probes, a dashboard querying a
metric nobody exports, an alert without a runbook entry.
"""

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from campusiq.core.request_id import WELL_FORMED_REQUEST_ID
from tests.deploy.promql import (
    DEPLOY,
    MONITORING,
    ROOT,
    alert_rules,
    dashboard,
    dashboard_expressions,
    dashboard_panels,
    metric_names,
)

K8S = DEPLOY / "k8s"
APP_SERVICES = ("web", "worker", "beat", "migrate")
LONG_RUNNING = ("web", "worker", "beat", "db", "redis", "nginx", "prometheus", "grafana")
SECRET_ENV = ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL")
ALERTS = (
    "CampusIQHighErrorRate",
    "CampusIQHighLatency",
    "CampusIQNotReady",
    "CampusIQBackupMissing",
    "CampusIQScoringMissing",
    "CampusIQCeleryBacklog",
    "CampusIQWorkerDown",
)


def read(path: Path) -> str:
    return path.read_text()


def secrets_settings_read() -> set[str]:
    """Names the settings read with read_secret(), i.e. that also work as NAME_FILE."""
    names = set()
    for module in (ROOT / "campusiq" / "settings").glob("*.py"):
        names |= set(re.findall(r'read_secret\(\s*env,\s*"([A-Z0-9_]+)"', read(module)))
    return names


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_stages() -> list[tuple[str, str]]:
    """(FROM line, body) per stage, with line continuations joined."""
    text = re.sub(r"\\\n\s*", " ", read(DEPLOY / "Dockerfile"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return [(head, "\n".join(body)) for head, body in stages]


def dockerfile_arg_default(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)", read(DEPLOY / "Dockerfile"), re.MULTILINE)
    assert match, f"ARG {name} has no default"
    return match.group(1)


def test_dockerfile_is_multi_stage_and_builds_from_the_hash_locked_requirements():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    builder = stages[0][1]
    assert "build-essential" in builder
    assert re.search(r"pip install --require-hashes -r \S*requirements/prod\.txt", builder)
    assert "COPY requirements/prod.txt" in builder


def test_final_stage_is_slim_bookworm_without_compilers():
    head, body = dockerfile_stages()[-1]
    image = head.split()[1]
    if image.startswith("${"):
        image = dockerfile_arg_default(image.strip("${}"))
    assert image == "python:3.11-slim-bookworm"
    for tool in ("build-essential", "gcc", "g++", "clang", "libpq-dev", "python3-dev"):
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", body), f"{tool} in the final stage"
    assert "COPY --from=builder /opt/venv /opt/venv" in body


def test_final_stage_runs_as_a_numeric_non_root_user():
    body = dockerfile_stages()[-1][1]
    users = re.findall(r"^USER (\S+)", body, re.MULTILINE)
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "Kubernetes' runAsNonRoot can only verify a numeric uid"


def test_final_stage_healthcheck_command_and_environment():
    body = dockerfile_stages()[-1][1]
    healthcheck = re.search(r"^HEALTHCHECK .*$", body, re.MULTILINE)
    assert healthcheck and "/health/live" in healthcheck.group() and "curl" not in healthcheck.group()
    assert "deploy/healthcheck.py" in healthcheck.group()
    assert re.search(r'^CMD \["gunicorn", "-c", "deploy/gunicorn.conf.py", "campusiq.wsgi:application"\]', body, re.M)
    assert re.search(r'^ENTRYPOINT \["/app/deploy/docker-entrypoint.sh"\]', body, re.MULTILINE)
    env = " ".join(re.findall(r"^ENV (.*)$", body, re.MULTILINE))
    assert "DJANGO_SETTINGS_MODULE=campusiq.settings.prod" in env
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus" in env
    assert "MODEL_ARTIFACT_ROOT=/var/lib/campusiq/models" in env


def test_collectstatic_secret_is_build_only_and_random():
    text = read(DEPLOY / "Dockerfile")
    assert not re.search(r"^\s*(ENV|ARG)\s+[^\n]*DJANGO_SECRET_KEY", text, re.MULTILINE)
    stages = dockerfile_stages()
    collect = [body for _, body in stages if "collectstatic" in body]
    assert len(collect) == 1 and collect[0] is not stages[-1][1], "collectstatic belongs in a stage of its own"
    assert "secrets.token_urlsafe" in collect[0]
    assert "COPY --from=static /app/staticfiles /app/staticfiles" in stages[-1][1]


def test_dockerignore_keeps_local_and_secret_files_out_but_not_what_the_build_needs():
    entries = {line.strip() for line in read(ROOT / ".dockerignore").splitlines() if line.strip()}
    for entry in (".venv", ".git", "var", "media", "bench/out", ".pytest_cache", ".services", "staticfiles"):
        assert entry in entries, entry
    assert "deploy/secrets/*.txt" in entries
    for needed in ("requirements", "deploy", "manage.py", "campusiq", "static", "templates"):
        assert needed not in entries


def test_entrypoint_empties_the_metrics_directory_and_runs_other_commands_as_given(tmp_path):
    entrypoint = DEPLOY / "docker-entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    text = read(entrypoint)
    for role in ("web", "worker", "beat", "migrate"):
        assert re.search(rf"^\s+{role}\)", text, re.MULTILINE), role
    assert "exec gunicorn -c deploy/gunicorn.conf.py campusiq.wsgi:application" in text
    assert "manage.py migrate --noinput" in text
    metrics_dir = tmp_path / "prometheus"
    (metrics_dir / "old").mkdir(parents=True)
    (metrics_dir / "counter_123.db").write_bytes(b"stale")
    result = subprocess.run(
        ["sh", str(entrypoint), "sh", "-c", 'echo "ran $0 $1"', "with", "args"],
        env={"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran with args"
    assert metrics_dir.is_dir() and list(metrics_dir.iterdir()) == []


class _HostCheckingHandler(BaseHTTPRequestHandler):
    """Answers like Django behind ALLOWED_HOSTS: 400 for an unknown Host, else the configured status."""

    expected_host = "campus.example.edu"
    status = 200

    def do_GET(self):
        ok_host = self.headers.get("Host") == self.expected_host
        self.send_response(self.status if ok_host else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_gunicorn():
    def serve(status: int):
        handler = type("Handler", (_HostCheckingHandler,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    servers: list[ThreadingHTTPServer] = []
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def run_healthcheck(port: int, allowed_hosts: str, path: str = "/health/live") -> int:
    env = {"PATH": os.environ["PATH"], "DJANGO_ALLOWED_HOSTS": allowed_hosts}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), "http", path, str(port)],
        env=env,
        capture_output=True,
        timeout=30,
    ).returncode


def test_healthcheck_names_an_allowed_host_and_needs_a_2xx(fake_gunicorn):
    healthy, failing = fake_gunicorn(200), fake_gunicorn(503)
    assert run_healthcheck(healthy, ".campus.example.edu,web") == 0
    assert run_healthcheck(healthy, "elsewhere.example.edu") == 1
    assert run_healthcheck(failing, "campus.example.edu", "/health/ready") == 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    assert run_healthcheck(closed_port, "campus.example.edu") == 1


# --- docker compose -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(read(DEPLOY / "docker-compose.yml"))


def test_compose_lists_every_service_with_a_healthcheck(compose):
    services = compose["services"]
    for name in (*APP_SERVICES, "db", "redis", "nginx", "prometheus", "grafana"):
        assert name in services, name
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    # One-shot services say so, rather than inheriting the image's web health check.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["restart"] == "no"
    assert services["beat"]["healthcheck"]["test"] != services["web"]["healthcheck"]["test"]
    assert "/health/ready" in str(services["web"]["healthcheck"]["test"])


def test_compose_starts_services_in_order(compose):
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["db"] == healthy and depends["redis"] == healthy, name
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["migrate"]["depends_on"] == {"db": healthy, "redis": healthy}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["nginx"]["depends_on"] == {"web": healthy}
    assert services["grafana"]["depends_on"] == {"prometheus": healthy}


def test_compose_images_and_replicas(compose):
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert str(services["web"]["deploy"]["replicas"]).endswith("2}") or services["web"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    for name in APP_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["command"] == [name]


def test_compose_reads_secrets_from_files_only(compose):
    services = compose["services"]
    top_level = compose["secrets"]
    for name, secret in top_level.items():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), name
        assert secret["file"].endswith(".txt")  # so that .gitignore's deploy/secrets/*.txt covers it
    supported = secrets_settings_read()
    for name in APP_SERVICES:
        env = services[name]["environment"]
        for variable in SECRET_ENV:
            assert variable not in env, f"{name}: {variable} inline"
            assert env[f"{variable}_FILE"].startswith("/run/secrets/"), f"{name}: {variable}_FILE"
        for variable, value in env.items():
            if variable.endswith("_FILE"):
                assert variable.removesuffix("_FILE") in supported, f"the settings do not read {variable}"
                assert Path(value).name in services[name]["secrets"], f"{name}: {value} not mounted"
    assert services["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")


def test_compose_files_hold_no_secret_values():
    for name in ("docker-compose.yml", "docker-compose.tls.yml"):
        text = read(DEPLOY / name)
        assert not re.search(r"://[^/\s:@]*:[^/\s@$]+@", text), f"{name}: a URL with a password"
        for line in text.splitlines():
            match = re.match(r"\s*([A-Z_]*(?:PASSWORD|SECRET|TOKEN)[A-Z_]*):\s*(\S+)", line)
            if match and not match.group(1).endswith("_FILE"):
                pytest.fail(f"{name}: {match.group(1)} set inline")
    ignored = read(ROOT / ".gitignore").splitlines()
    assert "deploy/secrets/*.txt" in ignored
    assert (DEPLOY / "secrets" / "README.md").is_file()


def test_compose_volumes_persist_data_and_share_model_artifacts(compose):
    services = compose["services"]
    for volume in ("pgdata", "redisdata", "backups", "models", "private", "static"):
        assert volume in compose["volumes"], volume
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    for name in ("web", "worker", "migrate", "backup"):
        assert "models:/var/lib/campusiq/models" in services[name]["volumes"], name
        assert services[name]["environment"]["MODEL_ARTIFACT_ROOT"] == "/var/lib/campusiq/models"
        assert services[name]["environment"]["PRIVATE_FILE_ROOT"] == "/var/lib/campusiq/private"
    for name in ("web", "worker", "backup"):  # students' documents: uploaded on web, backed up with the data
        assert "private:/var/lib/campusiq/private" in services[name]["volumes"], name
    assert "backups:/var/lib/campusiq/backups" in services["backup"]["volumes"]
    assert services["backup"]["profiles"] == ["ops"]
    assert "static:/srv/static:ro" in services["nginx"]["volumes"]
    assert "static:/srv/static" in services["migrate"]["volumes"]


def test_compose_bind_mounts_exist():
    for name in ("docker-compose.yml", "docker-compose.tls.yml"):
        for service in yaml.safe_load(read(DEPLOY / name))["services"].values():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    assert (DEPLOY / source).exists(), f"{name}: {source}"


def test_compose_trusts_only_nginx_as_proxy(compose):
    nginx_address = compose["services"]["nginx"]["networks"]["edge"]["ipv4_address"]
    env = compose["services"]["web"]["environment"]
    assert env["TRUSTED_PROXY_CIDRS"] == f"{nginx_address}/32"
    assert env["FORWARDED_ALLOW_IPS"] == nginx_address


# --- Kubernetes -----------------------------------------------------------------------------------


def k8s_documents() -> dict[str, list[dict]]:
    return {
        str(path.relative_to(K8S)): [doc for doc in yaml.safe_load_all(read(path)) if doc]
        for path in sorted(K8S.rglob("*.yaml"))
    }


def k8s_resources() -> dict[tuple[str, str], dict]:
    kustomization = yaml.safe_load(read(K8S / "kustomization.yaml"))
    resources = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all(read(K8S / name)):
            if doc:
                resources[(doc["kind"], doc["metadata"]["name"])] = doc
    return resources


def pod_spec(resource: dict) -> dict:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return resource["spec"]["template"]["spec"]


def test_every_manifest_parses_and_kustomization_lists_them():
    documents = k8s_documents()
    for name, docs in documents.items():
        assert docs, name
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind"), name
            assert doc["kind"] == "Kustomization" or doc["metadata"]["name"], name
    kustomization = yaml.safe_load(read(K8S / "kustomization.yaml"))
    listed = set(kustomization["resources"])
    top_level = {name for name in documents if "/" not in name} - {"kustomization.yaml"}
    # The Secret is a template and never applied; everything else is.
    assert top_level - listed == {"secret.template.yaml"}
    assert kustomization["namespace"] == "campusiq"
    assert [image["name"] for image in kustomization["images"]] == ["campusiq"]


def test_kustomize_builds():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (optional: the manifests are also read as YAML above)")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == 3 and "CronJob" in kinds and "Job" in kinds


def test_web_deployment_probes_and_replicas():
    web = k8s_resources()[("Deployment", "campusiq-web")]
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = pod_spec(web)["containers"]
    assert container["args"] == ["web"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    hosts = yaml.safe_load(read(K8S / "configmap.yaml"))["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"].get("httpHeaders", [])}
        assert headers.get("Host") in hosts, f"{probe}: Django answers only DJANGO_ALLOWED_HOSTS"


def test_every_pod_runs_as_non_root_with_a_read_only_root_and_limits():
    workloads = [r for r in k8s_resources().values() if r["kind"] in ("Deployment", "Job", "CronJob")]
    workloads.append(yaml.safe_load(read(K8S / "ops" / "restore-job.yaml")))
    assert len(workloads) == 6
    for resource in workloads:
        name = resource["metadata"]["name"]
        spec = pod_spec(resource)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name}: /tmp must be an emptyDir"
            assert mounts.get("/run/secrets/campusiq") == "secrets", name
            # Through the entrypoint (args, not command), which prepares PROMETHEUS_MULTIPROC_DIR.
            assert "command" not in container, name


def test_worker_beat_migrate_and_backup():
    resources = k8s_resources()
    beat = resources[("Deployment", "campusiq-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    worker = resources[("Deployment", "campusiq-worker")]
    (container,) = pod_spec(worker)["containers"]
    assert container["args"] == ["worker"]
    assert {"name": "CELERY_METRICS_PORT", "value": "9808"} in container["env"]
    assert "inspect ping" in " ".join(container["livenessProbe"]["exec"]["command"])
    migrate = resources[("Job", "campusiq-migrate")]
    assert pod_spec(migrate)["containers"][0]["args"] == ["migrate"]
    for deployment in (beat, worker, resources[("Deployment", "campusiq-web")]):
        (init,) = pod_spec(deployment)["initContainers"]
        assert "migrate --check" in " ".join(init["args"])
    backup = resources[("CronJob", "campusiq-backup")]
    assert backup["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(backup)["containers"]
    assert container["args"] == ["python", "manage.py", "backup"]
    volumes = pod_spec(backup)["volumes"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}
    assert claims == {"campusiq-models", "campusiq-private", "campusiq-backups"}  # every folder a backup holds
    web_claims = {v["persistentVolumeClaim"]["claimName"] for v in pod_spec(resources[("Deployment", "campusiq-web")])[
        "volumes"] if "persistentVolumeClaim" in v}  # fmt: skip
    assert "campusiq-private" in web_claims  # students' documents outlive a pod


def test_storage_service_ingress_autoscaling_and_disruption_budgets():
    resources = k8s_resources()
    models = resources[("PersistentVolumeClaim", "campusiq-models")]
    assert models["spec"]["accessModes"] == ["ReadWriteMany"]
    assert ("PersistentVolumeClaim", "campusiq-backups") in resources
    assert resources[("PersistentVolumeClaim", "campusiq-private")]["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("campusiq-web", "campusiq-worker"):
        assert ("HorizontalPodAutoscaler", name) in resources
        assert ("PodDisruptionBudget", name) in resources
    service = resources[("Service", "campusiq-web")]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = resources[("Ingress", "campusiq")]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"][0]["secretName"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "2m"
    metrics = resources[("Ingress", "campusiq-metrics-denied")]
    assert metrics["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/metrics"
    assert metrics["metadata"]["annotations"]["nginx.ingress.kubernetes.io/whitelist-source-range"] == "127.0.0.1/32"


def test_k8s_secret_is_a_template_of_placeholders_matching_the_configmap():
    (secret,) = k8s_documents()["secret.template.yaml"]
    values = secret["stringData"]
    for key, value in values.items():
        assert "REPLACE" in value or value == "consolemail://", key
    config = yaml.safe_load(read(K8S / "configmap.yaml"))["data"]
    supported = secrets_settings_read()
    files = {k: v for k, v in config.items() if k.endswith("_FILE")}
    assert {k.removesuffix("_FILE") for k in files} >= set(SECRET_ENV)
    for variable, path in files.items():
        assert variable.removesuffix("_FILE") in supported, f"the settings do not read {variable}"
        assert path.startswith("/run/secrets/campusiq/") and Path(path).name in values, variable
    for variable in SECRET_ENV:
        assert variable not in config


# --- Monitoring -----------------------------------------------------------------------------------


def test_promql_reader_finds_metrics_and_nothing_else():
    expr = (
        'histogram_quantile(0.95, sum by (le, view) (rate(foo_seconds_bucket{view!~"health-.*", le="+Inf"}'
        "[$__rate_interval]))) / on(instance) group_left bar_total offset 1h > 26 * 3600 and 1e3 < baz"
    )
    assert metric_names(expr) == {"foo_seconds_bucket", "bar_total", "baz"}


def test_dashboard_has_the_required_panels():
    board = dashboard()
    assert board["uid"] and board["title"] == "CampusIQ" and board["schemaVersion"] >= 36
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels if panel["type"] != "row"]
    assert len(ids) == len(set(ids))
    expressions = dashboard_expressions()

    def panel_with(pattern: str) -> list[str]:
        return [title for title, expr in expressions if re.search(pattern, expr)]

    assert panel_with(r"rate\(django_http_requests_total_by_view_transport_method_total")
    bucket = r"django_http_requests_latency_seconds_by_view_method_bucket"
    for quantile in ("0.5", "0.95", "0.99"):
        assert panel_with(rf"histogram_quantile\({quantile}, sum by \(le, view\) \(rate\({bucket}"), quantile
    assert panel_with(r'status=~"5\.\."')
    assert panel_with(r"sum by \(result\) \(rate\(campusiq_checkins_total.*\* 60")
    assert panel_with(r"django_db_query_duration_seconds") and panel_with(r"django_db_execute_total")
    assert panel_with(r"campusiq_scoring_run_seconds")
    assert panel_with(r"sum by \(band\) \(campusiq_risk_band_students\)")
    # What the original gap list asked for: errors by route, connections, the model's quality, who is on.
    assert panel_with(r'sum by \(view\) \(rate\(django_http_responses_total_by_status_view_method_total\{status=~"5')
    assert panel_with(r"campusiq_db_connections")
    for metric in ("roc_auc", "pr_auc", "brier"):
        assert panel_with(rf"campusiq_active_model_holdout_{metric}"), metric
    assert panel_with(r"campusiq_active_model_threshold") and panel_with(r"campusiq_active_users")
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "prometheus", panel["title"]


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus(compose):
    provisioning = MONITORING / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load(read(provisioning / "datasources" / "prometheus.yml"))["datasources"]
    assert datasource["uid"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(read(provisioning / "dashboards" / "campusiq.yml"))["providers"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./monitoring/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_alerts_have_the_seven_rules_each_with_a_runbook_entry():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(ALERTS) <= set(rules)
    operations = read(ROOT / "docs" / "OPERATIONS.md")
    anchors = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", operations, re.MULTILINE)
    }
    for name, rule in rules.items():
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        runbook = rule["annotations"]["runbook"]
        assert runbook == f"docs/OPERATIONS.md#{name.lower()}" and name.lower() in anchors, name
    assert re.search(r"> 0\.02\b", rules["CampusIQHighErrorRate"]["expr"])
    assert rules["CampusIQHighErrorRate"]["for"] == "5m"
    assert "histogram_quantile(0.95" in rules["CampusIQHighLatency"]["expr"]
    assert rules["CampusIQHighLatency"]["for"] == "10m"
    assert "campusiq_ready" in rules["CampusIQNotReady"]["expr"] and rules["CampusIQNotReady"]["for"] == "2m"
    for name, metric in (("BackupMissing", "backup"), ("ScoringMissing", "scoring")):
        expr = rules[f"CampusIQ{name}"]["expr"]
        assert f"time() - max(campusiq_{metric}_last_success_timestamp_seconds) > 26 * 3600" in expr
    assert "campusiq_celery_queue_length) > 100" in rules["CampusIQCeleryBacklog"]["expr"]
    assert rules["CampusIQCeleryBacklog"]["for"] == "10m"
    assert 'up{job="campusiq-worker"}' in rules["CampusIQWorkerDown"]["expr"]


def test_prometheus_scrapes_web_with_the_token_and_workers_on_9808():
    config = yaml.safe_load(read(MONITORING / "prometheus.yml"))
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = jobs["campusiq-web"]
    assert web["metrics_path"] == "/metrics"
    assert web["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
    assert web["dns_sd_configs"][0]["names"] == ["web"] and web["dns_sd_configs"][0]["port"] == 8000
    worker = jobs["campusiq-worker"]
    assert worker["dns_sd_configs"][0]["names"] == ["worker"] and worker["dns_sd_configs"][0]["port"] == 9808


# --- nginx ----------------------------------------------------------------------------------------


def nginx_location(conf: str, pattern: str) -> str:
    match = re.search(rf"location {pattern} \{{(.*?)\n    \}}", conf, re.DOTALL)
    assert match, pattern
    return match.group(1)


@pytest.mark.parametrize("name", ["campusiq.conf", "compose-http.conf"])
def test_nginx_forwards_client_headers_and_hides_metrics(name):
    conf = read(DEPLOY / "nginx" / name)
    assert re.search(r"proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;", conf)
    assert re.search(r"proxy_set_header X-Forwarded-Proto \$scheme;", conf)
    assert re.search(r"proxy_set_header Host \$(http_)?host;", conf)
    assert re.search(r"proxy_set_header X-Request-ID \$campusiq_request_id;", conf)
    # A client's request id is kept when Django would keep it too, so both log the same id.
    request_id_map = re.search(r"map \$http_x_request_id \$campusiq_request_id \{(.*?)\n\}", conf, re.DOTALL).group(1)
    assert f'"~{WELL_FORMED_REQUEST_ID.pattern}" $http_x_request_id;' in request_id_map
    assert re.search(r"default\s+\$request_id;", request_id_map)
    metrics = nginx_location(conf, "= /metrics")
    assert "deny all;" in metrics and re.search(r"allow \d+\.\d+\.\d+\.\d+/\d+;", metrics)
    static = nginx_location(conf, "/static/")
    assert "alias /srv/static/;" in static and "immutable" in static
    assert re.search(r"upstream campusiq_web \{[^}]*keepalive \d+;", conf)
    assert 'proxy_set_header Connection "";' in conf and "proxy_http_version 1.1;" in conf
    assert "gzip on;" in conf and "proxy_read_timeout" in conf
    # Security headers are Django's: never a second CSP or HSTS header from nginx.
    assert "Content-Security-Policy" not in conf and "Strict-Transport-Security" not in conf


@pytest.mark.parametrize("name", ["campusiq.conf", "compose-http.conf"])
def test_nginx_body_limit_matches_django(name):
    conf = read(DEPLOY / "nginx" / name)
    limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    server_limits = re.findall(r"^    client_max_body_size (\d+)m;", conf, re.MULTILINE)
    assert server_limits == [str(limit_mb)]
    imports = nginx_location(conf, r"~ \^/admin/.*?")
    assert re.search(r"client_max_body_size \d+m;", imports)


def test_nginx_tls_server_redirects_plain_http():
    conf = read(DEPLOY / "nginx" / "campusiq.conf")
    assert "listen 443 ssl;" in conf and "return 301 https://$host$request_uri;" in conf
    assert "ssl_certificate /etc/nginx/tls/fullchain.pem;" in conf
    assert "ssl_certificate_key /etc/nginx/tls/privkey.pem;" in conf
    assert "listen 8080;" in read(DEPLOY / "nginx" / "compose-http.conf")


# --- Scripts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["backup.sh", "restore.sh", "make-secrets.sh"])
def test_scripts_are_strict_and_executable(name):
    path = DEPLOY / "scripts" / name
    assert path.stat().st_mode & stat.S_IXUSR
    text = read(path)
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert "usage()" in text


def test_backup_and_restore_call_the_management_commands():
    assert re.search(r'exec python "\$root/manage.py" backup "\$@"', read(DEPLOY / "scripts" / "backup.sh"))
    restore = read(DEPLOY / "scripts" / "restore.sh")
    assert re.search(r'exec python "\$root/manage.py" restore "\$backup_file"', restore)


@pytest.mark.parametrize(
    "args", [[], ["--help"], ["/nonexistent/backup.tar"], ["backup.tar", "--yes"], ["a", "--force", "b"]]
)
def test_restore_refuses_bad_arguments_with_usage(args, tmp_path):
    (tmp_path / "backup.tar").write_bytes(b"")
    result = subprocess.run(
        ["bash", str(DEPLOY / "scripts" / "restore.sh"), *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "usage: restore.sh FILE [--force]" in result.stderr or "is not a file" in result.stderr


def test_make_secrets_writes_consistent_unreadable_to_others_files_once(tmp_path):
    target = tmp_path / "secrets"
    script = DEPLOY / "scripts" / "make-secrets.sh"
    subprocess.run(["bash", str(script), str(target)], check=True, capture_output=True)
    compose_secrets = yaml.safe_load(read(DEPLOY / "docker-compose.yml"))["secrets"]
    assert {path.name for path in target.iterdir()} == {Path(s["file"]).name for s in compose_secrets.values()}
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    values = {path.stem: path.read_text() for path in target.iterdir()}
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o444 for path in target.iterdir())
    assert len(values["django_secret_key"]) >= 50
    assert values["database_url"] == f"postgres://campusiq:{values['postgres_password']}@db:5432/campusiq"
    assert values["redis_url"] == f"redis://:{values['redis_password']}@redis:6379/0"
    result = subprocess.run(["bash", str(script), str(target)], check=True, capture_output=True, text=True)
    assert "created" not in result.stdout
    assert {path.stem: path.read_text() for path in target.iterdir()} == values


def test_shell_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed (optional)")
    scripts = [DEPLOY / "docker-entrypoint.sh", *sorted((DEPLOY / "scripts").glob("*.sh"))]
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
