"""Start-up benchmark: how long a developer waits. `manage.py check` (the median of several runs: every
manage.py command pays at least this), and `make run` from an installed venv to the first page on a
fresh SQLite database in a temporary directory (the set-up's steps, then runserver with its reloader,
until / answers), the server then stopped. The development settings, as `make run` uses; no services.

    python bench/startup.py [CHECK_RUNS]
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import harness

TARGET_CHECK_SECONDS = 1.0
TARGET_FIRST_PAGE_SECONDS = 30.0
FIRST_PAGE_TIMEOUT = 300
PYTHON = str(harness.BIN / "python")


def make_run_commands(port: int) -> list[list[str]]:
    """What `make run PORT=port` runs once the venv is installed (tests/test_bench_startup.py checks this
    against the Makefile). The benchmark runs them itself: make would rebuild a venv it thinks stale."""
    return [[PYTHON, "manage.py", "dev_setup"], [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"]]


def dev_env(workdir: Path) -> dict[str, str]:
    """The development settings on a database, model store and media folder of their own under workdir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.dev",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MODEL_ARTIFACT_ROOT": str(workdir / "models"),
        "DJANGO_MEDIA_ROOT": str(workdir / "media"),
        "PYTHONUNBUFFERED": "1",
    }


def check_seconds(env: dict[str, str], runs: int) -> list[float]:
    """Wall time of `manage.py check`, once untimed first (bytecode compiled, files in the page cache)."""
    times = []
    for run in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([PYTHON, "manage.py", "check"], env=env, cwd=harness.ROOT, check=True, capture_output=True)
        if run:
            times.append(time.perf_counter() - started)
    return times


def setup_steps(output: str) -> dict[str, float]:
    """The per-step times dev_setup prints ("[setup] migrate   1.12 s")."""
    return {m[1].strip(): float(m[2]) for m in re.finditer(r"^\[setup\] (.+?)\s+([\d.]+) s$", output, re.M)}


def page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def make_run_to_first_page(env: dict[str, str], port: int) -> dict:
    """Seconds from the start of the set-up to / answering 200, the set-up's own share and its steps."""
    setup, serve = make_run_commands(port)
    started = time.perf_counter()
    done = subprocess.run(setup, env=env, cwd=harness.ROOT, check=True, capture_output=True, text=True)
    setup_seconds = time.perf_counter() - started
    # Its own session: stopping it stops the reloader's child too.
    server = subprocess.Popen(
        serve, env=env, cwd=harness.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        while not page_answers(f"http://127.0.0.1:{port}/"):
            if server.poll() is not None:
                raise RuntimeError(f"runserver exited with code {server.returncode}")
            if time.perf_counter() - started > FIRST_PAGE_TIMEOUT:
                raise RuntimeError(f"no first page within {FIRST_PAGE_TIMEOUT} s")
            time.sleep(0.05)
        total = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    return {"total": total, "setup": setup_seconds, "steps": setup_steps(done.stdout)}


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory(prefix="campusiq-startup-") as tmp:
        env = dev_env(Path(tmp))
        harness.log(f"manage.py check, {runs} runs after one untimed")
        checks = check_seconds(env, runs)
        harness.log("make run's commands on a fresh SQLite database, up to the first page")
        from tests.support.processes import free_port

        run = make_run_to_first_page(env, free_port())
    check = statistics.median(checks)
    print(f"\nStart-up (development settings, SQLite; {os.cpu_count()}-core machine)")
    print(f"  manage.py check     {check:6.2f} s median  (min {min(checks):.2f}, max {max(checks):.2f})")
    print(f"  make run to the first page {run['total']:6.2f} s")
    print(f"    set-up process    {run['setup']:6.2f} s")
    for step, seconds in run["steps"].items():
        print(f"      {step:<15} {seconds:6.2f} s")
    print(f"    runserver to the first page {run['total'] - run['setup']:6.2f} s")
    checks_passed = [
        (f"manage.py check {check:.2f} s <= {TARGET_CHECK_SECONDS} s", check <= TARGET_CHECK_SECONDS),
        (
            f"make run to the first page {run['total']:.1f} s <= {TARGET_FIRST_PAGE_SECONDS:.0f} s",
            run["total"] <= TARGET_FIRST_PAGE_SECONDS,
        ),
    ]
    return harness.verdicts(checks_passed)


if __name__ == "__main__":
    sys.exit(main())
