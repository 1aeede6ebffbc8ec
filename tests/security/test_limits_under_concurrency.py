"""Rate limits hold exactly under concurrency on every store the project runs on, tested with real
concurrent requests against a real gunicorn (3 workers) on each: Redis (production), the failover
table while Redis is down (production with a Redis nobody listens on), and the development setup
(SQLite, no Redis). 50 simultaneous check-ins against a limit of 20 a minute: exactly 20 are
considered. 20 simultaneous wrong passwords for one account and address against 5: exactly 5 are
checked. Every refusal is a 429 with Retry-After. (On Django's database cache, add+incr let 36 of the
50 through and checked 6 of the 20 passwords.)"""

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.support import stack
from tests.support.processes import ROOT, free_port

PASSWORD = "right-pass-2026-x"  # nosec B105  (a test account's)
LIMITS = {"ATTENDANCE_CHECK_IN_RATE_PER_USER": "20/m", "ATTENDANCE_CHECK_IN_RATE_PER_IP": "3000/m",
          "SIGN_IN_FAILURES_PER_ACCOUNT_AND_IP": "5/15m", "API_TOKEN_RATE_PER_IP": "1000/m"}  # fmt: skip
MAKE_STUDENT = (
    "from accounts.models import ApiToken; from accounts.tokens import api_token_issue; "
    "from tests.factories import StudentFactory; student = StudentFactory(); user = student.user; "
    f"user.set_password('{PASSWORD}'); user.save(); "
    "key = api_token_issue(user=user, name='phone', scope=ApiToken.Scope.READ_WRITE)[1]; "
    "print(user.email, key)"
)


def shell(env: dict, code: str) -> str:
    result = subprocess.run([str(stack.BIN / "python"), "manage.py", "shell", "-c", code], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", params=["redis", "failover", "development"])
def server(request):
    missing = stack.postgres_missing() or stack.redis_missing()
    if missing and request.param != "development":
        service_missing(missing)
    workdir = Path(tempfile.mkdtemp(prefix=f"campusiq-limits-{request.param}-"))
    workdir.chmod(0o755)
    postgres = stack.PostgresServer(workdir / "postgres")
    redis = stack.RedisServer(workdir / "redis")
    web = None
    try:
        if request.param == "development":
            sqlite = f"sqlite:///{workdir}/db.sqlite3"
            env = stack.production_env(database_url=sqlite, redis_url="", static_root=workdir / "static",
                                       DJANGO_SETTINGS_MODULE="campusiq.settings.dev")  # fmt: skip
            env.pop("REDIS_URL")
        else:
            postgres.init().start()
            redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens: the failover table counts
            if request.param == "redis":
                redis.start()
                redis_url = redis.url
            env = stack.production_env(database_url=postgres.create_database("campusiq"), redis_url=redis_url,
                                       static_root=workdir / "static")  # fmt: skip
        env.update(LIMITS, GUNICORN_WORKERS="3")
        stack.manage(env, "migrate", "--noinput", "-v0")
        stack.manage(env, "createcachetable", "-v0")
        email, key = shell(env, MAKE_STUDENT).split()
        web = stack.GunicornServer(env, log_path=workdir / "gunicorn.log").start()
        yield web.base, email, key
    finally:
        if web is not None:
            web.stop()
        redis.stop()
        if (workdir / "postgres" / "data").exists():
            postgres.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def at_once(count: int, send) -> list[tuple[int, dict]]:
    """`count` requests released together from as many threads."""
    barrier = threading.Barrier(count)

    def one(_):
        barrier.wait()
        return send()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def post_json(base: str, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(),
        {**stack.HTTPS, "Content-Type": "application/json", "X-Forwarded-For": "10.20.30.40", **(headers or {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_fifty_simultaneous_check_ins_meet_a_limit_of_twenty_exactly(server):
    base, _, key = server
    while time.time() % 60 > 40:  # all fifty inside one minute's window
        time.sleep(1)
    answers = at_once(50, lambda: post_json(base, "/api/v1/check-ins/", {"token": "forged"},
                                            {"Authorization": f"Bearer {key}"}))  # fmt: skip
    statuses = Counter(status for status, _ in answers)
    assert statuses == {400: 20, 429: 30}, statuses  # 400: a forged code, considered and refused
    assert all(0 < int(headers["Retry-After"]) <= 60 for status, headers in answers if status == 429)


def test_twenty_simultaneous_wrong_passwords_are_checked_five_times(server):
    base, email, _ = server
    answers = at_once(20, lambda: post_json(base, "/api/v1/auth/token/", {"email": email, "password": "wrong-guess"}))
    statuses = Counter(status for status, _ in answers)
    assert statuses == {401: 5, 429: 15}, statuses
    assert all(int(headers["Retry-After"]) > 0 for status, headers in answers if status == 429)
