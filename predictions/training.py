"""Training the at-risk model on the campus's own history, and measuring it honestly.

- Examples: every student with a TermOutcome in a past term, features as of that term's cut-off
  (settings.PREDICTIONS_TRAINING_AS_OF_WEEKS into it); label 1 = failed or withdrew.
- Time-based hold-out: train on the older terms, test on the newest past term.
- Stratified k-fold on the training terms gives out-of-fold probabilities; the at-risk threshold
  is chosen on them (F1) and never on the hold-out.
- Two baselines on the same split: the majority class and an attendance-only rule.
- Activation gate: the model goes live only if its hold-out PR-AUC beats the attendance-only rule
  by settings.PREDICTIONS_ACTIVATION_MARGIN; otherwise it is kept as a candidate with the reason.
"""

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from campusiq.core.errors import ServiceError
from campusiq.core.services import audit_log_write
from predictions.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, term_features, term_labels, training_cutoff
from predictions.models import ModelVersion
from predictions.registry import artifact_bytes, artifact_save
from students.models import Student, Term

# predictions.pipeline (scikit-learn, ~0.6 s) is imported in the functions that train, not here: this
# module is imported whenever Django starts (admin, tasks), and most processes never train.
log = structlog.get_logger(__name__)
SEED = 0


class TrainingRefused(ServiceError):
    status = 409


@dataclass
class LabelledTerm:
    term: Term
    student_ids: np.ndarray
    X: np.ndarray
    y: np.ndarray


def labelled_terms(*, today=None) -> list[LabelledTerm]:
    """Every past term with outcomes, oldest first, each seen as of its cut-off."""
    today = today or timezone.localdate()
    result = []
    for term in Term.objects.filter(end_date__lt=today).order_by("start_date", "pk"):
        labels = term_labels(term)
        if not labels:
            continue
        ids = sorted(labels)
        matrix = term_features(term, training_cutoff(term, settings.PREDICTIONS_TRAINING_AS_OF_WEEKS), student_ids=ids)
        y = np.array([labels[s] for s in matrix.student_ids.tolist()], dtype=np.int64)
        result.append(LabelledTerm(term, matrix.student_ids, matrix.values, y))
    return result


def history_problem(terms: list[LabelledTerm]) -> str | None:
    """Why this history cannot train a model, or None."""
    outcomes = sum(len(t.y) for t in terms)
    if outcomes < settings.PREDICTIONS_MIN_OUTCOMES:
        return (
            f"Too little labelled history: {outcomes} term outcomes, at least "
            f"{settings.PREDICTIONS_MIN_OUTCOMES} are needed. Record outcomes of past terms (close them) first."
        )
    if len(terms) < 2:
        return "Training needs at least two past terms with outcomes: older ones to learn from, the newest to test on."
    train_y = np.concatenate([t.y for t in terms[:-1]])
    if len(set(np.concatenate([train_y, terms[-1].y]).tolist())) < 2 or len(set(train_y.tolist())) < 2:
        return "The labelled history has one class only (nobody, or everybody, at risk): nothing to learn."
    return None


def risk_model_train(*, actor: User | None = None, today=None) -> ModelVersion:
    """Trains, evaluates and registers a model version; activates it if it passes the gate."""
    from predictions import pipeline as risk_pipeline

    started = time.monotonic()
    terms = labelled_terms(today=today)
    problem = history_problem(terms)
    if problem:
        raise TrainingRefused("not_enough_history", problem)
    train, holdout = terms[:-1], terms[-1]
    X_train = np.vstack([t.X for t in train])
    y_train = np.concatenate([t.y for t in train])
    folds = max(2, min(settings.PREDICTIONS_CV_FOLDS, int(np.bincount(y_train).min())))

    def build():
        return risk_pipeline.risk_pipeline_build(FEATURE_NAMES, random_state=SEED)

    out_of_fold = risk_pipeline.out_of_fold_probabilities(build, X_train, y_train, folds=folds, seed=SEED)[0]
    threshold = risk_pipeline.threshold_choose(y_train, out_of_fold, objective="f1")
    model = build().fit(X_train, y_train)
    holdout_p = model.predict_proba(holdout.X)[:, 1]
    rule = attendance_rule_fit(X_train, y_train)
    majority_p = np.full(len(holdout.y), y_train.mean())
    metrics = {
        "holdout": risk_pipeline.classification_metrics(holdout.y, holdout_p, threshold),
        "cross_validation": {"folds": folds, **risk_pipeline.classification_metrics(y_train, out_of_fold, threshold)},
        "baselines": {
            "majority_class": risk_pipeline.classification_metrics(holdout.y, majority_p, 0.5),
            "attendance_only": {
                "rule": f"at risk when attendance this term < {rule.cutoff:.2f}",
                **risk_pipeline.classification_metrics(holdout.y, rule.scores(holdout.X), rule.threshold),
            },
        },
        "groups": holdout_groups(holdout, holdout_p, threshold),
        "examples": {"train": len(y_train), "holdout": len(holdout.y)},
        "seconds": round(time.monotonic() - started, 2),
    }
    model_pr, rule_pr = metrics["holdout"]["pr_auc"], metrics["baselines"]["attendance_only"]["pr_auc"]
    margin = settings.PREDICTIONS_ACTIVATION_MARGIN
    passes = model_pr is not None and rule_pr is not None and model_pr >= rule_pr + margin
    verdict = (
        f"Hold-out PR-AUC {_fmt(model_pr)} vs attendance-only rule {_fmt(rule_pr)} "
        f"({'beats' if passes else 'does not beat'} it by the required {margin:.2f})."
    )
    trained_at = timezone.now()
    version = ModelVersion(
        name=_version_name(trained_at),
        feature_names=FEATURE_NAMES,
        feature_schema_version=FEATURE_SCHEMA_VERSION,
        training_data_sha256=_data_hash(terms),
        training_terms=[t.term.name for t in train],
        holdout_term=holdout.term.name,
        threshold=threshold,
        metrics=metrics,
        trained_at=trained_at,
        status_reason=verdict,
    )
    artifact_save(version, artifact_bytes(model))
    with transaction.atomic():
        version.save()
        audit_log_write(actor=actor, verb="model.trained", target=version, changes={"status": [None, "candidate"]})
        if passes:
            version = model_version_activate(version, actor=actor, reason=verdict)
    log.info("risk_model_trained", model_version=version.name, status=version.status, holdout_pr_auc=model_pr)
    return version


