"""API v1 for the campus domain. Thin: validate input, call one service or selector, serialize.

Reads are scoped by students/selectors.py: a caller never sees, nor can filter for, rows outside
their scope (such ids answer 404). Writes: registrars the catalogue, students, enrollments, grades
and outcomes; lecturers the grades of their own sections' assessments.
"""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.permissions import IsRegistrarOrReadOnly, TokenScopeAllows
from campusiq.core.pagination import SyncCursorPagination
from students import filters, serializers, services
from students.models import Assessment, Course, Department, Grade, Program, Section, Term
from students.selectors import (
    assessment_gradable_by,
    enrollments_visible_to,
    grades_visible_to,
    students_visible_to,
    term_outcomes_visible_to,
)

READ_AND_REGISTRAR_WRITES = [IsAuthenticated, TokenScopeAllows, IsRegistrarOrReadOnly]


def _require_registrar(request: Request) -> None:
    if not is_registry_staff(request.user):
        raise PermissionDenied("Only registry staff may do this.")


class CatalogueViewSet(viewsets.ModelViewSet):
    """Catalogue rows: everyone signed in reads; registrars write through catalogue_record_save."""

    permission_classes = READ_AND_REGISTRAR_WRITES
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        serializer.instance = self._save(serializer, self.get_serializer_class().Meta.model())

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        services.catalogue_record_delete(record=instance, actor=self.request.user)

    def _save(self, serializer, record):
        data = dict(serializer.validated_data)
        lecturers = data.pop("lecturers", None)
        for name, value in data.items():
            setattr(record, name, value)
        return services.catalogue_record_save(record=record, actor=self.request.user, lecturers=lecturers)


class DepartmentViewSet(CatalogueViewSet):
    queryset = Department.objects.all()
    serializer_class = serializers.DepartmentSerializer
    filterset_class = filters.DepartmentFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "updated_at"]


class ProgramViewSet(CatalogueViewSet):
    queryset = Program.objects.all()
    serializer_class = serializers.ProgramSerializer
    filterset_class = filters.ProgramFilter
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "updated_at"]


class CourseViewSet(CatalogueViewSet):
    queryset = Course.objects.all()
    serializer_class = serializers.CourseSerializer
    filterset_class = filters.CourseFilter
    search_fields = ["code", "title"]
    ordering_fields = ["code", "title", "credits", "updated_at"]


class TermViewSet(CatalogueViewSet):
    queryset = Term.objects.all()
    serializer_class = serializers.TermSerializer
    filterset_class = filters.TermFilter
    search_fields = ["name"]
    ordering_fields = ["start_date", "name", "updated_at"]


class SectionViewSet(CatalogueViewSet):
    queryset = Section.objects.select_related("course", "term").prefetch_related(
        Prefetch("lecturers", queryset=User.objects.only("id"))
    )
    serializer_class = serializers.SectionSerializer
    filterset_class = filters.SectionFilter
    search_fields = ["course__code", "course__title", "code"]
    ordering_fields = ["course__code", "term__start_date", "code", "updated_at"]


class AssessmentViewSet(CatalogueViewSet):
    queryset = Assessment.objects.all()
    serializer_class = serializers.AssessmentSerializer
    filterset_class = filters.AssessmentFilter
    search_fields = ["name"]
    ordering_fields = ["due_date", "name", "updated_at"]

    def _save(self, serializer, record):
        for name, value in serializer.validated_data.items():
            setattr(record, name, value)
        return services.assessment_save(assessment=record, actor=self.request.user)


class ScopedViewSet(viewsets.GenericViewSet):
    """People's data, scoped to the caller, synced by cursor over (updated_at, id)."""

    pagination_class = SyncCursorPagination
    ordering_fields: list[str] = []


