"""Error tracking, tracing and secrets, end to end on real processes: gunicorn (production settings,
JSON logs) serving tests/support/faulty_wsgi.py, a Celery worker, a private PostgreSQL and Redis, and a
local HTTP endpoint standing in for Sentry and the OpenTelemetry collector, which receives the real
envelopes and OTLP exports (no mock of either SDK).

- A 500 reaches the error tracker with its request id, environment and release, the user as an id only.
- A password and an API token held in a frame's locals, in a request or in a task's error message
  appear nowhere: not in any log line of either process, not in any envelope.
- One trace runs from the web request through its queries and the Celery publish into the worker's
  task, and the request's and the task's log lines carry its trace id.
"""

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from celery import Celery

from tests.conftest import service_missing
from tests.support import stack
from tests.support.faulty_tasks import FAULT_PASSWORD, FAULT_TOKEN
from tests.support.processes import ROOT
from tests.support.receiver import Receiver

STUDENT = "student1@campusiq.example"
REGISTRAR = ("registrar@campusiq.example", "demo-registrar-pass-2026")  # docs/DEMO_DATA.md
ENVIRONMENT, RELEASE = "campus-test", "campusiq-test-1"
SENTRY_KEY = "0123456789abcdef0123456789abcdef"


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Observed:
    """What the stack wrote and sent after the faults and the traced request (see the fixture)."""

    replies: dict[str, Reply]
    secrets: dict[str, str]
    logs: str
    events: list[dict]
    envelopes: bytes
    spans: list[dict]
    registrar_id: int


