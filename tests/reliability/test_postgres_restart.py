"""PostgreSQL stopped (pg_ctl stop -m fast) in the middle of the mixed workload, then started again,
gunicorn never restarted.

While it is down every request that needs it fails fast: 503 within 2 s, in the API's problem shape
under /api/ and as a readable page on the portal, each with Retry-After; readiness 503, liveness 200;
nothing is written. Once it is back the same master and workers answer again (CONN_HEALTH_CHECKS
replaces their dead connections), and the outage is logged once per worker, not once per request."""

import collections
import statistics
import time

import pytest

from tests.reliability.conftest import SECONDS, WORKERS, wait_until

pytestmark = pytest.mark.reliability

FAIL_FAST_SECONDS = 2.0
PROBLEM_JSON = "application/problem+json"


def assert_service_unavailable_problem(reply) -> None:
    assert reply.status == 503, reply.body[:300]
    assert reply.headers["Content-Type"].startswith(PROBLEM_JSON)
    problem = reply.json()
    assert problem["code"] == "service_unavailable" and problem["type"] == "urn:campusiq:problem:service_unavailable"
    assert problem["status"] == 503 and problem["title"] == "Service Unavailable" and problem["detail"]
    assert problem["request_id"] == reply.headers["X-Request-ID"]
    assert int(reply.headers["Retry-After"]) > 0


def test_postgres_restart_fails_fast_with_503_and_the_same_workers_recover(reliability_stack):
    stack = reliability_stack
    data = stack.data
    integrator = data["integrator_key"]
    student_key, student_id = data["check_in"]["keys"][-1], data["check_in"]["students"][-1]
    before, outage, after = max(6, SECONDS // 3), max(10, SECONDS // 2), max(8, SECONDS // 3)
    assert stack.ready().json()["status"] == "ok"
    signed_in = stack.sign_in(data["portal"][-2], data["password"], client="10.67.0.1")
    assert signed_in.status == 302
    session_cookie = signed_in.cookies()["__Host-sessionid"]
    portal_cookie = {"Cookie": f"__Host-sessionid={session_cookie}", "X-Forwarded-For": "10.67.0.1"}
    assert stack.request("GET", "/portal/student/", headers=portal_cookie).status == 200
    pids = (stack.server.pid, stack.server.worker_pids())
    phase = stack.workdir / "postgres_phase"
    phase.write_text("before")
    run = stack.load("postgres", session="postgres", seconds=before + outage + after + 4, phase_file=phase)
    stack.wait_for_load("postgres")
    time.sleep(before)

    phase.write_text("outage")
    time.sleep(1.5)  # requests started before the outage finish first: only "[outage]" ones may fail
    stack.postgres.stop("fast")
    stopped = time.monotonic()
    latencies = collections.defaultdict(list)
    probes = 0
    while time.monotonic() - stopped < outage:
        api = stack.api("GET", "/api/v1/students/?page_size=50", key=integrator)
        assert_service_unavailable_problem(api)
        check_in = stack.api("POST", "/api/v1/check-ins/", key=student_key, client="10.67.0.2",
                             payload={"token": stack.qr_token("postgres")})  # fmt: skip
        assert_service_unavailable_problem(check_in)
        page = stack.request("GET", "/portal/student/", headers=portal_cookie)
        assert page.status == 503 and b"Temporarily unavailable" in page.body and page.headers["Retry-After"]
        ready = stack.ready()
        assert ready.status == 503 and ready.json()["checks"]["database"]["status"] == "fail"
        live = stack.request("GET", "/health/live")
        assert live.status == 200
        for name, reply in (("api list", api), ("check-in", check_in), ("portal page", page), ("ready", ready),
                            ("live", live)):  # fmt: skip
            latencies[name].append(reply.seconds)
        probes += 1
        time.sleep(0.3)
    slowest = max(max(values) for values in latencies.values())
    print(f"\nPostgreSQL down {outage} s: {probes} rounds of probes; per request, median / max ms:")
    for name, values in latencies.items():
        print(f"  {name:<12} {statistics.median(values) * 1000:6.0f} / {max(values) * 1000:6.0f}")
    assert slowest < FAIL_FAST_SECONDS, latencies

    starting = time.monotonic()
    stack.postgres.start()
    accepting = time.monotonic() - starting
    phase.write_text("after")
    _, recovery = wait_until(
        lambda: stack.api("GET", "/api/v1/students/?page_size=50", key=integrator).status == 200, timeout=30,
        interval=0.05,
    )  # fmt: skip
    print(f"PostgreSQL started again: accepting connections after {accepting:.2f} s, the API answered 200 "
          f"{recovery:.2f} s later (gunicorn untouched)")  # fmt: skip
    # Enough requests that every worker serves some, each replacing its dead connection by itself.
    for _ in range(6 * WORKERS):
        assert stack.api("GET", "/api/v1/sections/", key=integrator).status == 200
        assert stack.request("GET", "/portal/student/", headers=portal_cookie).status == 200
    assert stack.ready().json()["status"] in {"ok", "degraded"}
    assert stack.records("postgres").count(student_id) == 0  # the check-ins refused during the outage wrote nothing
    again = stack.api("POST", "/api/v1/check-ins/", key=student_key, client="10.67.0.2",
                      payload={"token": stack.qr_token("postgres")})  # fmt: skip
    assert again.status == 201, again.body[:300]

    run.wait(timeout=before + outage + after + 90)
    run.report(f"Mixed workload with PostgreSQL stopped for {outage} s")
    failures = run.failures()
    assert all(failure["Name"].endswith("[outage]") for failure in failures), failures
    assert all("('503 " in failure["Error"] for failure in failures), failures  # CatchResponseError('503 ...')
    stats = run.stats()
    assert all(stats[name].failures == 0 for name in stats if name.endswith("[after]"))
    # Every check-in answered 201 is recorded once; nothing refused with 503 was written.
    recorded = stack.records("postgres")
    answered = run.checked_in()
    assert not [student for student, count in collections.Counter(recorded).items() if count > 1]
    assert set(answered) <= set(recorded)
    assert set(recorded) - set(answered) == {student_id}, set(recorded) - set(answered) - {student_id}
    assert (stack.server.pid, stack.server.worker_pids()) == pids, "gunicorn or a worker was restarted"
    unavailable = stack.log_events("database.unavailable")
    assert 1 <= len(unavailable) <= WORKERS, unavailable
    assert stack.log_events("database.available")
    assert "Traceback" not in stack.server.log()
    refused = run.refused()
    print(f"workload check-ins: {len(answered)} answered 201 and recorded, {len(refused)} refused with 503 "
          f"(none recorded); 'database.unavailable' logged {len(unavailable)} times for "
          f"{sum(int(f['Occurrences']) for f in failures) + probes * 3} failed requests")  # fmt: skip
