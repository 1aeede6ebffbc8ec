"""The mixed workload at a fixed rate against gunicorn + PostgreSQL + Redis under the production
settings: students browsing the portal (signed in), a check-in burst (distinct students, fresh QR
tokens) and integrators reading API lists. Zero errors, p50/p95 printed per request type, and every
check-in recorded exactly once."""

import collections

import pytest

from tests.reliability.conftest import SECONDS

pytestmark = pytest.mark.reliability


def test_mixed_workload_has_no_errors_and_records_every_check_in_once(reliability_stack):
    run = reliability_stack.load("mixed", session="mixed", seconds=SECONDS)
    run.wait(timeout=SECONDS + 90)
    run.report(f"Mixed workload, {SECONDS} s (gunicorn, PostgreSQL, Redis; production settings)")
    stats = run.stats()
    total = stats["Aggregated"]
    assert total.failures == 0, run.failures()
    assert stats["check-in"].requests > 0
    assert any(name.startswith("portal ") for name in stats) and any(name.startswith("api ") for name in stats)
    # Each student checked in once and answered 201: each is recorded once, and nobody else is.
    answered = run.checked_in()
    recorded = reliability_stack.records("mixed")
    assert len(answered) >= stats["check-in"].requests  # locust's table leaves out answers after its last tick
    assert sorted(recorded) == sorted(answered)
    assert not [student for student, count in collections.Counter(recorded).items() if count > 1]
    print(f"throughput {total.rps:.1f} req/s, p50 {total.p50:.0f} ms, p95 {total.p95:.0f} ms; "
          f"check-ins {len(answered)} answered 201, {len(recorded)} recorded")  # fmt: skip
