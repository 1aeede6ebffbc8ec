"""Does the active model load? Asked by readiness (campusiq.core.health), registered in
PredictionsConfig.ready()."""

from predictions.models import ModelVersion
from predictions.services import scoring_model_load


def active_model_loads() -> tuple[str, str]:
    """Not required for readiness: without it scoring refuses or falls back, and pages and check-ins work."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is None:
        return "none", "no model is active yet"
    loaded = scoring_model_load()
    if loaded.version.pk != active.pk:
        return "degraded", f"active {active.name} refused; scoring uses {loaded.version.name}"
    return "ok", active.name
