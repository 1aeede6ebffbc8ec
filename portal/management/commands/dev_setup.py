"""`make run`'s set-up in one process: each manage.py command pays Django's start-up again (about a
second), and the set-up used to start five. The steps are the commands `make migrate` and `make seed`
ran, called in order with the same options, each timed. Here, in portal, because the last steps
are predictions' own, and the portal (the top layer) may use every app below it."""

import time
from dataclasses import dataclass

from django.core.management import call_command
from django.core.management.base import BaseCommand


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    options: dict


STEPS = (
    Step("migrate", "migrate", {"interactive": False}),
    Step("cache table", "createcachetable", {}),
    Step("demo campus", "seed_demo", {"size": "small"}),
    Step("train model", "train_risk_model", {"unless_active": True}),
    Step("score students", "score_risk", {"skip_without_model": True}),
)
SCHEMA_STEPS = ("migrate", "cache table")


class Command(BaseCommand):
    help = (
        "Sets up the local database for `make run`: migrate, the rate-limit cache table, the demo campus "
        "(small; idempotent), a model unless one is active, and scores, printing each step's time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--schema-only", action="store_true", help="Only migrate and create the cache table (make migrate)."
        )

    def handle(self, *args, schema_only: bool = False, **options):
        verbosity = options["verbosity"]
        steps = [s for s in STEPS if s.name in SCHEMA_STEPS] if schema_only else STEPS
        started = time.perf_counter()
        for step in steps:
            step_started = time.perf_counter()
            # migrate lists every migration it applies: shown from -v 2 only, like the timings' details.
            quiet = step.command in {"migrate", "createcachetable"} and verbosity < 2
            call_command(step.command, verbosity=0 if quiet else verbosity, stdout=self.stdout, **step.options)
            self.stdout.write(f"[setup] {step.name:<15} {time.perf_counter() - step_started:6.2f} s")
        self.stdout.write(f"[setup] {'total':<15} {time.perf_counter() - started:6.2f} s")
