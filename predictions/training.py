"""Training the at-risk model on the campus's own history, and measuring it honestly.

- Examples: every student with a TermOutcome in a past term who was in the term at its cut-off
  (settings.PREDICTIONS_TRAINING_AS_OF_WEEKS into it): the population scoring scores. Students who had
  left by then, or had not yet enrolled, are excluded and counted. Label 1 = failed or withdrew.
- Time-based hold-out: train on the older terms, test on the newest past term.
- Nested stratified k-fold on the training terms: the cross-validation figures use a threshold
  chosen inside each fold; the model's threshold is chosen (F1) on out-of-fold probabilities of all
  the training terms, never on the hold-out.
- Feature families (attendance, grades, ...) absent or constant in the training data are recorded;
  the rule baselines (attendance-only, grades-only, previous term's outcome) count only where their
  family exists in the data.
- Activation gate: a paired bootstrap interval of the hold-out PR-AUC difference, candidate minus each
  available baseline, must lie above settings.PREDICTIONS_ACTIVATION_MARGIN; and the candidate must
  not be worse than the active model on the same students. Otherwise it stays a candidate, with why.
"""

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.models import User
from campusiq.core.errors import ServiceError
from campusiq.core.outbox import enqueue
from campusiq.core.services import audit_log_write
from predictions.features import (
    FEATURE_FAMILIES,
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    FEATURES_BY_NAME,
    term_features,
    term_labels,
    term_population,
    training_cutoff,
)
from predictions.models import ModelVersion
from predictions.registry import ArtifactRefused, artifact_bytes, artifact_save, model_load
from students.models import Enrollment, Student, Term

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
    excluded: dict[str, int] = field(default_factory=dict)  # why students with an outcome were left out


# Why a student with an outcome is not a training example (the keys of LabelledTerm.excluded).
EXCLUSIONS = {
    "left_before_cutoff": "their enrolments had ended by the cut-off",
    "enrolled_after_cutoff": "they enrolled after the cut-off",
    "not_enrolled": "no enrolment in the term",
}


def labelled_terms(*, today=None) -> list[LabelledTerm]:
    """Every past term with outcomes, oldest first, each seen as of its cut-off, holding the students
    who were in the term then (scoring's population: the early leavers would be easy positives)."""
    today = today or timezone.localdate()
    result = []
    for term in Term.objects.filter(end_date__lt=today).order_by("start_date", "pk"):
        labels = term_labels(term)
        if not labels:
            continue
        cutoff = training_cutoff(term, settings.PREDICTIONS_TRAINING_AS_OF_WEEKS)
        population = term_population(term, cutoff)
        ids = sorted(student for student in labels if student in population)
        excluded = _exclusions(term, timezone.localdate(cutoff), set(labels) - population)
        matrix = term_features(term, cutoff, student_ids=ids)
        y = np.array([labels[s] for s in matrix.student_ids.tolist()], dtype=np.int64)
        result.append(LabelledTerm(term, matrix.student_ids, matrix.values, y, excluded))
    return [t for t in result if len(t.y)]


