"""Reliability benchmark: the load-and-fault scenarios of tests/reliability/ with longer runs.

The mixed workload (portal, check-in burst, API integrators) at a fixed rate for
CAMPUSIQ_RELIABILITY_SECONDS (default here 120; the tests' CI default is 20), then Redis stopped and
PostgreSQL stopped in the middle of it. Each prints throughput, p50/p95 per request type, the
outage's latencies and the recovery time; each asserts what the tests assert. The stack (its own
PostgreSQL cluster and Redis on free ports, gunicorn with deploy/gunicorn.conf.py under the
production settings) is built by tests/reliability/conftest.py. Output also in bench/out/reliability.txt.

    python bench/reliability.py [SECONDS]
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def main() -> int:
    seconds = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CAMPUSIQ_RELIABILITY_SECONDS", "120")
    OUT.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pytest", "tests/reliability", "-m", "reliability", "-s", "-q", "-p", "no:cacheprovider",
    ]  # fmt: skip
    env = {**os.environ, "CAMPUSIQ_RELIABILITY_SECONDS": str(seconds)}
    print(f"[bench] reliability scenarios, {seconds} s of load each (tests/reliability)", flush=True)
    with open(OUT / "reliability.txt", "w") as report:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            if line.startswith("{"):  # the data builder's JSON log lines
                continue
            sys.stdout.write(line)
            report.write(line)
        return process.wait()


if __name__ == "__main__":
    sys.exit(main())
