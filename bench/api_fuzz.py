"""API fuzzing, the long run: schemathesis against /api/schema/ as a student, a lecturer and a registrar,
per operation and in linked sequences (the stateful phase), with many more examples than CI's
(tests/security/test_api_fuzz.py, which this runs), on
the test PostgreSQL. In process, under the test settings: the fuzzer needs the factories' campus and the
test database, and what it looks for (5xx, answers off the schema) does not depend on gunicorn.

    python bench/api_fuzz.py [EXAMPLES]     # examples per operation, mode and id variant (default 40)
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness

DEFAULT_EXAMPLES = 40
PHASE_TESTS = (
    "test_every_operation_answers_as_its_schema_says",
    "test_sequences_of_linked_operations_answer_as_the_schema_says",
)
# About 240 calls per example per role: 40 examples is roughly 10,000 cases per role.
TARGET_SECONDS = 45 * 60


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_EXAMPLES
    urls = harness.services()
    database = urls["DATABASE_URL"].rsplit("/", 1)[0] + "/campusiq_bench_fuzz"  # pytest-django adds test_
    report_file = harness.OUT / "api_fuzz.jsonl"
    harness.OUT.mkdir(parents=True, exist_ok=True)
    report_file.unlink(missing_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))},
        "DATABASE_URL": database,
        "CAMPUSIQ_FUZZ_EXAMPLES": str(examples),
        "CAMPUSIQ_FUZZ_REPORT": str(report_file),
    }
    harness.log(f"schemathesis, {examples} examples per operation, mode and id variant, then stateful; three roles")
    started = time.perf_counter()
    tests = [f"tests/security/test_api_fuzz.py::{name}" for name in PHASE_TESTS]
    pytest = [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", "--create-db", "--no-cov"]
    result = subprocess.run(pytest, env=env, cwd=harness.ROOT, check=False)
    seconds = time.perf_counter() - started
    reports = [json.loads(line) for line in report_file.read_text().splitlines()] if report_file.exists() else []

    print(f"\nAPI fuzzing ({examples} examples; test settings, PostgreSQL, in process; 2-core machine)")
    for r in reports:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(r["statuses"].items()))
        operations = len(r["operations"])
        linked = f", {r['linked_cases']:,} along {len(r['links'])} links" if r["phase"] == "stateful" else ""
        print(f"  {r['role']:<10} {r['phase']:<14} {r['cases']:7,} cases{linked} over {operations} operations")
        print(f"  {'':<25} in {r['seconds']:6.1f} s; {statuses}")
        for failure in r["failures"]:
            print(f"  {'':<25} FAILURE {failure['operation']}: {failure['check']} ({failure['status']})")
    phases = {(r["role"], r["phase"]) for r in reports}
    checks = [
        (f"both phases ran for all three roles ({len(phases)} of 6)", len(phases) == 6),
        ("no 5xx, every answer as the schema says", result.returncode == 0 and not any(r["failures"] for r in reports)),
        (f"{seconds:.0f} s < {TARGET_SECONDS} s", seconds < TARGET_SECONDS),
    ]
    return harness.verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
