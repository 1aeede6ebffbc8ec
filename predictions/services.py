"""Scoring students with the active model, explaining each score, and the advisors' follow-up."""

import datetime
import time
from dataclasses import dataclass

import numpy as np
import structlog
from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import timezone

from accounts.access import is_registry_staff
from accounts.models import User
from campusiq.core.errors import ServiceError
from campusiq.core.outbox import enqueue
from campusiq.core.services import audit_log_write
from predictions.features import (
    FEATURE_NAMES,
    FEATURES_BY_NAME,
    FeatureMatrix,
    term_features,
    term_population,
)
from predictions.metrics import SCORING_RUN_SECONDS, STUDENTS_SCORED
from predictions.models import FlagFeedback, Intervention, ModelVersion, RiskScore, ScoringRun
from predictions.registry import ArtifactRefused, LoadedModel, model_load
from students.models import Student, Term

log = structlog.get_logger(__name__)
Band = RiskScore.Band


class ScoringRefused(ServiceError):
    status = 409


# --- Which model ------------------------------------------------------------------------------


def scoring_model_load() -> LoadedModel:
    """The active model; if its artifact is refused, the version active before it (logged), else a refusal."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is None:
        raise ScoringRefused("no_active_model", "No model is active: train one (train_risk_model) or activate one.")
    try:
        return model_load(active)
    except ArtifactRefused as refusal:
        fallback_candidates = (
            ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
            .exclude(pk=active.pk)
            .order_by("-activated_at")
        )
        for previous in fallback_candidates:
            try:
                loaded = model_load(previous)
            except ArtifactRefused:
                continue
            log.error("scoring_fell_back", refused=active.name, using=previous.name, reason=str(refusal))
            return loaded
        raise ScoringRefused(
            "model_unusable", f"The active model {active.name} cannot be used ({refusal}) and no earlier one can."
        ) from refusal


# --- Explanations -----------------------------------------------------------------------------


def band_of(probability: float) -> str:
    if probability >= settings.PREDICTIONS_BAND_HIGH:
        return Band.HIGH
    if probability >= settings.PREDICTIONS_BAND_MEDIUM:
        return Band.MEDIUM
    return Band.LOW


def feature_value_text(name: str, value: float) -> str:
    feature = FEATURES_BY_NAME[name]
    if np.isnan(value):
        return "unknown"
    if feature.kind == "rate":
        return f"{value:.0%}"
    if feature.kind == "delta":
        return f"{value * 100:+.0f} points"
    if feature.kind == "flag":
        return "yes" if value >= 0.5 else "no"
    if feature.kind == "grade":
        return f"{value:.1f}"
    return f"{value:g}"


def explanation_factors(
    contributions: np.ndarray, values: np.ndarray, medians: dict[str, float], top: int, names: list[str] = FEATURE_NAMES
) -> list:
    """The features pushing this score up most (contribution to the model's logit > 0), in plain words.
    The contributions are the model's own (predictions.pipeline.decision_contributions): with the
    intercept they add up to its decision function, so no reason is invented. `names` are the model's
    features, the order of `contributions` and `values`."""
    factors = []
    for index in np.argsort(-contributions)[:top]:
        contribution = float(contributions[index])
        if contribution <= 0:
            break
        feature = FEATURES_BY_NAME[names[index]]
        text = f"{feature.label}: {feature_value_text(feature.name, values[index])}"
        median = medians.get(feature.name)
        if median is not None:
            text += f"; campus median {feature_value_text(feature.name, median)}"
        factors.append(
            {
                "feature": feature.name,
                "value": None if np.isnan(values[index]) else round(float(values[index]), 4),
                "contribution": round(contribution, 4),
                "text": text,
            }
        )
    return factors


@dataclass
class Scored:
    student_ids: np.ndarray
    probabilities: np.ndarray
    factors: list[list]
    timings: dict[str, float]


def matrix_score(loaded: LoadedModel, matrix: FeatureMatrix, medians: dict[str, float]) -> Scored:
    # scikit-learn (~0.6 s) is imported where scoring runs, not whenever Django starts; gunicorn's master
    # imports it before forking (campusiq/wsgi.py), so workers still score at once.
    from predictions import pipeline as risk_pipeline

    started = time.perf_counter()
    matrix = matrix.restricted(loaded.version.feature_names)  # a model trained before a feature was added
    probabilities = loaded.pipeline.predict_proba(matrix.values)[:, 1]
    predicted = time.perf_counter()
    contributions, _intercept = risk_pipeline.decision_contributions(loaded.pipeline, matrix.values)
    top = settings.PREDICTIONS_TOP_FACTORS
    factors = [
        explanation_factors(contributions[i], matrix.values[i], medians, top, matrix.names) for i in range(len(matrix))
    ]
    explained = time.perf_counter()
    return Scored(
        matrix.student_ids,
        probabilities,
        factors,
        {"predict": round(predicted - started, 3), "explain": round(explained - predicted, 3)},
    )


def cohort_medians(matrix: FeatureMatrix) -> dict[str, float]:
    medians = {}
    for index, name in enumerate(matrix.names):
        column = matrix.values[:, index]
        if np.isfinite(column).any():
            medians[name] = round(float(np.nanmedian(column)), 4)
    return medians


# --- Runs -------------------------------------------------------------------------------------


def scoring_run_create(
    *, term: Term, trigger: str, actor: User | None = None, as_of: datetime.datetime | None = None
) -> ScoringRun:
    """A new run (staff, API), or tonight's scheduled run of the term — the same one if it exists already."""
    as_of = as_of or timezone.now()
    model = scoring_model_load().version
    if trigger == ScoringRun.Trigger.SCHEDULE:
        run, _ = ScoringRun.objects.get_or_create(
            term=term,
            run_date=timezone.localdate(as_of),
            trigger=trigger,
            defaults={"model_version": model, "as_of": as_of},
        )
        return run
    return ScoringRun.objects.create(
        term=term,
        run_date=timezone.localdate(as_of),
        trigger=trigger,
        requested_by=actor,
        model_version=model,
        as_of=as_of,
    )


def scoring_run_start(*, term: Term, trigger: str, actor: User) -> ScoringRun:
    """A run asked for by staff (admin, API), scored in the background; ScoringRefused without an
    active model. Enqueued at once: the run row is already committed, and eager Celery runs it here."""
    run = scoring_run_create(term=term, trigger=trigger, actor=actor)
    enqueue("predictions.scoring_run_execute", run_id=run.pk)
    return run


def scoring_run_execute(run: ScoringRun) -> ScoringRun:
    """Scores every active student of the run's term. Running it again replaces its scores (one per student)."""
    started = time.perf_counter()
    run.started_at, run.status, run.error = timezone.now(), ScoringRun.Status.RUNNING, ""
    run.save(update_fields=["started_at", "status", "error", "updated_at"])
    try:
        loaded = scoring_model_load()
        # The students in the term at the run's moment (training learns from the same population).
        in_term = term_population(run.term, run.as_of)
        students = list(
            Student.objects.filter(status=Student.Status.ACTIVE, pk__in=in_term).values_list("pk", flat=True)
        )
        matrix = term_features(run.term, run.as_of, student_ids=students)
        featured = time.perf_counter()
        medians = cohort_medians(matrix)
        scored = matrix_score(loaded, matrix, medians)
        written = _scores_replace(run, loaded.version, scored)
    except (ServiceError, ArtifactRefused) as error:
        run.status, run.error, run.finished_at = ScoringRun.Status.FAILED, str(error), timezone.now()
        run.save(update_fields=["status", "error", "finished_at", "updated_at"])
        log.error("scoring_run_failed", run=run.pk, error=str(error))
        raise
    run.model_version = loaded.version
    run.status, run.finished_at, run.students_scored = ScoringRun.Status.SUCCEEDED, timezone.now(), written
    run.feature_medians = medians
    run.timings = {
        "features": round(featured - started, 3),
        **scored.timings,
        "write": round(time.perf_counter() - started - (featured - started) - sum(scored.timings.values()), 3),
        "total": round(time.perf_counter() - started, 3),
    }
    run.save()
    SCORING_RUN_SECONDS.observe(run.timings["total"])
    STUDENTS_SCORED.inc(written)
    log.info("scoring_run_finished", run=run.pk, students=written, **run.timings)
    return run


def _scores_replace(run: ScoringRun, version: ModelVersion, scored: Scored) -> int:
    now = timezone.now()
    rows = [
        RiskScore(
            run=run,
            student_id=int(student),
            term_id=run.term_id,
            model_version=version,
            probability=float(probability),
            band=band_of(float(probability)),
            factors=factors,
            scored_at=now,
        )
        for student, probability, factors in zip(scored.student_ids, scored.probabilities, scored.factors, strict=True)
    ]
    with transaction.atomic():
        # Upsert keeps each score's id (and the feedback that points at it) when a run is repeated.
        RiskScore.objects.bulk_create(
            rows,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["run", "student"],
            update_fields=["model_version", "probability", "band", "factors", "scored_at"],
        )
        RiskScore.objects.filter(run=run).exclude(student_id__in=scored.student_ids.tolist()).delete()
    return len(rows)


def student_score(student: Student, *, term: Term, as_of: datetime.datetime | None = None) -> dict:
    """Scores one student now, without storing it (the API's on-demand score)."""
    loaded = scoring_model_load()
    matrix = term_features(term, as_of or timezone.now(), student_ids=[student.pk])
    latest = ScoringRun.objects.filter(term=term, status=ScoringRun.Status.SUCCEEDED).order_by("-as_of").first()
    scored = matrix_score(loaded, matrix, latest.feature_medians if latest else {})
    probability = float(scored.probabilities[0])
    return {
        "student": student.pk,
        "term": term.pk,
        "model_version": loaded.version.name,
        "probability": round(probability, 4),
        "band": band_of(probability),
        "factors": scored.factors[0],
    }


# --- Advisors ---------------------------------------------------------------------------------


@transaction.atomic
def intervention_record(*, advisor: User, student: Student, term: Term, kind: str, note: str, risk_score=None):
    if kind not in Intervention.Kind.values:
        raise ServiceError("invalid_kind", "Choose contacted, meeting or referral.", field="kind")
    intervention = Intervention.objects.create(
        advisor=advisor, student=student, term=term, kind=kind, note=note.strip(), risk_score=risk_score
    )
    audit_log_write(actor=advisor, verb="intervention.recorded", target=intervention, changes={"kind": [None, kind]})
    return intervention


@transaction.atomic
def intervention_close(*, intervention: Intervention, actor: User, outcome: str) -> Intervention:
    """Closes an open intervention with how it ended. Only the student's advisor or registry staff."""
    # Locked, so two closes at once cannot both pass the "still open" check.
    intervention = Intervention.objects.select_for_update().select_related("student").get(pk=intervention.pk)
    if not (is_registry_staff(actor) or intervention.student.advisor_id == actor.pk):
        raise ServiceError("not_advisor", "Only the student's advisor or registry staff may close it.", status=403)
    if intervention.closed_at is not None:
        raise ServiceError(
            "already_closed", f"This intervention was already closed on {intervention.closed_at:%d %b %Y}.", status=409
        )
    intervention.closed_at, intervention.outcome = timezone.now(), outcome.strip()
    intervention.save(update_fields=["closed_at", "outcome", "updated_at"])
    audit_log_write(
        actor=actor,
        verb="intervention.closed",
        target=intervention,
        changes={"closed_at": [None, intervention.closed_at.isoformat()], "outcome": ["", intervention.outcome]},
    )
    return intervention


def flag_feedback_record(*, advisor: User, risk_score: RiskScore, verdict: str, note: str = "") -> FlagFeedback:
    if verdict not in FlagFeedback.Verdict.values:
        raise ServiceError("invalid_verdict", "Choose useful, not useful or incorrectly flagged.", field="verdict")
    return FlagFeedback.objects.create(
        advisor=advisor,
        student_id=risk_score.student_id,
        term_id=risk_score.term_id,
        risk_score=risk_score,
        verdict=verdict,
        note=note.strip(),
    )


def advisor_digests_send(run: ScoringRun) -> int:
    """One email per advisor listing advisees who entered the high band in this run. Once per run."""
    with transaction.atomic():
        run = ScoringRun.objects.select_for_update().get(pk=run.pk)
        if run.digest_sent_at is not None or run.status != ScoringRun.Status.SUCCEEDED:
            return 0
        previous = (
            ScoringRun.objects.filter(term=run.term, status=ScoringRun.Status.SUCCEEDED, as_of__lt=run.as_of)
            .order_by("-as_of")
            .first()
        )
        was_high = set()
        if previous is not None:
            was_high = set(RiskScore.objects.filter(run=previous, band=Band.HIGH).values_list("student_id", flat=True))
        newly = (
            RiskScore.objects.filter(run=run, band=Band.HIGH, student__advisor__isnull=False)
            .exclude(student_id__in=was_high)
            .select_related("student__user", "student__advisor")
            .order_by("student__advisor_id", "-probability")
        )
        by_advisor: dict[User, list[RiskScore]] = {}
        for score in newly:
            by_advisor.setdefault(score.student.advisor, []).append(score)
        messages = [
            (
                f"CampusIQ: {len(scores)} advisee(s) newly at high risk",
                "\n".join(
                    [f"These advisees entered the high-risk band in the scoring of {run.as_of:%Y-%m-%d}:", ""]
                    + [
                        f"- {s.student.student_number} {s.student.user.get_full_name()}: {s.probability:.0%}"
                        + (f" ({s.factors[0]['text']})" if s.factors else "")
                        for s in scores
                    ]
                ),
                settings.DEFAULT_FROM_EMAIL,
                [advisor.email],
            )
            for advisor, scores in by_advisor.items()
        ]
        # Sent before the run is marked: a mail server failure rolls back and the task retries.
        if messages:
            send_mass_mail(messages, fail_silently=False)
        run.digest_sent_at = timezone.now()
        run.save(update_fields=["digest_sent_at", "updated_at"])
    return len(messages)
