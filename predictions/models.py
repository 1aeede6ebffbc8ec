"""At-risk predictions: trained model versions, scoring runs, scores, and what advisors did about them.

docs/PREDICTIONS.md explains the features, the training and its honest evaluation, and the bands.
"""

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q

from campusiq.core.models import TimeStampedModel
from students.models import Student, Term


def artifact_storage():
    """Where model artifacts live: shared by web and workers in production (settings.STORAGES["models"])."""
    return storages["models"]


class ModelVersion(TimeStampedModel):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=64, unique=True, help_text="e.g. risk-2026-11-25-1")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    status_reason = models.TextField(blank=True, help_text="Why it is (not) active: the activation gate's verdict.")
    artifact = models.FileField(storage=artifact_storage, upload_to="risk-models/", max_length=255)
    artifact_sha256 = models.CharField(max_length=64)
    feature_names = models.JSONField(default=list)
    feature_schema_version = models.PositiveSmallIntegerField()
    training_data_sha256 = models.CharField(max_length=64, help_text="Hash of the training matrix and labels.")
    training_terms = models.JSONField(default=list, help_text="Names of the terms trained on.")
    holdout_term = models.CharField(max_length=64, blank=True)
    threshold = models.FloatField(help_text="At-risk threshold chosen on the training folds (F1).")
    metrics = models.JSONField(default=dict, help_text="Hold-out, cross-validation, baselines, groups.")
    trained_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-trained_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="active"),
                name="model_version_one_active",
                violation_error_message="Only one model version can be active.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["candidate", "active", "retired"]),
                name="model_version_status_valid",
                violation_error_message="Unknown model status.",
            ),
            models.CheckConstraint(
                condition=Q(threshold__gte=0) & Q(threshold__lte=1),
                name="model_version_threshold_probability",
                violation_error_message="The threshold is a probability between 0 and 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class ScoringRun(TimeStampedModel):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Nightly schedule"
        STAFF = "staff", "Staff (admin)"
        API = "api", "API"

    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="scoring_runs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="runs")
    run_date = models.DateField(help_text="The night a scheduled run belongs to: one per term and night.")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    as_of = models.DateTimeField(help_text="Features computed from what was known at this moment.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    students_scored = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds: features, predict, explain, write.")
    error = models.TextField(blank=True)
    feature_medians = models.JSONField(default=dict, blank=True, help_text="Cohort medians, quoted in explanations.")
    digest_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-as_of", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["term", "run_date"],
                condition=Q(trigger="schedule"),
                name="scoring_run_one_scheduled_per_night",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["running", "succeeded", "failed"]), name="scoring_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=["schedule", "staff", "api"]), name="scoring_run_trigger_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Scoring {self.term} {self.as_of:%Y-%m-%d %H:%M} ({self.status})"


class RiskScore(models.Model):
    class Band(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="scores")
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="risk_scores")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    probability = models.FloatField()
    band = models.CharField(max_length=8, choices=Band.choices)
    factors = models.JSONField(default=list, help_text="Top factors: feature, value, contribution, text.")
    scored_at = models.DateTimeField()

    class Meta:
        ordering = ["-probability", "student_id"]
        indexes = [models.Index(fields=["term", "student", "-scored_at"], name="risk_score_latest")]
        constraints = [
            models.UniqueConstraint(fields=["run", "student"], name="risk_score_one_per_run_student"),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1),
                name="risk_score_probability",
                violation_error_message="A probability is between 0 and 1.",
            ),
            models.CheckConstraint(condition=Q(band__in=["low", "medium", "high"]), name="risk_score_band_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.probability:.2f} ({self.band})"


class Intervention(TimeStampedModel):
    class Kind(models.TextChoices):
        CONTACTED = "contacted", "Contacted"
        MEETING = "meeting", "Meeting"
        REFERRAL = "referral", "Referral"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="interventions")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="+")
    risk_score = models.ForeignKey(
        RiskScore, null=True, blank=True, on_delete=models.SET_NULL, related_name="interventions"
    )
    advisor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    note = models.TextField(blank=True)
    # Open until the advisor (or registry staff) closes it, saying how it ended.
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["closed_at", "created_at"], name="intervention_open")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["contacted", "meeting", "referral"]),
                name="intervention_kind_valid",
                violation_error_message="Unknown kind of intervention.",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=False) | Q(outcome=""),
                name="intervention_outcome_only_when_closed",
                violation_error_message="Only a closed intervention has an outcome.",
            ),
        ]

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.student_id} ({self.created_at:%Y-%m-%d})"


class FlagFeedback(TimeStampedModel):
    """An advisor's verdict on a flag, kept as history (a later verdict does not erase an earlier one)."""

    class Verdict(models.TextChoices):
        USEFUL = "useful", "Useful"
        NOT_USEFUL = "not_useful", "Not useful"
        INCORRECT = "incorrect", "Incorrectly flagged"

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="+")
    term = models.ForeignKey(Term, on_delete=models.PROTECT, related_name="+")
    risk_score = models.ForeignKey(RiskScore, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    advisor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "flag feedback"
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict__in=["useful", "not_useful", "incorrect"]),
                name="flag_feedback_verdict_valid",
                violation_error_message="Unknown verdict.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} on {self.risk_score_id}"