class StudentViewSet(ScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    # No DELETE: a student's record ends with a status change, never a deletion.
    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = serializers.StudentSerializer
    filterset_class = filters.StudentFilter
    search_fields = ["student_number", "user__email", "user__first_name", "user__last_name"]

    def get_queryset(self):
        return students_visible_to(self.request.user)

    @extend_schema(request=serializers.StudentCreateSerializer, responses={201: serializers.StudentSerializer})
    def create(self, request: Request) -> Response:
        _require_registrar(request)
        data = serializers.StudentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        student = services.student_create(**data.validated_data, actor=request.user)
        return Response(serializers.StudentSerializer(student).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.StudentUpdateSerializer, responses={200: serializers.StudentSerializer})
    def partial_update(self, request: Request, pk=None) -> Response:
        student = self.get_object()
        _require_registrar(request)
        data = serializers.StudentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        student = services.student_update(student=student, actor=request.user, **data.validated_data)
        return Response(serializers.StudentSerializer(student).data)


class EnrollmentViewSet(ScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    http_method_names = ["get", "post", "head", "options"]
    serializer_class = serializers.EnrollmentSerializer
    filterset_class = filters.EnrollmentFilter
    search_fields = ["student__student_number", "section__course__code"]

    def get_queryset(self):
        return enrollments_visible_to(self.request.user)

    @extend_schema(request=serializers.EnrollmentCreateSerializer, responses={201: serializers.EnrollmentSerializer})
    def create(self, request: Request) -> Response:
        _require_registrar(request)
        data = serializers.EnrollmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrollment = services.enrollment_create(**data.validated_data, actor=request.user)
        return Response(serializers.EnrollmentSerializer(enrollment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.EnrollmentEndSerializer, responses={200: serializers.EnrollmentSerializer})
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk=None) -> Response:
        """Drop (up to the add/drop deadline) or withdraw (after it)."""
        enrollment = self.get_object()
        _require_registrar(request)
        data = serializers.EnrollmentEndSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrollment = services.enrollment_end(
            enrollment=enrollment, on=data.validated_data.get("on"), actor=request.user
        )
        return Response(serializers.EnrollmentSerializer(enrollment).data)


class GradeViewSet(ScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = serializers.GradeSerializer
    filterset_class = filters.GradeFilter
    search_fields = ["student__student_number", "assessment__name"]

    def get_queryset(self):
        return grades_visible_to(self.request.user)

    def _require_grader(self, assessment: Assessment) -> None:
        if not assessment_gradable_by(user=self.request.user, assessment=assessment):
            raise PermissionDenied("Only the section's lecturers and registry staff may grade this assessment.")

    @extend_schema(request=serializers.GradeWriteSerializer, responses={201: serializers.GradeSerializer})
    def create(self, request: Request) -> Response:
        """Enter a grade (or change it: the same student and assessment again). Audited."""
        data = serializers.GradeWriteSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        self._require_grader(data.validated_data["assessment"])
        grade = services.grade_record(**data.validated_data, actor=request.user)
        return Response(serializers.GradeSerializer(grade).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.GradeChangeSerializer, responses={200: serializers.GradeSerializer})
    def partial_update(self, request: Request, pk=None) -> Response:
        grade: Grade = self.get_object()
        self._require_grader(grade.assessment)
        data = serializers.GradeChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grade = services.grade_record(
            student=grade.student, assessment=grade.assessment, actor=request.user, **data.validated_data
        )
        return Response(serializers.GradeSerializer(grade).data)


class TermOutcomeViewSet(ScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    http_method_names = ["get", "post", "head", "options"]
    serializer_class = serializers.TermOutcomeSerializer
    filterset_class = filters.TermOutcomeFilter

    def get_queryset(self):
        return term_outcomes_visible_to(self.request.user)

    @extend_schema(request=serializers.TermOutcomeSerializer, responses={201: serializers.TermOutcomeSerializer})
    def create(self, request: Request) -> Response:
        """Set a student's outcome for a term by hand (staff source; never overwritten by term closing)."""
        _require_registrar(request)
        data = serializers.TermOutcomeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        outcome = services.term_outcome_set(
            student=values["student"], term=values["term"], outcome=values["outcome"], note=values.get("note", ""),
            actor=request.user,
        )  # fmt: skip
        return Response(serializers.TermOutcomeSerializer(outcome).data, status=status.HTTP_201_CREATED)
