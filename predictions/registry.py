"""Model artifacts: written by CampusIQ, loaded only after their sha256 matches the registry.

Unpickling a file runs code, so a file is unpickled only if its bytes hash to what CampusIQ recorded
when it wrote them. A missing, changed or schema-mismatched artifact is refused with a logged error;
scoring then falls back to the previous active version (predictions.services).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from django.core.files.base import ContentFile

from predictions.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from predictions.models import ModelVersion, artifact_storage

if TYPE_CHECKING:  # type hints only: scikit-learn (and joblib, below) load where a model is saved or loaded
    from sklearn.pipeline import Pipeline

log = structlog.get_logger(__name__)


class ArtifactRefused(Exception):
    """The artifact of a model version cannot be used; the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    version: ModelVersion
    pipeline: Pipeline


def artifact_bytes(pipeline: Pipeline) -> bytes:
    import joblib

    buffer = io.BytesIO()
    from predictions.pipeline import risk_pipeline_feature_names

    names = risk_pipeline_feature_names(pipeline)
    joblib.dump({"pipeline": pipeline, "feature_names": names, "schema": FEATURE_SCHEMA_VERSION}, buffer)
    return buffer.getvalue()


def artifact_save(version: ModelVersion, content: bytes) -> None:
    """Stores the artifact under the version's name and records its sha256 (the caller saves `version`)."""
    version.artifact_sha256 = hashlib.sha256(content).hexdigest()
    version.artifact.save(f"{version.name}.joblib", ContentFile(content), save=False)


# Loaded pipelines by (version id, sha256): a worker or web process unpickles each version once.
_loaded: dict[tuple[int, str], Pipeline] = {}


def model_load(version: ModelVersion) -> LoadedModel:
    """The version's pipeline, or ArtifactRefused (logged) if the artifact is missing, altered or stale."""
    key = (version.pk, version.artifact_sha256)
    if key in _loaded:
        return LoadedModel(version, _loaded[key])
    try:
        pipeline = _verified_pipeline(version)
    except ArtifactRefused as refusal:
        log.error("model_artifact_refused", model_version=version.name, reason=str(refusal))
        raise
    _loaded[key] = pipeline
    return LoadedModel(version, pipeline)


def _verified_pipeline(version: ModelVersion) -> Pipeline:
    # A model trained before a feature was added still scores, on its own features; one trained on a
    # feature this CampusIQ no longer computes, or on another schema, cannot.
    unknown = sorted(set(version.feature_names) - set(FEATURE_NAMES))
    if version.feature_schema_version != FEATURE_SCHEMA_VERSION or unknown or not version.feature_names:
        raise ArtifactRefused(
            f"trained on feature schema {version.feature_schema_version}"
            + (f" with features this CampusIQ does not compute ({', '.join(unknown)})" if unknown else "")
            + f"; this CampusIQ computes schema {FEATURE_SCHEMA_VERSION}: retrain"
        )
    storage = artifact_storage()
    if not version.artifact.name or not storage.exists(version.artifact.name):
        raise ArtifactRefused(f"artifact file {version.artifact.name or '(none)'} is missing")
    with storage.open(version.artifact.name, "rb") as handle:
        content = handle.read()
    digest = hashlib.sha256(content).hexdigest()
    if digest != version.artifact_sha256:
        raise ArtifactRefused(
            f"artifact sha256 {digest[:12]}... does not match the registry's {version.artifact_sha256[:12]}..."
        )
    import joblib

    # Unpickling runs code: only these bytes, verified against the hash recorded when CampusIQ wrote them.
    payload = joblib.load(io.BytesIO(content))
    if payload.get("schema") != FEATURE_SCHEMA_VERSION or payload.get("feature_names") != version.feature_names:
        raise ArtifactRefused("artifact's feature schema does not match its registry entry")
    return payload["pipeline"]
