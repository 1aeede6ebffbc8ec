"""Big-file import benchmark: 100,000 past grades and 500,000 past attendance marks imported through the
job engine (campusiq/core/imports.py; the Celery task run in-process) under the production settings and
PostgreSQL. Each file is also imported at a fifth of its size, in a process of its own, to show that
peak memory does not grow with the file. Prints rows/s and peak RSS.

    python bench/imports.py
"""

import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import harness

TARGET_ROWS_PER_SECOND = 5_000
# Memory flat in file size: the big file (5x the rows) may not raise the peak by more than this.
TARGET_RSS_GROWTH_MB = 64


def main() -> int:
    urls = harness.services()
    database = harness.fresh_database(urls["DATABASE_URL"], "campusiq_bench_imports")
    files = harness.OUT / "imports"
    files.mkdir(parents=True, exist_ok=True)
    env = harness.production_env(database, urls["REDIS_URL"], PRIVATE_FILE_ROOT=str(files / "private"))
    harness.log("migrating, building 10,000 students in a past term and writing the files (untimed)")
    harness.manage(env, "migrate", "--noinput", "-v0")
    script = harness.ROOT / "bench" / "imports_run.py"
    harness.python(env, script, "data", str(files))
    results = {}
    for kind in ("grades", "attendance_marks"):
        for size in ("small", "big"):
            harness.log(f"importing {kind} ({size} file) as a job (timed)")
            out = files / f"{kind}_{size}.json"
            harness.python(env, script, "run", kind, str(files / f"{kind}_{size}.csv"), str(out))
            results[(kind, size)] = json.loads(out.read_text())
    print("\nImport benchmark (production settings, PostgreSQL, one transaction per file; 2-core machine)")
    checks = []
    for kind in ("grades", "attendance_marks"):
        small, big = results[(kind, "small")], results[(kind, "big")]
        for size, r in (("small", small), ("big", big)):
            print(
                f"  {kind:<17} {size:<5} {r['rows']:>8,} rows  {r['seconds']:6.1f} s"
                f"  {r['rows_per_second']:>7,.0f} rows/s"
                f"  peak RSS {r['peak_rss_mb']:6.0f} MB (before the run {r['rss_before_mb']:.0f} MB)  {r['status']}"
            )
        growth = big["peak_rss_mb"] - small["peak_rss_mb"]
        checks += [
            (f"{kind}: {big['rows']:,} rows imported ({big['status']})", big["status"] == "succeeded"),
            (
                f"{kind}: {big['rows_per_second']:,.0f} rows/s >= {TARGET_ROWS_PER_SECOND:,}",
                big["rows_per_second"] >= TARGET_ROWS_PER_SECOND,
            ),
            (
                f"{kind}: peak RSS {growth:+.0f} MB for 5x the rows (flat: < {TARGET_RSS_GROWTH_MB} MB)",
                growth < TARGET_RSS_GROWTH_MB,
            ),
        ]
    return harness.verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
