"""Shared plumbing of the benchmarks: the test services, a fresh database, production settings,
a real gunicorn with deploy/gunicorn.conf.py, and locust in another process.

Benchmarks run the production settings (rate limits, JSON logs, security middleware, HTTPS
redirect: requests arrive as nginx would send them, with X-Forwarded-Proto: https).
"""

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"

sys.path.insert(0, str(ROOT))
from tests.support import stack  # noqa: E402  (the servers and locust, shared with tests/reliability)


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
    return stack.production_env(database_url=database_url, redis_url=redis_db, static_root=OUT / "static", **extra)


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "python"), str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def python(env: dict[str, str], script: Path, *args: str) -> None:
    subprocess.run([str(BIN / "python"), str(script), *args], env=env, cwd=ROOT, check=True)


@contextmanager
def gunicorn(env: dict[str, str], port: int = 8765):
    """The production server, configured by deploy/gunicorn.conf.py; its logs go to bench/out/."""
    server = stack.GunicornServer(env, log_path=OUT / "gunicorn.log", port=port)
    try:
        server.start(timeout=60)
    except RuntimeError:
        server.stop()
        raise RuntimeError(f"gunicorn did not start; see {OUT / 'gunicorn.log'}") from None
    try:
        yield server.base
    finally:
        server.stop()


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
    stack.locust_start(
        {**env, **extra}, locustfile, [user_class], host=host, users=users, spawn_rate=spawn_rate,
        run_time=run_time, csv_prefix=prefix,
    ).wait()  # fmt: skip
    total = stack.locust_stats(prefix)["Aggregated"]
    return {
        "requests": total.requests,
        "failures": total.failures,
        "rps": total.rps,
        "p50": total.p50,
        "p95": total.p95,
        "p99": total.p99,
        "max": total.max,
    }


def verdicts(checks: list[tuple[str, bool]]) -> int:
    """Prints PASS/FAIL per target; the exit status of the benchmark (0 when all pass)."""
    print()
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1
