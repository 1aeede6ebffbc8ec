"""The production settings and the gunicorn config file serve the portal for real."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_settings import PROD_ENV
from tests.support.processes import ROOT, free_port, http_get, stop, wait_for_http

GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def test_config_sizes_workers_from_cpu_count(monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    config = runpy.run_path(str(GUNICORN_CONF))
    assert config["workers"] == os.cpu_count() * 2 + 1
    assert config["timeout"] == 30 and config["graceful_timeout"] == 30
    assert config["accesslog"] is None
    assert config["forwarded_allow_ips"] == "127.0.0.1"
    assert config["preload_app"] is True  # recycled workers are forks, not fresh imports


def test_config_reads_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    config = runpy.run_path(str(GUNICORN_CONF))
    assert config["workers"] == 3 and config["worker_class"] == "gthread"


@pytest.fixture(scope="module")
def production_gunicorn(tmp_path_factory):
    """gunicorn under the production settings: (base URL, the headers nginx adds, the master process)."""
    static_root = tmp_path_factory.mktemp("static")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        **PROD_ENV,
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.prod",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(static_root),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
    }
    bin_dir = os.path.dirname(sys.executable)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env=env, cwd=ROOT, check=True, timeout=300
    )
    process = subprocess.Popen(
        [os.path.join(bin_dir, "gunicorn"), "-c", str(GUNICORN_CONF), "campusiq.wsgi:application"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    https = {"X-Forwarded-Proto": "https"}
    try:
        wait_for_http(f"{base}/", process=process, headers=https)
        yield base, https, process
    finally:
        stop(process)


@pytest.fixture(scope="module")
def production_server(production_gunicorn):
    base, https, _ = production_gunicorn
    return base, https


def test_serves_home_page_with_production_headers(production_server):
    base, https = production_server
    status, headers, body = http_get(f"{base}/", headers={**https, "X-Request-ID": "gunicorn-smoke-0001"})
    assert status == 200
    assert b"Welcome to CampusIQ" in body
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["X-Request-ID"] == "gunicorn-smoke-0001"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_plain_http_is_redirected_to_https(production_server):
    base, _ = production_server
    status, headers, _ = http_get(f"{base}/")
    assert status == 301 and headers["Location"].startswith("https://")


def test_static_files_are_hashed_and_served_by_whitenoise(production_server):
    base, https = production_server
    _, _, body = http_get(f"{base}/", headers=https)
    css = next(part for part in body.decode().split('"') if part.startswith("/static/css/campusiq."))
    assert css != "/static/css/campusiq.css"  # manifest storage names files by content hash
    status, headers, _ = http_get(f"{base}{css}", headers=https)
    assert status == 200 and "immutable" in headers["Cache-Control"]


def test_workers_are_forked_with_the_masters_objects_frozen():
    """Frozen, the objects a worker inherits are never walked by its collector (no copy-on-write)."""
    import gc

    config = runpy.run_path(str(GUNICORN_CONF))
    gc.unfreeze()
    try:
        config["pre_fork"](None, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_wsgi_module_builds_every_url_lookup_before_the_first_request():
    """Under preload_app the master imports campusiq.wsgi: a forked worker then starts ready."""
    code = (
        "import campusiq.wsgi\n"
        "from django.urls import get_resolver\n"
        "def built(r):\n"
        "    return r._populated and all(built(ns) for _, ns in r.namespace_dict.values())\n"
        "assert built(get_resolver()) and 'campusiq.urls' in __import__('sys').modules\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "campusiq.settings.test"}
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


PRELOADED_FOR_WORKERS = ("sklearn", "scipy", "joblib", "predictions.pipeline", "openpyxl", "drf_spectacular.hooks")


@pytest.mark.parametrize("preload", [True, False])
def test_the_master_imports_what_scoring_schema_and_exports_need_before_forking(preload):
    """Start-up leaves scikit-learn and openpyxl out (tests/core/test_startup.py); under preload_app the
    master's when_ready hook imports them, so a forked worker's first scoring or export is not slowed."""
    code = (
        "import json, runpy, sys, types\n"
        "import campusiq.wsgi\n"
        f"config = runpy.run_path({str(GUNICORN_CONF)!r})\n"
        "assert 'sklearn' not in sys.modules and 'openpyxl' not in sys.modules\n"
        f"config['when_ready'](types.SimpleNamespace(cfg=types.SimpleNamespace(preload_app={preload})))\n"
        f"print(json.dumps([m for m in {PRELOADED_FOR_WORKERS!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "campusiq.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded == (list(PRELOADED_FOR_WORKERS) if preload else [])


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                children.append(int(entry.name))
    return children


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps (Linux)")
def test_served_workers_hold_scikit_learn_before_any_scoring_request(production_gunicorn):
    """The real server: each worker, forked after when_ready, has scikit-learn's compiled modules mapped
    although nothing has scored yet (the requests so far were pages and static files)."""
    _, _, master = production_gunicorn
    workers = _children(master.pid)
    assert len(workers) == 2
    for worker in workers:
        maps = Path(f"/proc/{worker}/maps").read_text()
        assert "/sklearn/" in maps and "/scipy/" in maps
