"""bench/startup.py runs what `make run` runs, and reads the set-up's step times."""

import subprocess
import sys

from tests.support.processes import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import startup


def test_the_benchmark_runs_the_commands_of_make_run():
    # -n: print, run nothing; -o: take the venv as installed (the benchmark starts from one).
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "run", "PORT=8123"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    made = [line.split() for line in dry_run.stdout.splitlines() if line.strip()]
    expected = [[".venv/bin/python", *command[1:]] for command in startup.make_run_commands(8123)]
    assert made == expected


def test_setup_step_times_are_read_from_the_commands_output():
    output = "Demo campus: seed 2026\n[setup] migrate           1.12 s\n[setup] demo campus       1.86 s\nDone.\n"
    assert startup.setup_steps(output) == {"migrate": 1.12, "demo campus": 1.86}
