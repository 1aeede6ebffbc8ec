from django.core.management.base import BaseCommand, CommandError

from predictions.models import ScoringRun
from predictions.services import ScoringRefused, scoring_run_create, scoring_run_execute
from students.models import Term
from students.selectors import term_current


class Command(BaseCommand):
    help = "Scores every active student of a term (default: the current one) with the active model, now."

    def add_arguments(self, parser):
        parser.add_argument("--term", help="Term name (default: the current term)")
        parser.add_argument(
            "--skip-without-model", action="store_true", help="Say so and succeed when no model is active (make run)."
        )

    def handle(self, *args, term: str | None = None, skip_without_model: bool = False, **options):
        chosen = Term.objects.filter(name=term).first() if term else term_current()
        if chosen is None:
            raise CommandError(f"No term named {term!r}." if term else "There is no term to score.")
        try:
            run = scoring_run_execute(scoring_run_create(term=chosen, trigger=ScoringRun.Trigger.STAFF))
        except ScoringRefused as refusal:
            if skip_without_model and refusal.code == "no_active_model":
                self.stdout.write(f"Not scored: {refusal.detail}")
                return
            raise CommandError(refusal.detail) from refusal
        bands = {band: run.scores.filter(band=band).count() for band in ("low", "medium", "high")}
        self.stdout.write(
            f"Scored {run.students_scored} students of {chosen.name} with {run.model_version.name}: "
            + ", ".join(f"{band} {count}" for band, count in bands.items())
            + f". Seconds: {run.timings}"
        )
