"""Taking attendance for a 500-student section: the marking page, a bulk save of every student's mark
(through the page and through the service alone), the marks JSON and the roster grid, each timed many
times in one process under the production settings and PostgreSQL (Django's stack and middleware,
without gunicorn). Prints p50/p95.

    python bench/marking.py [STUDENTS] [--on-demo SIZE]

With --on-demo the section is built inside a demo campus of that size (`seed_demo --size large`: 20,000
students and 4 million attendance records around it, seeded untimed first), so the grid's queries run
against tables of a real university's size.
"""

import argparse
import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import harness

# Targets: the page and a save of the whole class each within a second for the lecturer.
TARGET_PAGE_P95_MS = 1000
TARGET_SAVE_P95_MS = 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("students", nargs="?", type=int, default=500)
    parser.add_argument("--on-demo", choices=["small", "large"])
    options = parser.parse_args()
    students = options.students
    urls = harness.services()
    database = harness.fresh_database(urls["DATABASE_URL"], "campusiq_bench_marking")
    env = harness.production_env(database, urls["REDIS_URL"])
    harness.log("migrating (untimed)")
    harness.manage(env, "migrate", "--noinput", "-v0")
    harness.manage(env, "collectstatic", "--noinput", "-v0")
    if options.on_demo:
        harness.log(f"seeding the {options.on_demo} demo campus around it (untimed; minutes for large)")
        harness.manage(env, "seed_demo", "--size", options.on_demo)
    harness.log(f"building a section of {students} students with 12 past sessions (untimed), then timing")
    out = harness.OUT / "marking_results.json"
    harness.python(env, harness.ROOT / "bench" / "marking_run.py", str(students), str(out))
    r = json.loads(out.read_text())
    around = f", inside the {options.on_demo} demo campus" if options.on_demo else ""
    print(f"\nMarking benchmark ({r['students']} students{around}; production settings, PostgreSQL; 2-core machine)")
    for name, figures in r["timings"].items():
        print(f"  {name:<28} p50 {figures['p50']:7.1f} ms   p95 {figures['p95']:7.1f} ms   ({figures['n']} runs)")
    t = r["timings"]
    page, save = t["take page"]["p95"], t["bulk save (page)"]["p95"]
    checks = [
        (f"take page p95 {page:.0f} ms < {TARGET_PAGE_P95_MS} ms", page < TARGET_PAGE_P95_MS),
        (f"bulk save p95 {save:.0f} ms < {TARGET_SAVE_P95_MS} ms", save < TARGET_SAVE_P95_MS),
        (f"every student marked by each save ({r['students']})", r["every_student_marked"]),
    ]
    return harness.verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
