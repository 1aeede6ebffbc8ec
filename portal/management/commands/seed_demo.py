import time

from django.core.management.base import BaseCommand, CommandError

from portal.demo import demo_data_seed
from students.demo import SIZES, DemoDataConflict


class Command(BaseCommand):
    help = (
        "Loads the demo campus: catalogue, people, three closed terms of history and the current term "
        "(idempotent; docs/DEMO_DATA.md). Demo data only: never run against production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--size", choices=sorted(SIZES), default="small")
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, size: str, seed: int, **options):
        started = time.monotonic()
        try:
            report = demo_data_seed(size=size, seed=seed)
        except DemoDataConflict as error:
            raise CommandError(str(error)) from error
        if report.skipped:
            self.stdout.write(self.style.WARNING(report.skipped))
        self.stdout.write(f"Demo campus: seed {seed}, {size}, current term {report.current_term}")
        self.stdout.write("  " + ", ".join(f"{name} {count}" for name, count in report.counts.items()))
        for term, by_kind in report.outcomes.items():
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(by_kind.items()))
            self.stdout.write(f"  {term}: {kinds} (at risk {report.at_risk_rate(term):.0%})")
        self.stdout.write("")
        self.stdout.write(f"{'role':<10} {'email':<28} password")
        for account in report.accounts:
            self.stdout.write(f"{account.role.value:<10} {account.email:<28} {account.password}")
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
