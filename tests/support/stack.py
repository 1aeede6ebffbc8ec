"""A production-like stack of real processes for the reliability tests and the benchmarks: a private
PostgreSQL cluster and Redis server (which a test may stop and start again), gunicorn with
deploy/gunicorn.conf.py under the production settings, and locust in another process.

Nothing here imports Django: the servers run in their own processes with their own environment.
The shared test services (scripts/services.sh) are never touched.
"""

import contextlib
import csv
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ROOT, free_port

BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
HTTPS = {"X-Forwarded-Proto": "https"}  # as nginx sends it: the production settings redirect plain HTTP
# Apps whose static files no portal page uses: leaving them out keeps collectstatic at a few seconds.
THIRD_PARTY_STATIC = ("admin", "drf_spectacular_sidecar", "import_export", "rest_framework", "django_filters")


def postgres_missing() -> str | None:
    return None if (PG_BIN / "initdb").is_file() else f"PostgreSQL 15 binaries in {PG_BIN}"


def redis_missing() -> str | None:
    return None if shutil.which("redis-server") else "redis-server"


class PostgresServer:
    """A throwaway cluster in `root` on a free port; durability off, it only ever holds test data.

    initdb refuses to run as root, so as root every pg_ctl command runs as the postgres user, in a
    directory that user owns (outside the work tree, which it may not be able to reach)."""

    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.data = root / "data"
        self.log = root / "server.log"

    def _as_owner(self, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *map(str, command)], check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> "PostgresServer":
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._as_owner(PG_BIN / "initdb", "-D", self.data, "-U", "campusiq", "-A", "trust", "-E", "UTF8", "--no-locale")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        result = self._as_owner(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options,
                                "start", check=False)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{self.log.read_text()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, database: str) -> str:
        return f"postgres://campusiq@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """redis-server in the foreground on a free port, no persistence: stopping it loses everything, as
    a Redis restarted without a volume would."""

    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not start on {self.port}")
            time.sleep(0.05)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# The caller's own settings never leak into the servers' environment.
OUTER_SETTINGS = ("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_")


def production_env(*, database_url: str, redis_url: str, static_root: Path, **extra: str) -> dict[str, str]:
    """The production settings with a random secret key, trusting 127.0.0.1 as the reverse proxy
    (clients are told apart by X-Forwarded-For, as nginx sends it), JSON logs."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(OUTER_SETTINGS)},
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.prod",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_STATIC_ROOT": str(static_root),
        "TRUSTED_PROXY_CIDRS": "127.0.0.1/32",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> None:
    subprocess.run([str(BIN / "python"), str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True,
                   timeout=timeout)  # fmt: skip


def collectstatic(env: dict[str, str], *, all_apps: bool = False) -> None:
    ignored = [] if all_apps else [arg for app in THIRD_PARTY_STATIC for arg in ("-i", app)]
    manage(env, "collectstatic", "--noinput", "-v0", *ignored)


class GunicornServer:
    """gunicorn with deploy/gunicorn.conf.py; its output (gunicorn's log and the app's JSON lines) in `log_path`."""

    def __init__(self, env: dict[str, str], *, log_path: Path, port: int | None = None,
                 app: str = "campusiq.wsgi:application"):  # fmt: skip
        self.app = app
        self.port = port or free_port()
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.log_path = log_path
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "GunicornServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), self.app],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        workers = int(self.env.get("GUNICORN_WORKERS", "1"))
        while True:
            with contextlib.suppress(OSError):
                request = urllib.request.Request(f"{self.base}/health/live", headers=HTTPS)
                urllib.request.urlopen(request, timeout=2)
                if len(self.worker_pids()) >= workers:
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see {self.log_path}:\n{self.log()[-3000:]}")
            time.sleep(0.3)

    @property
    def pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return {int(pid) for pid in children.read_text().split()} if children.exists() else set()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class LocustStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float

    def line(self) -> str:
        return (f"{self.name:<34} {self.requests:>7} {self.failures:>6} {self.rps:>7.1f} {self.p50:>7.0f} "
                f"{self.p95:>7.0f} {self.p99:>7.0f} {self.max:>7.0f}")  # fmt: skip

    HEADER = f"{'request':<34} {'count':>7} {'errors':>6} {'req/s':>7} " + " ".join(
        f"{column:>7}" for column in ("p50 ms", "p95 ms", "p99 ms", "max ms")
    )


def locust_start(
    env: dict[str, str], locustfile: Path, user_classes: list[str], *, host: str, users: int, spawn_rate: float,
    run_time: str, csv_prefix: Path, log_path: Path | None = None,
) -> subprocess.Popen:  # fmt: skip
    """locust headless in its own process (a CPU of its own, as a real client would be)."""
    command = [
        str(BIN / "locust"), "-f", str(locustfile), *user_classes, "--headless", "--host", host, "-u", str(users),
        "-r", str(spawn_rate), "--run-time", run_time, "--csv", str(csv_prefix), "--only-summary",
        "--stop-timeout", "10", "--loglevel", "WARNING",
    ]  # fmt: skip
    output = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115  (the child holds it)
    try:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    finally:
        if log_path:
            output.close()


def locust_stats(csv_prefix: Path) -> dict[str, LocustStats]:
    """Each request name's figures from locust's CSV, and "Aggregated"."""
    stats = {}
    with open(f"{csv_prefix}_stats.csv") as stats_file:
        for row in csv.DictReader(stats_file):
            stats[row["Name"]] = LocustStats(
                name=row["Name"], requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]), p50=float(row["50%"]), p95=float(row["95%"]), p99=float(row["99%"]),
                max=float(row["Max Response Time"]),
            )  # fmt: skip
    return stats


def locust_failures(csv_prefix: Path) -> list[dict]:
    """locust's failures: method, name, error message and occurrences."""
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path) as failures:
        return list(csv.DictReader(failures))


class CeleryWorker:
    """`celery worker` as in production (prefork, deploy's settings) in a session of its own, its output
    in `log_path`; with `metrics_port`, its Prometheus endpoint there (CELERY_METRICS_PORT)."""

    def __init__(self, env: dict[str, str], *, log_path: Path, metrics_port: int | None = None,
                 include: tuple[str, ...] = ()):  # fmt: skip
        self.env = dict(env)
        self.include = include
        if metrics_port is not None:
            self.env.update(CELERY_METRICS_PORT=str(metrics_port), CELERY_METRICS_ADDRESS="127.0.0.1")
        self.metrics_port = metrics_port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "CeleryWorker":
        command = [str(BIN / "celery"), "-A", "campusiq", "worker", "--pool=prefork", "--concurrency=1",
                   "--without-mingle", "--without-gossip", "--loglevel=INFO",
                   f"--hostname=test-{time.monotonic_ns()}@%h", *(f"--include={n}" for n in self.include)]  # fmt: skip
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {self.log_path}:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
