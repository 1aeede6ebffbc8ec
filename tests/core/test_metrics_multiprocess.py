"""/metrics under a real gunicorn with two workers: samples of both add up (prometheus_client
multiprocess mode), the token opens it, and it answers whatever the Host (Prometheus scrapes by IP)."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.conftest import redis_url
from tests.core.test_settings import GOOD_KEY
from tests.support.processes import ROOT, free_port, http_get, stop, wait_for_http

TOKEN = "metrics-token-for-the-test-0123456789"
REQUESTS = 40


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db
def test_two_workers_samples_add_up_and_only_the_token_reads_them(tmp_path):
    database = connection.settings_dict
    database_url = (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}"
    )
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))},
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.prod",
        "DJANGO_SECRET_KEY": GOOD_KEY,
        "DJANGO_ALLOWED_HOSTS": "campus.example.edu",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url(),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "METRICS_BEARER_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
         "campusiq.wsgi:application"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    host = {"Host": "campus.example.edu", "X-Forwarded-Proto": "https"}
    try:
        wait_for_http(f"{base}/health/live", process=process, headers=host)
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: http_get(f"{base}/health/live", headers=host)[0], range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        # Prometheus calls the pod by its address: no allowed Host, no HTTPS header.
        status, _, _ = http_get(f"{base}/metrics", headers={"Host": "10.1.2.3:8000"})
        assert status == 404  # no token, not from a monitoring network
        status, headers, body = http_get(
            f"{base}/metrics", headers={"Host": "10.1.2.3:8000", "Authorization": f"Bearer {TOKEN}"}
        )
    finally:
        stop(process)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    # The probe's own successful answers (and the one before, while waiting) from both workers add up.
    counted = re.search(r'django_http_responses_total_by_status_view_method_total\{method="GET",status="200",'
                        r'view="health-live"\} (\d+(?:\.\d+)?)', text)  # fmt: skip
    assert counted is not None, text[:2000]
    assert float(counted.group(1)) >= REQUESTS + 1
    pids = {re.search(r"_(\d+)\.db$", name).group(1) for name in os.listdir(multiproc) if name.endswith(".db")}
    assert len(pids) >= 2  # both workers wrote samples
    assert "campusiq_scoring_last_success_timestamp_seconds 0.0" in text
    assert "campusiq_backup_last_success_timestamp_seconds" in text
