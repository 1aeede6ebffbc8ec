"""API v1 for attendance. Thin: validate input, call one service or selector, serialize.

Reads are scoped by attendance/selectors.py and students/selectors.py: what a caller may not see is
not there (404), and filters naming it return nothing. Writes on a session or its records are for the
section's lecturers and registry staff. Every POST honours Idempotency-Key (campusiq/core/idempotency.py).
"""

import datetime
from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ObjectDoesNotExist
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.roles import Role
from accounts.services import user_has_role
from attendance import filters, serializers
from attendance.errors import AttendanceErrorCode as Code
from attendance.limits import check_in_limits_enforce, person_for_user
from attendance.metrics import CHECK_IN_LATENCY
from attendance.models import AttendanceRecord, ClassSession
from attendance.qr import qr_token_verify
from attendance.selectors import attendance_rates, class_sessions_visible_to, records_visible_to
from attendance.services import (
    CheckIn,
    attendance_card_check_in,
    attendance_check_in,
    attendance_record_set,
    attendance_record_void,
    class_session_cancel,
    class_session_close,
    class_session_create,
    class_session_open,
    class_session_series_create,
)
from campusiq.core.errors import ServiceError
from campusiq.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from campusiq.core.pagination import CappedPageNumberPagination
from students.apis import ScopedViewSet
from students.models import Enrollment, Section
from students.selectors import enrollments_visible_to, section_taught_by_get, students_visible_to

Status = AttendanceRecord.Status


# --- Who may write ---------------------------------------------------------------------------


def _require_lecturer_or_registrar(user: User) -> None:
    if not (is_registry_staff(user) or user_has_role(user, Role.LECTURER)):
        raise PermissionDenied("Only lecturers and registry staff may do this.")


def _section_for_staff(user: User, section_id: int) -> Section:
    """The section, if the user teaches it or is registry staff; sections are catalogue, so naming one
    that does not exist is a field error and one taught by others is a 403."""
    try:
        return section_taught_by_get(user=user, section_id=section_id)
    except Section.DoesNotExist:
        if Section.objects.filter(pk=section_id).exists():
            raise PermissionDenied("Only the section's lecturers and registry staff may do this.") from None
        raise ValidationError({"section": "No such section."}) from None


def _require_section_staff(user: User, session: ClassSession) -> None:
    _section_for_staff(user, session.section_id)


def _evidence_context(user: User) -> dict:
    """Check-in evidence (IP, user agent, device, flags, notes) is for registry staff and the
    lecturers of the record's section; students and advisors never get it."""
    if is_registry_staff(user):
        return {"evidence_all": True}
    if user_has_role(user, Role.LECTURER):
        taught = Section.lecturers.through.objects.filter(user_id=user.pk).values_list("section_id", flat=True)
        return {"evidence_sections": set(taught)}
    return {}


def _client_ip(request: Request) -> str:
    return request.META.get("REMOTE_ADDR", "")


# --- Class sessions --------------------------------------------------------------------------

SESSION_EXAMPLE = {
    "id": 812, "section": 41, "course_code": "CS101", "term": 3, "starts_at": "2026-10-05T09:00:00+01:00",
    "ends_at": "2026-10-05T10:30:00+01:00", "room": "B2.14", "late_after_minutes": 10, "state": "open",
    "series": "0b7e6a52-8c1d-4a3f-9d55-6f1f2f6c2b10", "opened_at": "2026-10-05T08:52:10+01:00", "closed_at": None,
    "updated_at": "2026-10-05T08:52:10+01:00",
}  # fmt: skip


