import structlog
from celery import shared_task

from predictions import services, training
from predictions.models import ScoringRun
from students.selectors import term_current

log = structlog.get_logger(__name__)


@shared_task(name="predictions.train_risk_model", soft_time_limit=1800, time_limit=1900)
def train_risk_model(actor_id: int | None = None) -> str:
    """Trains and registers a model version (activated only if it passes the gate); a campus without
    enough history is a recorded refusal, not a task error."""
    version = training.training_run(actor_id=actor_id)
    return f"{version.name} ({version.status})" if version else "refused"


@shared_task(name="predictions.score_current_term", soft_time_limit=1800, time_limit=1900)
def score_current_term() -> int:
    """Tonight's scoring of the current term: one run per night, redone (not duplicated) if redelivered."""
    term = term_current()
    if term is None:
        log.info("scoring_skipped", reason="no term")
        return 0
    try:
        run = services.scoring_run_create(term=term, trigger=ScoringRun.Trigger.SCHEDULE)
    except services.ScoringRefused as refusal:
        log.error("scoring_skipped", reason=str(refusal))
        return 0
    run = services.scoring_run_execute(run)
    services.advisor_digests_send(run)
    return run.students_scored


@shared_task(name="predictions.scoring_run_execute", soft_time_limit=1800, time_limit=1900)
def scoring_run_execute(run_id: int) -> int:
    """A run started by staff (admin or API)."""
    run = services.scoring_run_execute(ScoringRun.objects.get(pk=run_id))
    services.advisor_digests_send(run)
    return run.students_scored