def call(base: str, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None) -> Reply:
    headers = {**stack.HTTPS, "X-Forwarded-For": "10.9.1.4", **(headers or {})}
    request = urllib.request.Request(base + path, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


def call_json(base: str, method: str, path: str, payload: dict, headers: dict | None = None) -> Reply:
    return call(base, method, path, headers={"Content-Type": "application/json", **(headers or {})},
                body=json.dumps(payload).encode())  # fmt: skip


def portal_sign_in(base: str, email: str, password: str) -> tuple[Reply, str]:
    """The sign-in form as a browser behind nginx posts it; returns the reply and the CSRF cookie."""
    page = call(base, "GET", "/accounts/login/")
    cookie = SimpleCookie(page.headers.get("Set-Cookie", ""))["__Host-csrftoken"].value
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    origin = base.replace("http://", "https://")
    form = urllib.parse.urlencode({"username": email, "password": password, "csrfmiddlewaretoken": token})
    headers = {"Cookie": f"__Host-csrftoken={cookie}", "Origin": origin, "Referer": f"{origin}/accounts/login/",
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    return call(base, "POST", "/accounts/login/", headers=headers, body=form.encode()), cookie


def sentry_events(receiver: Receiver) -> list[dict]:
    """The events of every envelope received: an envelope is JSON lines, a header then items."""
    events = []
    for item in receiver.at("/api/"):
        for line in item.body.splitlines():
            try:
                payload = json.loads(line)
            except ValueError:
                continue
            if isinstance(payload, dict) and "exception" in payload:
                events.append(payload)
    return events


def otlp_spans(receiver: Receiver) -> list[dict]:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = []
    for item in receiver.at("/v1/traces"):
        export = ExportTraceServiceRequest()
        export.ParseFromString(item.body)
        for resource_spans in export.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    described = MessageToDict(span, preserving_proto_field_name=True)
                    described["trace_id"], described["span_id"] = span.trace_id.hex(), span.span_id.hex()
                    described["parent_span_id"] = span.parent_span_id.hex()
                    described["attributes"] = {
                        a["key"]: next(iter(a["value"].values()), None) for a in described.get("attributes", [])
                    }
                    spans.append(described)
    return spans


def wait_until(predicate, *, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.3)
    return value


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    for missing in (stack.postgres_missing(), stack.redis_missing()):
        if missing:
            service_missing(missing)
    workdir = Path(tempfile.mkdtemp(prefix="campusiq-telemetry-"))
    workdir.chmod(0o755)
    postgres, redis = stack.PostgresServer(workdir / "postgres"), stack.RedisServer(workdir / "redis")
    receiver = Receiver().start()
    web = worker = None
    try:
        postgres.init().start()
        redis.start()
        env = stack.production_env(
            database_url=postgres.create_database("campusiq"), redis_url=redis.url, static_root=workdir / "static",
            MODEL_ARTIFACT_ROOT=str(workdir / "models"), GUNICORN_WORKERS="2",
            SENTRY_DSN=f"http://{SENTRY_KEY}@127.0.0.1:{receiver.port}/1", SENTRY_ENVIRONMENT=ENVIRONMENT,
            CAMPUSIQ_RELEASE=RELEASE, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
            OTEL_BSP_SCHEDULE_DELAY="200",  # export spans within a fifth of a second
        )  # fmt: skip
        stack.manage(env, "dev_setup", "-v0")
        stack.collectstatic(env)
        web = stack.GunicornServer(env, log_path=workdir / "gunicorn.log", app="tests.support.faulty_wsgi:application")
        web.start()
        worker = stack.CeleryWorker(env, log_path=workdir / "worker.log", include=("tests.support.faulty_tasks",))
        worker.start()
        base = web.base

        replies = {}
        replies["sign-in"], csrf_cookie = portal_sign_in(base, STUDENT, FAULT_PASSWORD)
        replies["token"] = call_json(
            base, "POST", "/api/v1/auth/token/", {"email": STUDENT, "password": FAULT_PASSWORD}
        )
        key = registrar_token(env)  # staff need two-factor for a token of their own: issued as an admin would
        bearer = {"Authorization": f"Bearer {key}"}
        replies["current-token"] = call(base, "GET", "/api/v1/auth/token/current/", headers=bearer)
        term = call(base, "GET", "/api/v1/terms/?ordering=-start_date", headers=bearer).json()["results"][0]["id"]
        replies["scoring-run"] = call_json(base, "POST", "/api/v1/scoring-runs/", {"term": term}, headers=bearer)
        Celery(broker=redis.url, set_as_current=False).send_task("tests.fault_with_secrets")

        wait_until(lambda: len(sentry_events(receiver)) >= 4, what=f"four error events; {workdir}", timeout=60)
        wait_until(lambda: any(s["name"].startswith("run/") for s in otlp_spans(receiver)), what="the task's span")
        time.sleep(1)  # the last batches of spans and log lines
        registrar_id = postgres_scalar(env, "SELECT id FROM accounts_user WHERE email = %s", REGISTRAR[0])
        yield Observed(
            replies=replies,
            secrets={"password": FAULT_PASSWORD, "token": FAULT_TOKEN, "bearer key": key, "CSRF cookie": csrf_cookie,
                     "registrar password": REGISTRAR[1]},
            logs=web.log() + worker.log(),
            events=sentry_events(receiver),
            envelopes=b"".join(item.body for item in receiver.at("/api/")),
            spans=otlp_spans(receiver),
            registrar_id=registrar_id,
        )  # fmt: skip
    finally:
        for process in (worker, web):
            if process is not None:
                process.stop()
        receiver.stop()
        redis.stop()
        postgres.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def registrar_token(env: dict) -> str:
    code = (
        "from accounts.models import User; from accounts.tokens import api_token_issue; "
        f"user = User.objects.get(email='{REGISTRAR[0]}'); "
        "print(api_token_issue(user=user, name='bi', scope='read_write', actor=user)[1])"
    )
    result = subprocess.run([str(stack.BIN / "python"), "manage.py", "shell", "-c", code], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


def postgres_scalar(env: dict, sql: str, *params):
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as connection:
        return connection.execute(sql, params).fetchone()[0]


def event_with(observed: Observed, text: str) -> dict:
    matching = [e for e in observed.events if text in json.dumps(e.get("exception"))]
    assert len(matching) == 1, [e.get("exception", {}).get("values", [{}])[-1].get("value") for e in observed.events]
    return matching[0]


def test_a_500_reaches_the_error_tracker_with_its_request_id_and_the_user_as_an_id(observed):
    reply = observed.replies["current-token"]
    assert reply.status == 500 and reply.json()["request_id"] == reply.headers["X-Request-ID"]
    event = event_with(observed, "while reading the current token")
    assert event["tags"]["request_id"] == reply.headers["X-Request-ID"]
    assert event["environment"] == ENVIRONMENT and event["release"] == RELEASE
    assert event["user"] == {"id": str(observed.registrar_id)}
    assert set(event["request"]) <= {"url", "method"}
    signing_in = [e for e in observed.events if "while checking a password" in json.dumps(e["exception"])]
    assert [e["user"] for e in signing_in] == [{}, {}]  # the portal's form and the API's: nobody signed in yet
    task = event_with(observed, "could not reach postgres://")
    assert "postgres://campusiq:[redacted]@db" in json.dumps(task["exception"])
    assert all("vars" not in frame for e in observed.events for v in e["exception"]["values"]
               for frame in v.get("stacktrace", {}).get("frames", []))  # fmt: skip


def test_the_sign_in_and_token_faults_answer_500_with_a_request_id(observed):
    sign_in, token = observed.replies["sign-in"], observed.replies["token"]
    assert sign_in.status == 500 and sign_in.headers["X-Request-ID"].encode() in sign_in.body  # the error page
    assert token.status == 500 and token.json()["request_id"] == token.headers["X-Request-ID"]
    tagged = {e["tags"]["request_id"] for e in observed.events if "while checking a password" in json.dumps(e)}
    assert tagged == {sign_in.headers["X-Request-ID"], token.headers["X-Request-ID"]}


def test_no_secret_appears_in_any_log_line_or_envelope(observed):
    # The output holds the three tracebacks, so the search below is a search of real traces.
    for fault in ("while checking a password", "while reading the current token", "could not reach postgres"):
        assert fault in observed.logs, fault
    assert '"exception"' in observed.logs and '"frames"' in observed.logs
    assert any(e["name"] == "exception" for s in observed.spans for e in s.get("events", []))  # recorded in traces
    outputs = {"logs": observed.logs.encode(), "error-tracking envelopes": observed.envelopes,
               "trace exports": json.dumps(observed.spans).encode()}  # fmt: skip
    for name, secret in observed.secrets.items():
        for output, content in outputs.items():
            assert secret.encode() not in content, f"the {name} appears in the {output}"
    assert STUDENT.encode() not in observed.envelopes and REGISTRAR[0].encode() not in observed.envelopes


def test_one_trace_runs_from_the_request_through_its_queries_into_the_workers_task(observed):
    assert observed.replies["scoring-run"].status == 202
    (server,) = [s for s in observed.spans if s["kind"] == "SPAN_KIND_SERVER" and "scoring-runs" in json.dumps(s)]
    trace = [s for s in observed.spans if s["trace_id"] == server["trace_id"]]
    queries = [s for s in trace if s["attributes"].get("db.system") == "postgresql"]
    (publish,) = [s for s in trace if s["name"].startswith("apply_async/")]
    (run,) = [s for s in trace if s["name"].startswith("run/")]
    assert queries and publish["kind"] == "SPAN_KIND_PRODUCER" and run["kind"] == "SPAN_KIND_CONSUMER"
    assert run["parent_span_id"] == publish["span_id"]
    assert "scoring_run_execute" in run["name"]
    # The request's access line and the task's lines carry the trace id.
    lines = [json.loads(line) for line in observed.logs.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("trace_id") == server["trace_id"]]
    assert any(line.get("event") == "request" and line.get("path") == "/api/v1/scoring-runs/" for line in traced)
    assert any(line.get("logger", "").startswith(("celery", "predictions")) for line in traced)
