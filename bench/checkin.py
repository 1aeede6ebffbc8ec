# ruff: noqa: E501  (report formatting reads best on one line)
"""Check-in benchmark: 500 students in a lecture hall, a stampede, and capacity beside a trivial view.

Production settings, gunicorn with deploy/gunicorn.conf.py, PostgreSQL and Redis, locust in another
process. Prints throughput, p50/p95/p99 and the record count after each phase, and the targets; then,
for comparison, the hand-written floor of bench/floor beside the trivial view of its own server.
"""

import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

LOCUSTFILE = harness.ROOT / "bench" / "locustfile_checkin.py"
HTTPS = {"X-Forwarded-Proto": "https"}


def records(database_url: str, session_id: int) -> tuple[int, int]:
    """(records in the session, students with more than one) — the second must be 0."""
    with psycopg.connect(database_url) as connection:
        total = connection.execute(
            "SELECT count(*) FROM attendance_attendancerecord WHERE session_id = %s", [session_id]
        ).fetchone()[0]
        doubled = connection.execute(
            "SELECT count(*) FROM (SELECT student_id FROM attendance_attendancerecord WHERE session_id = %s"
            " GROUP BY student_id HAVING count(*) > 1) d",
            [session_id],
        ).fetchone()[0]
    return total, doubled


def students_sign_in(host: str, keys: list[str]) -> None:
    """ "Logged in before measuring": each student's app checks its token once, as a phone does when the
    app opens (untimed). The token is then in the shared cache, as it is for anyone using the portal."""

    def check(key: str) -> int:
        request = urllib.request.Request(
            f"{host}/api/v1/auth/token/current/", headers={**HTTPS, "Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310 (our own server)
            return response.status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(check, keys))
    if any(status != 200 for status in statuses):
        sys.exit(f"signing students in failed: {sorted(set(statuses))}")


def main() -> int:
    urls = harness.services()
    database = harness.fresh_database(urls["DATABASE_URL"], "campusiq_bench_checkin")
    env = harness.production_env(database, urls["REDIS_URL"])
    harness.log("migrating and building 2,000 students with tokens (untimed)")
    harness.manage(env, "migrate", "--noinput", "-v0")
    harness.manage(env, "collectstatic", "--noinput", "-v0")
    data_file = harness.OUT / "checkin_data.json"
    harness.python(env, harness.ROOT / "bench" / "checkin_data.py", str(data_file))
    data = json.loads(data_file.read_text())
    run_env = {**env, "BENCH_DATA": str(data_file)}
    results = {}
    with harness.gunicorn(env) as host:
        harness.log("the lecture hall's 500 students open the app (untimed)")
        students_sign_in(host, data["keys"][: data["lecture_hall"]])
        harness.log("phase 1: lecture hall, 500 students over 10 s (50/s)")
        hall = harness.locust(run_env, LOCUSTFILE, "LectureHallStudent", host=host, users=500, spawn_rate=500,
                              run_time="25s", name="hall", BENCH_PHASE="hall")  # fmt: skip
        hall["records"], hall["doubled"] = records(database, data["hall"]["id"])
        results["hall"] = hall
        harness.log("phase 2: stampede, 500 students at once")
        stampede = harness.locust(run_env, LOCUSTFILE, "LectureHallStudent", host=host, users=500, spawn_rate=500,
                                  run_time="25s", name="stampede", BENCH_PHASE="stampede")  # fmt: skip
        stampede["records"], stampede["doubled"] = records(database, data["stampede"]["id"])
        results["stampede"] = stampede
        harness.log("the capacity run's 2,000 students open the app (untimed)")
        students_sign_in(host, data["keys"])
        harness.log("phase 3: capacity, closed loop, check-in then the trivial view (20 s each)")
        results["capacity"] = harness.locust(run_env, LOCUSTFILE, "CapacityStudent", host=host, users=32,
                                             spawn_rate=32, run_time="20s", name="capacity", BENCH_PHASE="capacity")  # fmt: skip
        results["trivial"] = harness.locust(run_env, LOCUSTFILE, "TrivialView", host=host, users=32, spawn_rate=32,
                                            run_time="20s", name="trivial", BENCH_PHASE="trivial")  # fmt: skip
    floor_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "floor.settings",
        "PYTHONPATH": f"{harness.ROOT / 'bench'}:{harness.ROOT}",
    }
    with harness.gunicorn(floor_env, port=8766) as host:
        harness.log("for comparison: the floor, a hand-written check-in doing the same work (bench/floor), "
                    "and the trivial view on that server (20 s each)")  # fmt: skip
        students_sign_in(host, data["keys"])
        offset = str(results["capacity"]["requests"] + 1000)
        results["floor"] = harness.locust({**run_env, **floor_env, "BENCH_DATA": str(data_file)}, LOCUSTFILE,
                                          "FloorStudent", host=host, users=32, spawn_rate=32, run_time="20s",
                                          name="floor", BENCH_PHASE="floor", BENCH_PAIR_OFFSET=offset)  # fmt: skip
        results["trivial 2"] = harness.locust(run_env, LOCUSTFILE, "TrivialView", host=host, users=32, spawn_rate=32,
                                              run_time="20s", name="trivial2", BENCH_PHASE="trivial")  # fmt: skip

    print("\nCheck-in benchmark (production settings, gunicorn, PostgreSQL, Redis; locust on the same 2-core machine)")
    print(
        f"{'phase':<10} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'records':>8}"
    )
    for name, r in results.items():
        recorded = f"{r['records']}" if "records" in r else "-"
        print(f"{name:<10} {r['requests']:>8} {r['failures']:>6} {r['rps']:>8.1f} {r['p50']:>7.0f} {r['p95']:>7.0f} "
              f"{r['p99']:>7.0f} {r['max']:>7.0f} {recorded:>8}")  # fmt: skip
    ratio = results["capacity"]["rps"] / results["trivial"]["rps"] if results["trivial"]["rps"] else 0.0
    floor_ratio = results["floor"]["rps"] / results["trivial 2"]["rps"] if results["trivial 2"]["rps"] else 0.0
    print(f"\nFloor (bench/floor, not a target): {results['floor']['rps']:.0f}/{results['trivial 2']['rps']:.0f} = "
          f"{floor_ratio:.2f}; the endpoint reaches {ratio / floor_ratio if floor_ratio else 0:.0%} of the floor's ratio")  # fmt: skip
    hall, stampede = results["hall"], results["stampede"]
    checks = [
        ("lecture hall: 500 recorded exactly once", hall["records"] == 500 and hall["doubled"] == 0 and hall["failures"] == 0),
        (f"lecture hall: p95 {hall['p95']:.0f} ms < 150 ms", hall["p95"] < 150),
        ("stampede: zero errors, 500 recorded exactly once",
         stampede["failures"] == 0 and stampede["records"] == 500 and stampede["doubled"] == 0),
        (f"stampede: last answer {stampede['max']:.0f} ms <= 5000 ms", stampede["max"] <= 5000),
        (f"capacity: check-in/trivial = {results['capacity']['rps']:.0f}/{results['trivial']['rps']:.0f} = {ratio:.2f} >= 0.5",
         ratio >= 0.5),
        ("capacity: zero errors", results["capacity"]["failures"] == 0),
    ]  # fmt: skip
    (harness.OUT / "checkin_results.json").write_text(
        json.dumps({"results": results, "ratio": ratio, "floor_ratio": floor_ratio}, indent=2)
    )
    return harness.verdicts(checks)


if __name__ == "__main__":
    sys.exit(main())
