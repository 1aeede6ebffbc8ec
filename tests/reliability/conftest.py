"""One production-like stack for the reliability tests: a private PostgreSQL cluster and Redis server
(the tests stop and start them; the shared test services are never touched), the campus of
bench/reliability_data.py, and gunicorn with deploy/gunicorn.conf.py under the production settings.

Built once (15-30 s) and shared by the three modules, each with a class session of its own; stopped
when they are done, before the rest of the suite runs. CAMPUSIQ_RELIABILITY_SECONDS lengthens the
runs (default 20; bench/reliability.py uses 120).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest

from tests.conftest import service_missing
from tests.support import stack
from tests.support.processes import ROOT

SECONDS = int(os.environ.get("CAMPUSIQ_RELIABILITY_SECONDS", "20"))
WORKERS = int(os.environ.get("CAMPUSIQ_RELIABILITY_WORKERS", "3"))
LOCUSTFILE = ROOT / "bench" / "locustfile_mixed.py"
# The load (requests per second): portal users and integrators at 1/s each, check-ins at 1/s per user.
LOAD = {"PORTAL_USERS": 6, "CHECK_IN_USERS": 6, "INTEGRATOR_USERS": 3, "PORTAL_RATE": 1, "CHECK_IN_RATE": 1,
        "INTEGRATOR_RATE": 1}  # fmt: skip


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes
    seconds: float

    def json(self) -> dict:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}


@dataclass
class LoadRun:
    name: str
    csv_prefix: Path
    results_path: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)

    def wait(self, timeout: float) -> None:
        self.process.wait(timeout=timeout)

    def stats(self) -> dict[str, stack.LocustStats]:
        return stack.locust_stats(self.csv_prefix)

    def failures(self) -> list[dict]:
        return stack.locust_failures(self.csv_prefix)

    def checked_in(self) -> list[int]:
        return json.loads(self.results_path.read_text())["checked_in"]

    def refused(self) -> list[int]:
        return json.loads(self.results_path.read_text())["refused"]

    def report(self, title: str) -> None:
        print(f"\n{title}")
        print(stack.LocustStats.HEADER)
        stats = self.stats()
        for name in sorted(n for n in stats if n != "Aggregated"):
            print(stats[name].line())
        print(stats["Aggregated"].line())
        for failure in self.failures():
            print(f"  failure: {failure['Method']} {failure['Name']}: {failure['Error']} x{failure['Occurrences']}")


@dataclass
class Stack:
    workdir: Path
    postgres: stack.PostgresServer
    redis: stack.RedisServer
    server: stack.GunicornServer
    env: dict[str, str]
    database_url: str
    data: dict
    data_file: Path

    @property
    def base(self) -> str:
        return self.server.base

    def request(self, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None,
                timeout: float = 15) -> Reply:  # fmt: skip
        """One request as the reverse proxy would send it; redirects are returned, not followed."""
        request = urllib.request.Request(
            f"{self.base}{path}", method=method, data=body, headers={**stack.HTTPS, **(headers or {})}
        )
        started = time.perf_counter()
        try:
            with _opener.open(request, timeout=timeout) as response:
                return Reply(response.status, response.headers, response.read(), time.perf_counter() - started)
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read(), time.perf_counter() - started)

    def api(self, method: str, path: str, *, key: str, payload: dict | None = None, client: str = "10.8.0.1") -> Reply:
        headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": client}
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        return self.request(method, path, headers=headers, body=body)

    def sign_in_form(self, client: str) -> dict[str, str]:
        """The sign-in page's CSRF cookie and token, for `client` (an X-Forwarded-For address)."""
        page = self.request("GET", "/accounts/login/", headers={"X-Forwarded-For": client})
        assert page.status == 200, page.body[:300]
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
        return {"cookie": page.cookies()["__Host-csrftoken"], "token": token}

    def sign_in(self, email: str, password: str, *, client: str, form: dict[str, str] | None = None) -> Reply:
        """The portal's password step, as a browser behind the proxy sends it (the Secure cookies by hand)."""
        form = form or self.sign_in_form(client)
        origin = self.base.replace("http://", "https://")
        body = urlencode({"username": email, "password": password, "csrfmiddlewaretoken": form["token"]}).encode()
        headers = {
            "X-Forwarded-For": client, "Cookie": f"__Host-csrftoken={form['cookie']}", "Origin": origin,
            "Referer": f"{origin}/accounts/login/", "Content-Type": "application/x-www-form-urlencoded",
        }  # fmt: skip
        return self.request("POST", "/accounts/login/", headers=headers, body=body)

    def qr_token(self, session: str) -> str:
        """What the lecturer's screen shows now for one of the runs' sessions (signed with the server's key)."""
        from django.test import override_settings

        from attendance.models import ClassSession
        from attendance.qr import qr_token_make

        entry = self.data["sessions"][session]
        with override_settings(SECRET_KEY=self.env["DJANGO_SECRET_KEY"]):
            return qr_token_make(ClassSession(pk=entry["id"], token_salt=entry["salt"]))

    def wait_for_load(self, session: str, timeout: float = 60) -> None:
        """Until the workload's first check-in is recorded: locust takes a few seconds to start."""
        wait_until(lambda: self.records(session), timeout=timeout)

    def ready(self) -> Reply:
        return self.request("GET", "/health/ready")

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.database_url, connect_timeout=5) as connection:
            return connection.execute(sql, params or []).fetchall()

    def records(self, session: str) -> list[int]:
        """Students recorded in one of the runs' class sessions, one row each (a student twice would show)."""
        rows = self.query(
            "SELECT student_id FROM attendance_attendancerecord WHERE session_id = %s",
            [self.data["sessions"][session]["id"]],
        )
        return [row[0] for row in rows]

    def load(self, name: str, *, session: str, seconds: int, phase_file: Path | None = None) -> LoadRun:
        """Starts the mixed workload (bench/locustfile_mixed.py) for `seconds` in its own process."""
        users = LOAD["PORTAL_USERS"] + LOAD["CHECK_IN_USERS"] + LOAD["INTEGRATOR_USERS"]
        csv_prefix = self.workdir / name
        results = self.workdir / f"{name}_results.json"
        env = {
            **self.env,
            "RELIABILITY_DATA": str(self.data_file),
            "RELIABILITY_SESSION": session,
            "RELIABILITY_RESULTS": str(results),
            **{f"RELIABILITY_{key}": str(value) for key, value in LOAD.items()},
        }
        if phase_file is not None:
            env["RELIABILITY_PHASE_FILE"] = str(phase_file)
        process = stack.locust_start(
            env, LOCUSTFILE, ["PortalStudent", "CheckInStudent", "Integrator"], host=self.base, users=users,
            spawn_rate=users, run_time=f"{seconds}s", csv_prefix=csv_prefix, log_path=self.workdir / f"{name}.log",
        )  # fmt: skip
        return LoadRun(name=name, csv_prefix=csv_prefix, results_path=results, process=process)

    def log_events(self, event: str) -> list[dict]:
        """The app's JSON log lines (all workers) for one event."""
        lines = []
        for line in self.server.log().splitlines():
            if f'"{event}"' in line:
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def check_in_pool() -> int:
    """Enough students for the longest run's check-ins (each student checks in once per session; the
    Redis run lasts about 1.9 x SECONDS)."""
    per_second = LOAD["CHECK_IN_USERS"] * LOAD["CHECK_IN_RATE"]
    return int(per_second * max(SECONDS, 20) * 2.5) + 50