@transaction.atomic
def model_version_activate(version: ModelVersion, *, actor: User | None, reason: str = "") -> ModelVersion:
    """Makes `version` the active model; the one active before is retired. Audited."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        return version
    for previous in ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE):
        previous.status = ModelVersion.Status.RETIRED
        previous.save(update_fields=["status", "updated_at"])
        audit_log_write(actor=actor, verb="model.retired", target=previous, changes={"status": ["active", "retired"]})
    before = version.status
    version.status, version.activated_at = ModelVersion.Status.ACTIVE, timezone.now()
    version.save(update_fields=["status", "activated_at", "updated_at"])
    audit_log_write(
        actor=actor, verb="model.activated", target=version, changes={"status": [before, "active"]}, reason=reason
    )
    return version


@transaction.atomic
def model_version_retire(version: ModelVersion, *, actor: User | None, reason: str = "") -> ModelVersion:
    """Takes a version out of service. Retiring the active one rolls back to the version active before it."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ModelVersion.Status.RETIRED:
        return version
    was_active = version.status == ModelVersion.Status.ACTIVE
    before = version.status
    version.status = ModelVersion.Status.RETIRED
    version.save(update_fields=["status", "updated_at"])
    audit_log_write(
        actor=actor, verb="model.retired", target=version, changes={"status": [before, "retired"]}, reason=reason
    )
    if was_active:
        previous = (
            ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
            .exclude(pk=version.pk)
            .order_by("-activated_at")
            .first()
        )
        if previous is not None:
            model_version_activate(previous, actor=actor, reason=f"Rolled back from {version.name}.")
    return version


@dataclass(frozen=True)
class AttendanceRule:
    """The simple baseline: at risk when this term's attendance rate is below a cut-off."""

    cutoff: float
    fill: float  # a student with no rate yet is given the training median

    def scores(self, X: np.ndarray) -> np.ndarray:
        rate = X[:, FEATURE_NAMES.index("attendance_rate")]
        return 1.0 - np.where(np.isnan(rate), self.fill, rate)

    @property
    def threshold(self) -> float:
        return 1.0 - self.cutoff


def attendance_rule_fit(X: np.ndarray, y: np.ndarray) -> AttendanceRule:
    from predictions import pipeline as risk_pipeline

    rate = X[:, FEATURE_NAMES.index("attendance_rate")]
    fill = float(np.nanmedian(rate)) if np.isfinite(rate).any() else 1.0
    scores = 1.0 - np.where(np.isnan(rate), fill, rate)
    threshold = risk_pipeline.threshold_choose(y, scores, objective="f1")
    return AttendanceRule(cutoff=1.0 - threshold, fill=fill)


def holdout_groups(holdout: LabelledTerm, probabilities: np.ndarray, threshold: float) -> dict:
    """The hold-out metrics per department and per program, so gaps between groups show."""
    from predictions import pipeline as risk_pipeline

    students = Student.objects.filter(pk__in=holdout.student_ids.tolist()).values_list(
        "pk", "program__code", "program__department__code"
    )
    program, department = {}, {}
    for pk, program_code, department_code in students:
        program[pk], department[pk] = program_code, department_code
    groups = {}
    for kind, of in (("department", department), ("program", program)):
        keys = np.array([of.get(s, "") for s in holdout.student_ids.tolist()])
        groups[kind] = {
            key: risk_pipeline.classification_metrics(holdout.y[keys == key], probabilities[keys == key], threshold)
            for key in sorted(set(keys.tolist()))
        }
    return groups


def _data_hash(terms: list[LabelledTerm]) -> str:
    digest = hashlib.sha256()
    for t in terms:
        digest.update(t.term.name.encode())
        digest.update(t.student_ids.tobytes())
        digest.update(np.nan_to_num(t.X, nan=-1e300).tobytes())
        digest.update(t.y.tobytes())
    return digest.hexdigest()


def _version_name(at) -> str:
    stem = f"risk-{timezone.localtime(at):%Y%m%d-%H%M%S}"
    taken = ModelVersion.objects.filter(name__startswith=stem).count()
    return stem if not taken else f"{stem}-{taken + 1}"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
