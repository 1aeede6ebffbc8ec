"""Shared plumbing of the benchmarks: the test services, a fresh database, production settings,
a real gunicorn with deploy/gunicorn.conf.py, and locust in another process.

Benchmarks run the production settings (rate limits, JSON logs, security middleware, HTTPS
redirect: requests arrive as nginx would send them, with X-Forwarded-Proto: https).
"""

import csv
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def services() -> dict[str, str]:
    subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "start"], check=True, stdout=subprocess.DEVNULL)
    values = {}
    for line in (ROOT / ".services" / "env").read_text().splitlines():
        name, _, value = line.partition("=")
        values[name] = value
    if "DATABASE_URL" not in values or "REDIS_URL" not in values:
        sys.exit("The benchmarks need PostgreSQL and Redis (scripts/services.sh could not start them).")
    return values


def fresh_database(server_url: str, name: str) -> str:
    """Drops and creates `name` on the test PostgreSQL server; returns its URL."""
    base = server_url.rsplit("/", 1)[0]
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def production_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    OUT.mkdir(parents=True, exist_ok=True)
    redis_db = redis_url.rsplit("/", 1)[0] + "/9"
    subprocess.run(
        [str(BIN / "python"), "-c", f"import redis; redis.Redis.from_url('{redis_db}').flushdb()"], check=True
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))},
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.prod",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_db,
        "DJANGO_STATIC_ROOT": str(OUT / "static"),
        "TRUSTED_PROXY_CIDRS": "127.0.0.1/32",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "python"), str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def python(env: dict[str, str], script: Path, *args: str) -> None:
    subprocess.run([str(BIN / "python"), str(script), *args], env=env, cwd=ROOT, check=True)


@contextmanager
def gunicorn(env: dict[str, str], port: int = 8765):
    """The production server, configured by deploy/gunicorn.conf.py; its logs go to bench/out/."""
    server_log = open(OUT / "gunicorn.log", "w")  # noqa: SIM115  (closed below, after the server)
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "campusiq.wsgi:application"],
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        cwd=ROOT,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            request = urllib.request.Request(f"{base}/health/live", headers={"X-Forwarded-Proto": "https"})
            urllib.request.urlopen(request, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see {OUT / 'gunicorn.log'}") from None
            time.sleep(0.3)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        server_log.close()


def locust(
    env: dict[str, str],
    locustfile: Path,
    user_class: str,
    *,
    host: str,
    users: int,
    spawn_rate: float,
    run_time: str,
    name: str,
    **extra: str,
) -> dict:
    """Runs locust headless in its own process and returns the aggregated figures."""
    prefix = OUT / name
    command = [
        str(BIN / "locust"), "-f", str(locustfile), user_class, "--headless", "--host", host, "-u", str(users),
        "-r", str(spawn_rate), "--run-time", run_time, "--csv", str(prefix), "--only-summary", "--stop-timeout", "10",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    subprocess.run(command, env={**env, **extra}, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "p50": float(total["50%"]),
        "p95": float(total["95%"]),
        "p99": float(total["99%"]),
        "max": float(total["Max Response Time"]),
    }