@pytest.fixture(scope="package")
def reliability_stack() -> Iterator[Stack]:
    locust_missing = None if shutil.which("locust", path=str(stack.BIN)) else "locust"
    for missing in (stack.postgres_missing(), stack.redis_missing(), locust_missing):
        if missing:
            service_missing(missing)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="campusiq-reliability-"))
    workdir.chmod(0o755)
    postgres = stack.PostgresServer(workdir / "postgres")
    redis = stack.RedisServer(workdir / "redis")
    server = None
    try:
        postgres.init().start()
        redis.start()
        database_url = postgres.create_database("campusiq")
        env = stack.production_env(
            database_url=database_url, redis_url=redis.url, static_root=workdir / "static",
            GUNICORN_WORKERS=str(WORKERS),
            # Recycling after N requests would replace workers at random moments; the outage tests
            # check that the *same* workers recover.
            GUNICORN_MAX_REQUESTS="0",
        )  # fmt: skip
        stack.manage(env, "migrate", "--noinput", "-v0")
        stack.collectstatic(env)
        data_file = workdir / "data.json"
        with open(workdir / "data.log", "w") as data_log:
            subprocess.run([str(stack.BIN / "python"), str(ROOT / "bench" / "reliability_data.py"), str(data_file),
                            str(check_in_pool())], env=env, cwd=ROOT, check=True, timeout=600, stdout=data_log,
                           stderr=subprocess.STDOUT)  # fmt: skip
        server = stack.GunicornServer(env, log_path=workdir / "gunicorn.log").start()
        data = json.loads(data_file.read_text())
        built = Stack(workdir=workdir, postgres=postgres, redis=redis, server=server, env=env,
                      database_url=database_url, data=data, data_file=data_file)  # fmt: skip
        print(f"\n[reliability] stack built in {time.monotonic() - started:.1f}s: gunicorn {WORKERS} workers, "
              f"PostgreSQL :{postgres.port}, Redis :{redis.port}, {workdir}")  # fmt: skip
        yield built
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        postgres.destroy()
        if not os.environ.get("CAMPUSIQ_RELIABILITY_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


def wait_until(predicate, *, timeout: float, interval: float = 0.2):
    """Polls until predicate() is truthy; returns (value, seconds waited) or raises TimeoutError."""
    started = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not true within {timeout}s")
        time.sleep(interval)
