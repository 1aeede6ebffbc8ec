"""At-risk predictions over the API: scores (filtered), one student scored on demand, model versions,
scoring runs. Advisors see their advisees, registry staff everyone; reads by staff are logged."""

import structlog
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import is_registry_staff
from predictions import filters, serializers
from predictions.models import ModelVersion, RiskScore, ScoringRun
from predictions.selectors import latest_run, may_view_risk, risk_scores_visible_to
from predictions.services import scoring_run_start, student_score
from students.models import Term
from students.selectors import students_visible_to, term_current

log = structlog.get_logger(__name__)


def _require_risk_viewer(request: Request) -> None:
    if not may_view_risk(request.user):
        raise PermissionDenied("Risk scores are for advisors and registry staff.")


def _require_registrar(request: Request) -> None:
    if not is_registry_staff(request.user):
        raise PermissionDenied("Only registry staff manage models and scoring runs.")


@extend_schema(
    parameters=[
        OpenApiParameter(
            "run", int, description="A scoring run. Default: the latest run of `term`, or of the current term."
        )
    ]
)
class RiskScoreViewSet(viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = serializers.RiskScoreSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = filters.RiskScoreFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller to check
            return RiskScore.objects.none()
        _require_risk_viewer(self.request)
        scores = risk_scores_visible_to(self.request.user).order_by("-probability", "student_id")
        params = self.request.query_params
        if self.action == "list" and "run" not in params:
            term = Term.objects.filter(pk=params["term"]).first() if params.get("term", "").isdigit() else None
            run = latest_run(term or term_current()) if (term or term_current()) else None
            scores = scores.filter(run=run) if run else scores.none()
        return scores

    def list(self, request: Request, *args, **kwargs) -> Response:
        response = super().list(request, *args, **kwargs)
        results = response.data.get("results", [])
        # Whose scores this page showed (ids only), so "who has seen my score?" has an answer.
        log.info(
            "risk_scores_read", viewer=request.user.pk, rows=len(results), students=[r["student"] for r in results]
        )
        return response

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        log.info("risk_score_viewed", viewer=request.user.pk, student=response.data["student"])
        return response

    @extend_schema(
        request=serializers.StudentScoreRequestSerializer,
        responses={200: serializers.StudentScoreSerializer},
        description="Scores one student of the current term now, with the active model; nothing is stored. "
        "Refusals: 409 no_active_model / model_unusable.",
    )
    @action(detail=False, methods=["post"], url_path="score-student")
    def score_student(self, request: Request) -> Response:
        _require_risk_viewer(request)
        data = serializers.StudentScoreRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        student = students_visible_to(request.user).filter(pk=data.validated_data["student"]).first()
        user = request.user
        if student is None or not (
            is_registry_staff(user)
            or student.advisor_id == user.pk
            or (student.user_id == user.pk and may_view_risk(user))
        ):
            raise NotFound("No such student.")
        term = term_current()
        if term is None:
            raise ValidationError({"student": "There is no current term to score."})
        body = student_score(student, term=term)
        log.info("risk_score_viewed", viewer=request.user.pk, student=student.pk, on_demand=True)
        return Response(serializers.StudentScoreSerializer(body).data)


class ModelVersionViewSet(viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Trained model versions with their metrics (hold-out, cross-validation, baselines, groups)."""

    serializer_class = serializers.ModelVersionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        _require_registrar(self.request)
        return ModelVersion.objects.order_by("-trained_at", "-pk")


class ScoringRunViewSet(viewsets.GenericViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = serializers.ScoringRunSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ScoringRun.objects.none()
        _require_registrar(self.request)
        return ScoringRun.objects.select_related("model_version").order_by("-as_of", "-pk")

    @extend_schema(
        request=serializers.ScoringRunCreateSerializer,
        responses={202: serializers.ScoringRunSerializer},
        description="Starts scoring a term (default: the current one) in the background. 409 no_active_model.",
    )
    def create(self, request: Request) -> Response:
        _require_registrar(request)
        data = serializers.ScoringRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        term_id = data.validated_data.get("term")
        term = Term.objects.filter(pk=term_id).first() if term_id else term_current()
        if term is None:
            raise ValidationError({"term": "No such term."})
        run = scoring_run_start(term=term, trigger=ScoringRun.Trigger.API, actor=request.user)
        run.refresh_from_db()
        return Response(serializers.ScoringRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
