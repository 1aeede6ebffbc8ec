"""Redis stopped in the middle of the mixed workload, then started again, gunicorn never restarted.

While it is down: portal pages and check-ins keep working (no request fails), readiness says
"degraded" (200), and guessing a password is still throttled, through the portal's sign-in and the
API's token endpoint (the limits are counted in the database: campusiq/core/cache.py). No check-in
is lost or doubled. Once it is back: readiness "ok" and rate limits counted in Redis again."""

import collections
import time

import pytest

from tests.reliability.conftest import SECONDS, WORKERS, wait_until

pytestmark = pytest.mark.reliability

CACHE_RETRY_AFTER_SECONDS = 5  # the default, which the stack runs with
# The loosest per-account limit sign-in has ever had is 10 attempts a minute: the 11th must be refused.
BRUTE_FORCE_ATTEMPTS = 11


def guess_portal_password(stack, email: str, client: str) -> list[int]:
    """Wrong passwords from one address until refused; the statuses answered."""
    form = stack.sign_in_form(client)
    statuses = []
    for attempt in range(BRUTE_FORCE_ATTEMPTS + 2):
        statuses.append(stack.sign_in(email, f"wrong-guess-{attempt}", client=client, form=form).status)
        if statuses[-2:] == [429, 429]:
            break
    return statuses


def guess_api_password(stack, email: str, client: str) -> list[int]:
    statuses = []
    for attempt in range(BRUTE_FORCE_ATTEMPTS + 2):
        reply = stack.request(
            "POST", "/api/v1/auth/token/", headers={"X-Forwarded-For": client, "Content-Type": "application/json"},
            body=f'{{"email": "{email}", "password": "wrong-guess-{attempt}"}}'.encode(),
        )  # fmt: skip
        statuses.append(reply.status)
        if statuses[-2:] == [429, 429]:
            break
    return statuses


def assert_throttled(statuses: list[int], refused: int, what: str) -> int:
    """Refused by the (N+1)th guess at the latest, and from then on; returns the first refused attempt."""
    assert refused in statuses, f"{what}: never throttled: {statuses}"
    first = statuses.index(refused) + 1
    assert first <= BRUTE_FORCE_ATTEMPTS, f"{what}: throttled only at attempt {first}: {statuses}"
    assert all(status == refused for status in statuses[first - 1 :]), statuses
    return first


def test_redis_outage_keeps_pages_and_check_ins_working_and_rate_limits_closed(reliability_stack):
    stack = reliability_stack
    targets = stack.data["brute_force_targets"]
    before, outage, after = max(6, SECONDS // 3), max(16, SECONDS), max(10, SECONDS // 2)
    assert stack.ready().json()["status"] == "ok"
    phase = stack.workdir / "redis_phase"
    phase.write_text("before")
    pids = (stack.server.pid, stack.server.worker_pids())
    run = stack.load("redis", session="redis", seconds=before + outage + after, phase_file=phase)
    stack.wait_for_load("redis")
    time.sleep(before)

    phase.write_text("outage")
    stack.redis.stop()
    outage_started = time.monotonic()
    ready = stack.ready()
    body = ready.json()
    assert ready.status == 200 and body["status"] == "degraded", body
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "degraded" and "DatabaseCache" in body["checks"]["cache"]["detail"]
    print(f"\nRedis stopped: /health/ready {ready.status} {body['status']} in {ready.seconds * 1000:.0f} ms")

    portal = guess_portal_password(stack, targets[0], "10.66.0.1")
    portal_refused = assert_throttled(portal, 429, "portal sign-in, Redis down")
    api = guess_api_password(stack, targets[1], "10.66.0.2")
    api_refused = assert_throttled(api, 429, "API token endpoint, Redis down")
    print(f"Redis down: wrong passwords refused from attempt {portal_refused} (portal) and {api_refused} (API)")
    # Throttling is per account and address: someone else still signs in.
    signed_in = stack.sign_in(stack.data["portal"][-1], stack.data["password"], client="10.66.0.3")
    assert signed_in.status == 302, signed_in.body[:300]
    time.sleep(max(0.0, outage - (time.monotonic() - outage_started)))

    phase.write_text("after")
    stack.redis.start()
    _, recovery = wait_until(lambda: stack.ready().json()["status"] == "ok", timeout=30)
    down_for = time.monotonic() - outage_started
    print(f"Redis started again: /health/ready ok after {recovery:.1f} s (outage {down_for:.0f} s)")
    # Every worker counts in Redis again once its circuit has let a request through (5 s at most).
    redis = stack.redis.client()
    _, resumed = wait_until(lambda: redis.keys("*rl:attendance-check-in*"), timeout=20)
    print(f"check-in rate limits counted in Redis again {recovery + resumed:.1f} s after it started")
    # That is one worker. Each of the others leaves the database at its first cache operation after
    # its own retry interval (CACHE_RETRY_AFTER_SECONDS); until then workers count in different stores
    # (docs/OPERATIONS.md). Past the interval, every worker's next operation goes to Redis.
    time.sleep(CACHE_RETRY_AFTER_SECONDS + 1)
    keys_before = set(redis.keys())
    statuses = guess_portal_password(stack, targets[2], "10.66.0.4")
    assert_throttled(statuses, 429, "portal sign-in, Redis back")
    other_traffic = (b"attendance-check-in", b"api-token", b"class-session", b"health:ready")
    sign_in_keys = [key for key in set(redis.keys()) - keys_before if not any(t in key for t in other_traffic)]
    assert sign_in_keys, "sign-in attempts are not counted in Redis"

    run.wait(timeout=before + outage + after + 90)
    run.report(f"Mixed workload with Redis stopped for {outage} s ({before} s before, {after} s after)")
    assert run.stats()["Aggregated"].failures == 0, run.failures()
    answered = run.checked_in()
    recorded = stack.records("redis")
    assert answered and sorted(recorded) == sorted(answered)
    assert not [student for student, count in collections.Counter(recorded).items() if count > 1]
    assert any(name.endswith("[outage]") for name in run.stats()), "no request ran while Redis was down"
    # The same gunicorn, the same workers; each worker said once per cache that Redis was gone.
    assert (stack.server.pid, stack.server.worker_pids()) == pids
    unavailable = stack.log_events("cache.unavailable")
    assert 1 <= len(unavailable) <= 2 * WORKERS, unavailable
    assert stack.log_events("cache.recovered")
    assert "Traceback" not in stack.server.log()
    print(f"check-ins: {len(answered)} answered 201, {len(recorded)} recorded; 'cache.unavailable' logged "
          f"{len(unavailable)} times")  # fmt: skip