class ClassSessionViewSet(ScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Class sessions of the sections you teach, attend, or (advisors) your advisees attend; staff: all."""

    http_method_names = ["get", "post", "head", "options"]
    serializer_class = serializers.ClassSessionSerializer
    filterset_class = filters.ClassSessionFilter
    search_fields = ["section__course__code", "room"]

    def get_queryset(self):
        return class_sessions_visible_to(self.request.user)

    def _session_for_staff(self) -> ClassSession:
        session = self.get_object()
        _require_section_staff(self.request.user, session)
        return session

    @extend_schema(
        request=serializers.ClassSessionCreateSerializer,
        responses={201: serializers.ClassSessionSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[
            OpenApiExample(
                "One session",
                value={"section": 41, "starts_at": "2026-10-05T09:00:00+01:00", "ends_at": "2026-10-05T10:30:00+01:00",
                       "room": "B2.14", "late_after_minutes": 10},
                request_only=True,
            ),
            OpenApiExample("Created", value={**SESSION_EXAMPLE, "state": "scheduled", "series": None,
                                             "opened_at": None}, response_only=True),
        ],
    )  # fmt: skip
    @idempotent
    def create(self, request: Request) -> Response:
        """Schedule one session (the section's lecturers, registry staff). Refusal: session_time_invalid."""
        _require_lecturer_or_registrar(request.user)
        data = serializers.ClassSessionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        section = _section_for_staff(request.user, values.pop("section"))
        session = class_session_create(section=section, actor=request.user, **values)
        return Response(serializers.ClassSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ClassSessionSeriesCreateSerializer,
        responses={201: serializers.ClassSessionSeriesResultSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[
            OpenApiExample(
                "Mondays 9:00-10:30 until the term ends",
                value={"section": 41, "first_date": "2026-09-14", "start_time": "09:00", "duration_minutes": 90,
                       "room": "B2.14"},
                request_only=True,
            ),
        ],
    )  # fmt: skip
    @action(detail=False, methods=["post"])
    @idempotent
    def series(self, request: Request) -> Response:
        """Schedule a weekly series: on one or more weekdays, every N weeks, same wall-clock time, skipping the
        term's holidays."""
        _require_lecturer_or_registrar(request.user)
        data = serializers.ClassSessionSeriesCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        section = _section_for_staff(request.user, values.pop("section"))
        sessions = class_session_series_create(
            section=section,
            first_date=values["first_date"],
            start_time=values["start_time"],
            duration=datetime.timedelta(minutes=values["duration_minutes"]),
            until=values.get("until"),
            weekdays=values.get("weekdays"),
            every_weeks=values["every_weeks"],
            room=values["room"],
            late_after_minutes=values["late_after_minutes"],
            actor=request.user,
        )
        body = {"series": sessions[0].series if sessions else None, "count": len(sessions), "sessions": sessions}
        return Response(serializers.ClassSessionSeriesResultSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={200: serializers.ClassSessionSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[OpenApiExample("Opened", value=SESSION_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def open(self, request: Request, pk=None) -> Response:
        """Open check-in (from ATTENDANCE_OPEN_EARLY_MINUTES before the start until the end). Refusals:
        session_not_started, session_ended, session_closed, session_cancelled."""
        session = class_session_open(session=self._session_for_staff(), actor=request.user)
        return Response(serializers.ClassSessionSerializer(session).data)

    @extend_schema(
        request=None,
        responses={200: serializers.ClassSessionClosedSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[
            OpenApiExample(
                "Closed",
                value={
                    **SESSION_EXAMPLE,
                    "state": "closed",
                    "closed_at": "2026-10-05T10:31:02+01:00",
                    "marked_absent": 4,
                },
                response_only=True,
            )
        ],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def close(self, request: Request, pk=None) -> Response:
        """Close check-in: every enrolled student without a record is marked absent. Safe to repeat.
        Refusal: session_cancelled."""
        session = self._session_for_staff()
        marked = class_session_close(session=session, actor=request.user)
        session.refresh_from_db()
        session.marked_absent = marked
        return Response(serializers.ClassSessionClosedSerializer(session).data)

    @extend_schema(
        request=serializers.ReasonSerializer,
        responses={200: serializers.ClassSessionSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[OpenApiExample("Cancel", value={"reason": "Lecturer ill"}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request: Request, pk=None) -> Response:
        """Cancel a session: it then counts for nobody. Refusal: reason_required."""
        session = self._session_for_staff()
        data = serializers.ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = class_session_cancel(session=session, actor=request.user, reason=data.validated_data["reason"])
        return Response(serializers.ClassSessionSerializer(session).data)


# --- Records ---------------------------------------------------------------------------------


class AttendanceRecordViewSet(ScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Records: a student's own, a lecturer's sections', an advisor's advisees'; staff: all. The
    `evidence` of a check-in is shown only to the section's lecturers and registry staff."""

    # No DELETE: a wrong record is corrected (PATCH) or voided, with a reason in the audit log.
    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = serializers.AttendanceRecordSerializer
    filterset_class = filters.AttendanceRecordFilter
    search_fields = ["student__student_number"]

    def get_queryset(self):
        records = records_visible_to(self.request.user)
        if self._evidence:
            records = records.prefetch_related("flags")
        return records

    @property
    def _evidence(self) -> dict:
        if not hasattr(self, "_evidence_cache"):
            self._evidence_cache = _evidence_context(self.request.user)
        return self._evidence_cache

    def get_serializer_context(self):
        return {**super().get_serializer_context(), **self._evidence}

    def _record_for_staff(self) -> AttendanceRecord:
        record = self.get_object()
        _require_section_staff(self.request.user, record.session)
        return record

    def _answer(self, record: AttendanceRecord) -> Response:
        record = self.get_queryset().get(pk=record.pk)
        return Response(self.get_serializer(record).data)

    @extend_schema(
        request=serializers.AttendanceRecordUpdateSerializer,
        responses={200: serializers.AttendanceRecordSerializer},
        examples=[OpenApiExample("Correct", value={"status": "excused", "reason": "Medical certificate"},
                                 request_only=True)],
    )  # fmt: skip
    def partial_update(self, request: Request, pk=None) -> Response:
        """Set the status by hand (audited with the reason). Refusals: reason_required, session_cancelled,
        not_enrolled."""
        record = self._record_for_staff()
        data = serializers.AttendanceRecordUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = attendance_record_set(
            session=record.session, student=record.student, actor=request.user, **data.validated_data
        )
        return self._answer(record)

    @extend_schema(
        request=serializers.ReasonSerializer,
        responses={200: serializers.AttendanceRecordSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[OpenApiExample("Void", value={"reason": "Checked in by a classmate"}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def void(self, request: Request, pk=None) -> Response:
        """Void a check-in made by proxy: it counts as absent. Refusal: reason_required."""
        record = self._record_for_staff()
        data = serializers.ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = attendance_record_void(record=record, actor=request.user, reason=data.validated_data["reason"])
        return self._answer(record)


# --- Check-in --------------------------------------------------------------------------------


def _check_in_person(request: Request) -> str:
    """Who a check-in is for: the caller with a QR token, the card, or the student named by staff, so a
    card reader or a lecturer is not throttled for a whole lecture hall."""
    data = request.data if isinstance(request.data, dict) else {}
    if "token" not in data and data.get("card_uid"):
        return f"card:{data['card_uid']}"
    if "token" not in data and data.get("student") is not None:
        return f"student:{data['student']}"
    return person_for_user(request.user)


def _qr_check_in(request: Request, token: str, expected_session: int | None, device_id: str | None) -> CheckIn:
    try:
        student = request.user.student  # loaded with the token (accounts.tokens) or by one query
    except ObjectDoesNotExist:
        raise PermissionDenied("Only students check in with a QR code.") from None
    session, _ = qr_token_verify(token)
    if expected_session is not None and expected_session != session.pk:
        raise ServiceError(Code.WRONG_SESSION, "This code is for another session.", field="session")
    return attendance_check_in(
        student=student,
        session=session,
        method=AttendanceRecord.Method.QR,
        ip=_client_ip(request) or None,
        user_agent=request.headers.get("User-Agent", ""),
        # The app's own id, apart from the portal's cookie ids; none sent is evidence of its own.
        device_id=f"app:{device_id}" if device_id else "",
        device_expected=True,
    )


def _card_check_in(request: Request, card_uid: str, reader_id: str) -> CheckIn:
    user = request.user
    if not (user.is_service_account or is_registry_staff(user)):
        raise PermissionDenied("Only card-reader service accounts and registry staff check in by card.")
    return attendance_card_check_in(card_uid=card_uid, reader_id=reader_id, recorded_by=user)


def _staff_check_in(request: Request, values: dict) -> CheckIn:
    user = request.user
    _require_lecturer_or_registrar(user)
    session = class_sessions_visible_to(user).filter(pk=values["session"]).first()
    if session is None:
        raise ValidationError({"session": "No such session."})
    _require_section_staff(user, session)
    student = students_visible_to(user).filter(pk=values["student"]).first()
    if student is None:
        raise ValidationError({"student": "No such student."})
    if values["status"] == Status.PRESENT and not values["reason"]:
        return attendance_check_in(
            student=student, session=session, method=AttendanceRecord.Method.API, recorded_by=user
        )
    existed = AttendanceRecord.objects.filter(session=session, student=student).exists()
    record = attendance_record_set(
        session=session,
        student=student,
        status=values["status"],
        actor=user,
        reason=values["reason"],
        method=AttendanceRecord.Method.API,
    )
    return CheckIn(record=record, created=not existed)


CHECK_IN_RECORD_EXAMPLE = {
    "id": 90211, "session": 812, "section": 41, "session_starts_at": "2026-10-05T09:00:00+01:00", "student": 3307,
    "student_number": "S2026042", "status": "present", "method": "qr", "recorded_at": "2026-10-05T09:03:12+01:00",
    "recorded_by": None, "voided": False, "updated_at": "2026-10-05T09:03:12+01:00", "evidence": None,
}  # fmt: skip


class CheckInApi(APIView):
    """Check a student in to a class session: by QR token (the student), by campus card (a card reader),
    or by hand (the section's lecturers, registry staff). Rate limited; honours Idempotency-Key."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # After authentication (the limit is per person), before the Idempotency-Key's transaction.
        if request.method == "POST":
            check_in_limits_enforce(request, _check_in_person(request))

    @extend_schema(
        request=serializers.CheckInSerializer,
        responses={
            201: OpenApiResponse(serializers.CheckInResultSerializer, description="Checked in: the new record."),
            200: OpenApiResponse(
                serializers.CheckInResultSerializer,
                description="Already had a record in this session: it, unchanged, with already_checked_in true.",
            ),
        },
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        examples=[
            # Bandit B105: not a secret: a name, code or example.
            OpenApiExample("Student scans the QR code", value={"token": "812.117741306.q3ZyV1c9aXbW0kT2"},  # nosec B105
                           request_only=True),
            OpenApiExample("Card reader", value={"card_uid": "04A2246A8F5C80", "reader_id": "B2.14-door"},
                           request_only=True),
            OpenApiExample("Lecturer records a student by hand", value={"student": 3307, "session": 812},
                           request_only=True),
            OpenApiExample("Lecturer excuses a student",
                           value={"student": 3307, "session": 812, "status": "excused", "reason": "Sports event"},
                           request_only=True),
            OpenApiExample("Checked in", value=CHECK_IN_RECORD_EXAMPLE | {"already_checked_in": False},
                           response_only=True, status_codes=["201"]),
            OpenApiExample("Already checked in", value=CHECK_IN_RECORD_EXAMPLE | {"already_checked_in": True},
                           response_only=True, status_codes=["200"]),
        ],
    )  # fmt: skip
    @idempotent
    def post(self, request: Request) -> Response:
        """Refusals (400 unless noted): token_invalid, token_expired, token_wrong_session, card_unknown,
        reader_unknown, no_session_in_room, session_not_started, session_ended, session_not_open,
        session_closed, session_cancelled, not_enrolled, student_suspended, student_not_active,
        proxy_refused, reason_required; 403 for a caller who may not use the mode; 429 rate_limited."""
        with CHECK_IN_LATENCY.time():
            return self._check_in(request)

    def _check_in(self, request: Request) -> Response:
        values = serializers.check_in_values(request.data)
        if values["mode"] == "qr":
            check_in = _qr_check_in(request, values["token"], values.get("session"), values.get("device_id"))
        elif values["mode"] == "card":
            check_in = _card_check_in(request, values["card_uid"], values["reader_id"])
        else:
            check_in = _staff_check_in(request, values)
        already = not check_in.created
        if values["mode"] == "qr":
            # A student checking themself in never sees evidence: no need to ask for their roles.
            body = serializers.check_in_result_data(check_in.record, already_checked_in=already)
        else:
            context = {**_evidence_context(request.user), "already_checked_in": already}
            body = serializers.CheckInResultSerializer(check_in.record, context=context).data
        return Response(body, status=status.HTTP_201_CREATED if check_in.created else status.HTTP_200_OK)


# --- Rates -----------------------------------------------------------------------------------

RATE_EXAMPLE = {
    "enrollment": 5120, "student": 3307, "student_number": "S2026042", "section": 41, "course_code": "CS101",
    "term": 3, "held": 8, "attended": 6, "late": 1, "excused": 1, "absent": 1, "rate": "0.8571", "minimum": "0.75",
    "absences_left": 2, "cannot_reach_minimum": False,
}  # fmt: skip
SECTION_RATE_EXAMPLE = {
    "section": 41, "course_code": "CS101", "term": 3, "minimum": "0.75", "students": 58, "students_with_rate": 58,
    "average_rate": "0.8312", "below_minimum": 7, "cannot_reach_minimum": 2,
}  # fmt: skip
RATE_ORDER = ("section__term__start_date", "section__course__code", "section_id", "student__student_number", "pk")


class AttendanceRateViewSet(viewsets.GenericViewSet):
    """Attendance rates per enrollment you may see (attendance.selectors.attendance_rates, the one
    definition), and per section over those same enrollments. Dropped enrollments are left out."""

    serializer_class = serializers.AttendanceRateSerializer
    filterset_class = filters.AttendanceRateFilter
    pagination_class = CappedPageNumberPagination
    filter_backends = [DjangoFilterBackend]

    def get_queryset(self):
        return enrollments_visible_to(self.request.user).exclude(status=Enrollment.Status.DROPPED)

    @extend_schema(
        examples=[
            OpenApiExample(
                "A student's rate in one section",
                value={"count": 1, "next": None, "previous": None, "results": [RATE_EXAMPLE]},
                response_only=True,
            )
        ]
    )
    def list(self, request: Request) -> Response:
        """One row per enrollment: `?section=`, `?student=`, `?term=` narrow it."""
        enrollments = self.filter_queryset(self.get_queryset()).order_by(*RATE_ORDER)
        page = self.paginate_queryset(enrollments.values_list("pk", flat=True))
        rates = attendance_rates(Enrollment.objects.filter(pk__in=list(page)).order_by(*RATE_ORDER))
        return self.get_paginated_response(serializers.AttendanceRateSerializer(rates, many=True).data)

    @extend_schema(
        responses={200: serializers.SectionAttendanceSerializer(many=True)},
        examples=[
            OpenApiExample(
                "One section",
                value={"count": 1, "next": None, "previous": None, "results": [SECTION_RATE_EXAMPLE]},
                response_only=True,
            )
        ],
    )
    @action(detail=False, methods=["get"])
    def sections(self, request: Request) -> Response:
        """Per section: the average rate and how many are below the minimum, over the enrollments you may
        see (a lecturer or registrar: the whole roster; an advisor: their advisees; a student: themself)."""
        enrollments = self.filter_queryset(self.get_queryset())
        sections = (
            Section.objects.filter(pk__in=enrollments.values("section_id"))
            .select_related("course", "term")
            .order_by("term__start_date", "course__code", "code", "pk")
        )
        page = self.paginate_queryset(sections)
        by_section = defaultdict(list)
        for row in attendance_rates(enrollments.filter(section__in=[section.pk for section in page])):
            by_section[row.enrollment.section_id].append(row)
        body = [_section_summary(section, by_section[section.pk]) for section in page]
        return self.get_paginated_response(serializers.SectionAttendanceSerializer(body, many=True).data)


def _section_summary(section: Section, rows: list) -> dict:
    rates = [row.rate for row in rows if row.rate is not None]
    average = (sum(rates, Decimal(0)) / len(rates)).quantize(Decimal("0.0001")) if rates else None
    return {
        "section": section.pk,
        "course_code": section.course.code,
        "term": section.term_id,
        "minimum": section.min_attendance_rate,
        "students": len(rows),
        "students_with_rate": len(rates),
        "average_rate": average,
        "below_minimum": sum(1 for row in rows if row.rate is not None and row.rate < row.minimum),
        "cannot_reach_minimum": sum(1 for row in rows if row.cannot_reach_minimum),
    }