def _exclusions(term: Term, day, students: set[int]) -> dict[str, int]:
    first_enrolled = dict(
        Enrollment.objects.filter(section__term=term, student_id__in=students)
        .values("student_id")
        .annotate(first=Min("enrolled_on"))
        .values_list("student_id", "first")
    )
    counts = Counter(
        "not_enrolled"
        if first_enrolled.get(student) is None
        else "enrolled_after_cutoff"
        if first_enrolled[student] > day
        else "left_before_cutoff"
        for student in students
    )
    return dict(sorted(counts.items()))


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
    nested = risk_pipeline.nested_out_of_fold_predictions(build, X_train, y_train, folds=folds, seed=SEED)
    model = build().fit(X_train, y_train)
    holdout_p = model.predict_proba(holdout.X)[:, 1]
    families = feature_families(X_train)
    majority_p = np.full(len(holdout.y), y_train.mean())
    rules = rule_baselines_fit(X_train, y_train, families)
    weights = risk_pipeline.bootstrap_weights(len(holdout.y), resamples=settings.PREDICTIONS_GATE_RESAMPLES, seed=SEED)
    baselines = {"majority_class": risk_pipeline.classification_metrics(holdout.y, majority_p, 0.5)}
    for rule in rules:
        baselines[rule.key] = {
            "rule": rule.description,
            "available": rule.unavailable is None,
            "unavailable_reason": rule.unavailable,
            **risk_pipeline.classification_metrics(holdout.y, rule.scores(holdout.X), rule.threshold),
        }
    gate = gate_evaluate(holdout, holdout_p, rules, weights=weights)
    metrics = {
        "holdout": risk_pipeline.classification_metrics(holdout.y, holdout_p, threshold),
        "cross_validation": {
            "folds": folds,
            "nested": True,
            "fold_thresholds": nested.thresholds[0].tolist(),
            **risk_pipeline.classification_metrics(y_train, nested.probabilities[0], None, at_risk=nested.at_risk[0]),
        },
        "baselines": baselines,
        "features": families,
        "gate": gate,
        "groups": holdout_groups(holdout, holdout_p, threshold, weights=weights),
        "group_min_size": settings.PREDICTIONS_GROUP_MIN_SIZE,
        "examples": {"train": len(y_train), "holdout": len(holdout.y)},
        "excluded": {
            "train": dict(sum((Counter(t.excluded) for t in train), Counter())),
            "holdout": holdout.excluded,
        },
        "seconds": round(time.monotonic() - started, 2),
    }
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
        status_reason=gate["verdict"],
    )
    artifact_save(version, artifact_bytes(model))
    with transaction.atomic():
        version.save()
        audit_log_write(actor=actor, verb="model.trained", target=version, changes={"status": [None, "candidate"]})
        if gate["passes"]:
            version = model_version_activate(version, actor=actor, reason=gate["verdict"])
    log.info(
        "risk_model_trained",
        model_version=version.name,
        status=version.status,
        holdout_pr_auc=metrics["holdout"]["pr_auc"],
    )
    return version


# --- Training asked for by staff (the admin's button) ---------------------------------------------

# One training at a time, and what became of the last one, in the shared cache: a request that finds
# one queued or running is refused; a worker that died leaves a state that expires.
TRAINING_STATE_KEY = "predictions:training:state"
TRAINING_PENDING_SECONDS = 2 * 3600  # longer than the task's time limit
TRAINING_RESULT_SECONDS = 7 * 86400
TRAINING_PENDING = ("queued", "running")


def training_state() -> dict | None:
    """The latest staff-requested training: {"state": queued|running|finished|refused|failed, ...}."""
    return cache.get(TRAINING_STATE_KEY)


def _training_state_set(state: str, **about) -> None:
    timeout = TRAINING_PENDING_SECONDS if state in TRAINING_PENDING else TRAINING_RESULT_SECONDS
    cache.set(TRAINING_STATE_KEY, {"state": state, "at": timezone.now().isoformat(), **about}, timeout)


def training_request(*, actor: User) -> None:
    """Queues a training of the at-risk model (task predictions.train_risk_model) for staff; refused
    while one is queued or running. The version it registers is audited in the actor's name."""
    current = training_state()
    if current and current["state"] in TRAINING_PENDING:
        raise TrainingRefused(
            "training_in_progress", "A training is already queued or running; its result will show on this page."
        )
    _training_state_set("queued", requested_by=actor.pk)
    enqueue("predictions.train_risk_model", actor_id=actor.pk)


