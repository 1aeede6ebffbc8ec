"""Does the active model load? Asked by readiness (campusiq.core.health) and after a restore
(campusiq.core.backups); both registered in PredictionsConfig.ready()."""

from campusiq.core.backups import BackupError, Verified
from predictions.models import ModelVersion
from predictions.registry import ArtifactRefused, model_load
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


def restored_model_loads() -> Verified:
    """The restored active model's artifact loads (no fallback: the restore is wrong if it does not)."""
    version = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if version is None:
        return Verified("no active model", {"active_model": None})
    try:
        model_load(version)
    except ArtifactRefused as refusal:
        raise BackupError(f"restored, but the active model {version.name} does not load: {refusal}") from refusal
    return Verified(f"active model {version.name}: its artifact loads", {"active_model": version.name})
