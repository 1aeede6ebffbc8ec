"""The Django admin of at-risk predictions, for registry staff.

Model versions are listed with their hold-out metrics side by side (the attendance-only baseline
and the gate's lower bound over the best available baseline beside them); staff promote one (the
active one is retired) or retire the active one (rolling back to the version active before it) —
both audited. Staff start a training (the model versions list's button: one at a time, its outcome
shown there) and scoring runs here too. Scores, interventions and feedback are written by
the scoring and the advisors' portal: read-only.
"""

import structlog
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from campusiq.core.admin import ReadOnlyAdmin, ReasonActionForm
from campusiq.core.errors import ServiceError
from predictions.model_report import figure, model_version_report
from predictions.models import FlagFeedback, Intervention, ModelVersion, RiskScore, ScoringRun
from predictions.services import scoring_run_start
from predictions.training import model_version_activate, model_version_retire, training_request, training_state
from students.selectors import term_current

log = structlog.get_logger(__name__)


def _metric_raw(version: ModelVersion, *path: str):
    value = version.metrics
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _metric(version: ModelVersion, *path: str):
    return figure(_metric_raw(version, *path))


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    action_form = ReasonActionForm
    list_display = [
        "name", "status", "trained_at", "holdout_term", "holdout_roc_auc", "holdout_pr_auc",
        "attendance_rule_pr_auc", "gate_lower_bound", "holdout_brier", "holdout_recall", "holdout_precision",
        "threshold_rounded",
    ]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["name", "status_reason"]
    readonly_fields = [
        "name", "status", "status_reason", "trained_at", "activated_at", "training_terms", "holdout_term",
        "threshold_rounded", "feature_schema_version", "feature_names", "artifact", "artifact_sha256",
        "training_data_sha256", "metrics_report",
    ]  # fmt: skip
    fields = readonly_fields
    actions = ["promote", "retire"]
    import_export_change_list_template = "admin/predictions/modelversion/change_list.html"

    class Media:
        css = {"all": ["css/admin-model-version.css"]}

    def get_urls(self):
        train = self.admin_site.admin_view(self.train_view)
        return [path("train/", train, name="predictions_modelversion_train"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"training": training_state(), **(extra_context or {})})

    def train_view(self, request):
        """POST only (the list's button, with its CSRF token): trains a model version in the background."""
        changelist = reverse("admin:predictions_modelversion_changelist")
        if request.method != "POST" or not request.user.has_perm("predictions.change_modelversion"):
            self.message_user(request, "Start a training with the button on this page.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        try:
            training_request(actor=request.user)
        except ServiceError as error:
            self.message_user(request, f"Nothing was started: {error.detail}", messages.ERROR)
            return HttpResponseRedirect(changelist)
        self.message_user(request, "Training started. Its outcome shows above the list when it is done (minutes).")
        return HttpResponseRedirect(changelist)

    @admin.display(description="threshold")
    def threshold_rounded(self, version):
        return figure(version.threshold)

    @admin.display(description="metrics")
    def metrics_report(self, version):
        # Tables and a calibration chart instead of the raw JSON (its 17-digit floats read as noise).
        return render_to_string("admin/predictions/modelversion/metrics.html", model_version_report(version.metrics))

    def has_change_permission(self, request, obj=None) -> bool:
        # The actions change status through the services; the form itself stays read-only (no save button).
        return obj is None and request.user.has_perm("predictions.change_modelversion")

    @admin.display(description="ROC-AUC")
    def holdout_roc_auc(self, version):
        return _metric(version, "holdout", "roc_auc")

    @admin.display(description="PR-AUC")
    def holdout_pr_auc(self, version):
        return _metric(version, "holdout", "pr_auc")

    @admin.display(description="rule PR-AUC")
    def attendance_rule_pr_auc(self, version):
        return _metric(version, "baselines", "attendance_only", "pr_auc")

    @admin.display(description="gate lower bound")
    def gate_lower_bound(self, version):
        best = _metric_raw(version, "gate", "best_baseline")
        return _metric(version, "gate", "baselines", best, "lower")

    @admin.display(description="Brier")
    def holdout_brier(self, version):
        return _metric(version, "holdout", "brier")

    @admin.display(description="recall")
    def holdout_recall(self, version):
        return _metric(version, "holdout", "recall")

    @admin.display(description="precision")
    def holdout_precision(self, version):
        return _metric(version, "holdout", "precision")

    @admin.action(description="Promote the selected version (the active one is retired)", permissions=["change"])
    def promote(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return
        version = model_version_activate(queryset.get(), actor=request.user, reason=request.POST.get("reason", ""))
        self.message_user(request, f"{version.name} is now the active model.", messages.SUCCESS)

    @admin.action(description="Retire the selected versions (the active one rolls back)", permissions=["change"])
    def retire(self, request, queryset):
        for version in queryset:
            model_version_retire(version, actor=request.user, reason=request.POST.get("reason", ""))
        active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
        self.message_user(
            request,
            f"Retired {queryset.count()}. Active now: {active.name if active else 'none (scoring will refuse)'}.",
            messages.SUCCESS,
        )


@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnlyAdmin):
    list_display = ["as_of", "term", "model_version", "trigger", "status", "students_scored", "total_seconds"]
    list_filter = ["status", "trigger", "term"]
    list_select_related = ("term", "model_version")
    readonly_fields = [
        "term", "model_version", "run_date", "trigger", "requested_by", "status", "as_of", "started_at",
        "finished_at", "students_scored", "timings", "error", "feature_medians", "digest_sent_at",
    ]  # fmt: skip
    fields = readonly_fields
    import_export_change_list_template = "admin/predictions/scoringrun/change_list.html"

    @admin.display(description="seconds")
    def total_seconds(self, run):
        return run.timings.get("total", "—")

    def get_urls(self):
        start = self.admin_site.admin_view(self.start_view)
        return [path("start/", start, name="predictions_scoringrun_start"), *super().get_urls()]

    def start_view(self, request):
        """POST only (the changelist's button, with its CSRF token): scores the current term now."""
        changelist = reverse("admin:predictions_scoringrun_changelist")
        if request.method != "POST" or not request.user.has_perm("predictions.change_scoringrun"):
            self.message_user(request, "Start a run with the button on this page.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        term = term_current()
        if term is None:
            self.message_user(request, "There is no current term to score.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        try:
            run = scoring_run_start(term=term, trigger=ScoringRun.Trigger.STAFF, actor=request.user)
        except ServiceError as error:
            self.message_user(request, f"Nothing was started: {error.detail}", messages.ERROR)
            return HttpResponseRedirect(changelist)
        self.message_user(request, format_html("Scoring of {} started (run {}).", term.name, run.pk))
        return HttpResponseRedirect(changelist)


@admin.register(RiskScore)
class RiskScoreAdmin(ReadOnlyAdmin):
    list_display = ["student", "term", "probability", "band", "model_version", "scored_at"]
    list_filter = ["band", "term", "model_version"]
    search_fields = ["student__student_number"]
    list_select_related = ("student__user", "term", "model_version")

    # Staff reads of scores are logged here as on the portal and the API (ids only).
    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            students = [score.student_id for score in changelist.result_list]
            log.info("risk_scores_listed", viewer=request.user.pk, via="admin", students=students)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        score = getattr(response, "context_data", {}).get("original")
        if score is not None:
            log.info("risk_score_viewed", viewer=request.user.pk, student=score.student_id, via="admin")
        return response


@admin.register(Intervention)
class InterventionAdmin(ReadOnlyAdmin):
    list_display = ["student", "term", "kind", "advisor", "created_at", "closed_at"]
    list_filter = ["kind", "term"]
    search_fields = ["student__student_number", "note", "outcome"]
    list_select_related = ("student__user", "term", "advisor")


@admin.register(FlagFeedback)
class FlagFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["student", "term", "verdict", "advisor", "created_at"]
    list_filter = ["verdict", "term"]
    search_fields = ["student__student_number", "note"]
    list_select_related = ("student__user", "term", "advisor")