def training_run(*, actor_id: int | None = None) -> ModelVersion | None:
    """The task's body: trains, and records what became of it for the page that asked."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    _training_state_set("running", requested_by=actor_id)
    try:
        version = risk_model_train(actor=actor)
    except TrainingRefused as refusal:
        _training_state_set("refused", requested_by=actor_id, detail=refusal.detail)
        log.warning("risk_model_training_refused", code=refusal.code, detail=refusal.detail)
        return None
    except Exception:
        _training_state_set("failed", requested_by=actor_id, detail="Training failed; the worker's log says why.")
        raise
    _training_state_set(
        "finished", requested_by=actor_id, version=version.name, status=version.status, detail=version.status_reason
    )
    return version


def gate_evaluate(holdout: LabelledTerm, probabilities: np.ndarray, rules: list, *, weights: np.ndarray) -> dict:
    """The activation decision on the hold-out: the paired bootstrap interval of PR-AUC difference,
    candidate minus each available rule, must lie above the margin (a single hold-out PR-AUC is too
    noisy to compare), and candidate minus the active model must not lie wholly below zero."""
    from predictions import pipeline as risk_pipeline

    confidence, margin = settings.PREDICTIONS_GATE_CONFIDENCE, settings.PREDICTIONS_ACTIVATION_MARGIN
    one_class = len(set(holdout.y.tolist())) < 2
    compared, reasons = {}, []
    for rule in rules:
        if rule.unavailable is not None or one_class:
            continue
        result = risk_pipeline.paired_pr_auc_difference(
            holdout.y, probabilities, rule.scores(holdout.X), weights=weights, confidence=confidence
        )
        result["passes"] = result["lower"] is not None and result["lower"] > margin
        compared[rule.key] = result
        if not result["passes"]:
            reasons.append(f"not clearly better than the {rule.name} ({_interval_text(result, confidence)})")
    if one_class:
        reasons.append("the hold-out term has one class only: nothing can be compared")
    elif not compared:
        reasons.append("no baseline exists in the data (every rule's features are missing or constant)")
    active = None if one_class else _active_comparison(holdout, probabilities, weights=weights, confidence=confidence)
    if active is not None and active.get("passes") is False:
        reasons.append(f"worse than the active model {active['version']} ({_interval_text(active, confidence)})")
    passes = not reasons
    # The best baseline is the one the candidate beats by least.
    best = min(compared, key=lambda key: compared[key]["difference"], default=None)
    if passes:
        verdict = "Activated: hold-out PR-AUC above every available baseline beyond noise"
        verdict += (
            f" (weakest margin, over the {_rule_name(rules, best)}: {_interval_text(compared[best], confidence)})"
        )
        if active is not None and "passes" in active:
            verdict += f"; not worse than {active['version']} ({_interval_text(active, confidence)})"
        verdict += "."
    else:
        verdict = "Kept as a candidate: " + "; ".join(reasons) + "."
    unavailable = [f"{rule.name}: {rule.unavailable}" for rule in rules if rule.unavailable is not None]
    if unavailable:
        verdict += " Not used for gating: " + "; ".join(unavailable) + "."
    return {
        "passes": passes,
        "verdict": verdict,
        "confidence": confidence,
        "margin": margin,
        "resamples": len(weights),
        "seed": SEED,
        "best_baseline": best,
        "baselines": compared,
        "active": active,
    }


def _active_comparison(holdout: LabelledTerm, probabilities: np.ndarray, *, weights, confidence) -> dict | None:
    """Candidate minus the active model on the same hold-out students; None when no model is active."""
    from predictions import pipeline as risk_pipeline

    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is None:
        return None
    try:
        loaded = model_load(active)
    except ArtifactRefused as refusal:
        # It cannot score either (scoring falls back past it), so it cannot hold a better model back.
        return {"version": active.name, "not_compared": str(refusal)}
    own_columns = [FEATURE_NAMES.index(name) for name in active.feature_names]  # it may predate a feature
    active_p = loaded.pipeline.predict_proba(holdout.X[:, own_columns])[:, 1]
    result = risk_pipeline.paired_pr_auc_difference(
        holdout.y, probabilities, active_p, weights=weights, confidence=confidence
    )
    result["version"] = active.name
    result["passes"] = result["upper"] is not None and result["upper"] >= 0
    return result


def _interval_text(result: dict, confidence: float) -> str:
    if result.get("lower") is None:
        return f"difference {result['difference']:+.3f}, no interval"
    return (
        f"difference {result['difference']:+.3f}, {confidence:.0%} interval "
        f"[{result['lower']:+.3f}, {result['upper']:+.3f}]"
    )


def _rule_name(rules: list, key: str | None) -> str:
    return next((rule.name for rule in rules if rule.key == key), "")


def feature_families(X: np.ndarray) -> dict:
    """Per family of features: each feature "missing" (unknown for everyone), "constant" (one value for
    everyone) or "varies", and the family's status: "varies" if any of its features does, else
    "missing" if any is missing (the zero-filled counts beside them say nothing), else "constant"."""
    result = {}
    for family, names in FEATURE_FAMILIES.items():
        features = {}
        for name in names:
            column = X[:, FEATURE_NAMES.index(name)]
            observed = column[~np.isnan(column)]
            # Unknown for some students only is itself a signal (the pipeline's missing indicator).
            distinct = np.unique(observed).size + int(observed.size < column.size)
            features[name] = "missing" if not observed.size else "constant" if distinct < 2 else "varies"
        statuses = set(features.values())
        status = "varies" if "varies" in statuses else "missing" if "missing" in statuses else "constant"
        result[family] = {"status": status, "features": features}
    return result


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
class RuleBaseline:
    """A one-feature rule the model must beat: its score is the feature (or 1 - it, where low is risky),
    unknown values filled with the training median; at risk at or above `threshold`."""

    key: str
    name: str
    feature: str
    low_is_risky: bool
    fill: float
    threshold: float
    unavailable: str | None  # why the training data cannot support this rule, or None

    def scores(self, X: np.ndarray) -> np.ndarray:
        value = X[:, FEATURE_NAMES.index(self.feature)]
        filled = np.where(np.isnan(value), self.fill, value)
        return 1.0 - filled if self.low_is_risky else filled

    @property
    def description(self) -> str:
        if not self.low_is_risky:
            return "at risk when the previous term ended failed or withdrawn"
        return f"at risk when {FEATURES_BY_NAME[self.feature].label} < {1.0 - self.threshold:.2f}"


# (key, name, feature, family, low is risky)
RULES = [
    ("attendance_only", "attendance-only rule", "attendance_rate", "attendance", True),
    ("grades_only", "grades-only rule", "assessment_average", "grades", True),
    ("previous_outcome", "previous-term-outcome rule", "previous_term_at_risk", "history", False),
]


def rule_baselines_fit(X: np.ndarray, y: np.ndarray, families: dict) -> list[RuleBaseline]:
    """The rules on the training data; a rule whose family is missing or constant there is unavailable
    (with no attendance the attendance rule is a constant: its PR-AUC is the prevalence, any model beats it)."""
    from predictions import pipeline as risk_pipeline

    rules = []
    for key, name, feature, family, low_is_risky in RULES:
        value = X[:, FEATURE_NAMES.index(feature)]
        observed = value[~np.isnan(value)]
        fill = float(np.median(observed)) if observed.size and low_is_risky else 0.0
        rule = RuleBaseline(key, name, feature, low_is_risky, fill, 0.5, None)
        scores = rule.scores(X)
        status = families[family]["status"]
        unavailable = None
        if status != "varies":
            unavailable = f"the {family} features are {status} in the training data"
        elif np.unique(scores).size < 2:
            unavailable = f"{FEATURES_BY_NAME[feature].label} is the same for every training student"
        # The previous-outcome rule is the flag itself (at risk iff 1); the others cut where F1 is best.
        threshold = risk_pipeline.threshold_choose(y, scores, objective="f1") if low_is_risky else 0.5
        rules.append(RuleBaseline(key, name, feature, low_is_risky, fill, threshold, unavailable))
    return rules


def holdout_groups(holdout: LabelledTerm, probabilities: np.ndarray, threshold: float, *, weights) -> dict:
    """The hold-out metrics per department and per program, with bootstrap intervals of PR-AUC and
    recall, so gaps between groups show with their noise. Groups under PREDICTIONS_GROUP_MIN_SIZE
    students are reported as too few: their figures would be noise."""
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
        groups[kind] = {}
        for key in sorted(set(keys.tolist())):
            members = keys == key
            if members.sum() < settings.PREDICTIONS_GROUP_MIN_SIZE:
                groups[kind][key] = {"n": int(members.sum()), "too_few": True}
                continue
            y, p = holdout.y[members], probabilities[members]
            # The hold-out's own resamples, restricted to the group: each group's n varies with the draw.
            groups[kind][key] = {
                **risk_pipeline.classification_metrics(y, p, threshold),
                "intervals": risk_pipeline.metric_intervals(
                    y, p, p >= threshold, weights=weights[:, members], confidence=settings.PREDICTIONS_GATE_CONFIDENCE
                ),
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
