"""Scoring benchmark: 100,000 students with about 20 attendance records and 6 grades each (built with
COPY, untimed), a model trained on past terms (untimed), then one scoring run end to end (timed):
features from PostgreSQL, predict, explain, bulk write. Production settings.

    python bench/scoring.py [STUDENTS]
"""

import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import harness

TARGET_SECONDS = 60
TARGET_RSS_MB = 1536


def main() -> int:
    students = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    urls = harness.services()
    database = harness.fresh_database(urls["DATABASE_URL"], "campusiq_bench_scoring")
    env = harness.production_env(database, urls["REDIS_URL"], MODEL_ARTIFACT_ROOT=str(harness.OUT / "models"))
    harness.log(f"migrating and building {students:,} students with COPY (untimed)")
    harness.manage(env, "migrate", "--noinput", "-v0")
    harness.python(env, harness.ROOT / "bench" / "scoring_data.py", str(students))
    harness.log("training the model on the past terms (untimed)")
    harness.manage(env, "train_risk_model")
    harness.log("scoring every active student of the current term (timed)")
    out = harness.OUT / "scoring_results.json"
    harness.python(env, harness.ROOT / "bench" / "scoring_run.py", str(out))
    r = json.loads(out.read_text())
    t = r["timings"]
    print(f"\nScoring benchmark ({r['students']:,} students; production settings, PostgreSQL; 2-core machine)")
    print(f"  end to end        {r['seconds']:7.1f} s   ({r['students'] / r['seconds']:,.0f} students/s)")
    for part in ("features", "predict", "explain", "write"):
        print(f"    {part:<15} {t[part]:7.2f} s   ({t[part] / r['seconds']:.0%})")
    print(f"  bare predict_proba on the same matrix {r['bare_predict_proba']:.3f} s")
    print(f"  peak RSS of the scoring process {r['peak_rss_mb']:.0f} MB")
    print(f"  bands: {r['bands']}")
    checks = [
        (f"end to end {r['seconds']:.1f} s < {TARGET_SECONDS} s", r["seconds"] < TARGET_SECONDS),
        (f"peak RSS {r['peak_rss_mb']:.0f} MB < {TARGET_RSS_MB} MB", r["peak_rss_mb"] < TARGET_RSS_MB),
        (f"every student scored ({r['students']:,})", r["students"] == students),
    ]
    return harness.verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
