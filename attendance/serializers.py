"""Shapes of the attendance API. No rules here: writes go to attendance/services.py, rates come from
attendance/selectors.py (the one definition of the rate)."""

import re

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from attendance.models import AttendanceRecord, ClassSession


class AttendanceStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=AttendanceRecord.Status.choices, **kwargs)


class AttendanceStatusFieldSchema(OpenApiSerializerFieldExtension):
    """Names the enum AttendanceStatusEnum: as a third `status` choice set (after students' and
    enrollments') it would otherwise get a generated name and a schema warning."""

    target_class = AttendanceStatusField

    def map_serializer_field(self, auto_schema, direction):
        component = ResolvedComponent(
            name="AttendanceStatusEnum",
            type=ResolvedComponent.SCHEMA,
            object="AttendanceStatusEnum",
            schema={
                "type": "string",
                "enum": AttendanceRecord.Status.values,
                "description": "\n".join(f"* `{value}` - {label}" for value, label in AttendanceRecord.Status.choices),
            },
        )
        auto_schema.registry.register_on_missing(component)
        return component.ref


# --- Class sessions --------------------------------------------------------------------------


class ClassSessionSerializer(serializers.ModelSerializer):
    course_code = serializers.CharField(source="section.course.code", read_only=True)
    term = serializers.IntegerField(source="section.term_id", read_only=True)

    class Meta:
        model = ClassSession
        fields = [
            "id", "section", "course_code", "term", "starts_at", "ends_at", "room", "late_after_minutes", "state",
            "series", "opened_at", "closed_at", "updated_at", "group",
        ]  # fmt: skip
        read_only_fields = fields


class ClassSessionClosedSerializer(ClassSessionSerializer):
    marked_absent = serializers.IntegerField(help_text="Enrolled students without a record, now marked absent.")

    class Meta(ClassSessionSerializer.Meta):
        fields = [*ClassSessionSerializer.Meta.fields, "marked_absent"]


class ClassSessionSeriesResultSerializer(serializers.Serializer):
    series = serializers.UUIDField(allow_null=True, help_text="Shared by the sessions created; null if none were.")
    count = serializers.IntegerField()
    sessions = ClassSessionSerializer(many=True)


class ClassSessionCreateSerializer(serializers.Serializer):
    section = serializers.IntegerField(min_value=1)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    room = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    late_after_minutes = serializers.IntegerField(min_value=0, max_value=240, required=False, default=10)


class ClassSessionSeriesCreateSerializer(serializers.Serializer):
    section = serializers.IntegerField(min_value=1)
    first_date = serializers.DateField(help_text="The first session's day; then every week on the same weekday.")
    start_time = serializers.TimeField(help_text="Wall-clock time on the campus (settings.TIME_ZONE), every week.")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=12 * 60)
    until = serializers.DateField(required=False, allow_null=True, help_text="Last day; default: the term's end.")
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        allow_empty=False,
        max_length=7,
        help_text="Weekdays of the series, 0 = Monday; default: first_date's.",
    )
    every_weeks = serializers.IntegerField(
        min_value=1, max_value=4, required=False, default=1, help_text="1: every week, 2: every other week, ..."
    )
    room = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    late_after_minutes = serializers.IntegerField(min_value=0, max_value=240, required=False, default=10)

    def validate(self, attrs):
        if attrs.get("until") and attrs["until"] < attrs["first_date"]:
            raise serializers.ValidationError({"until": "Must not be before first_date."})
        return attrs


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, allow_blank=True, help_text="Why; kept in the audit log.")


# --- Records ---------------------------------------------------------------------------------


class RecordEvidenceSerializer(serializers.Serializer):
    """What only the section's lecturers and registry staff see (privacy: docs/API.md)."""

    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    device_id = serializers.CharField()
    note = serializers.CharField(help_text="The reason given when the record was set or voided by hand.")
    flags = serializers.SerializerMethodField(help_text="Proxy signs noticed at check-in.")

    def get_flags(self, record: AttendanceRecord) -> list[str]:
        return [flag.kind for flag in record.flags.all()]


class AttendanceRecordSerializer(serializers.ModelSerializer):
    """`evidence` is filled only for viewers in context["evidence_sections"] (sections they may inspect)
    or with context["evidence_all"]; for everyone else it is null."""

    section = serializers.IntegerField(source="session.section_id", read_only=True)
    session_starts_at = serializers.DateTimeField(source="session.starts_at", read_only=True)
    student_number = serializers.CharField(source="student.student_number", read_only=True)
    status = AttendanceStatusField(read_only=True)
    evidence = serializers.SerializerMethodField()

    class Meta:
        model = AttendanceRecord
        fields = [
            "id", "session", "section", "session_starts_at", "student", "student_number", "status", "method",
            "recorded_at", "recorded_by", "voided", "updated_at", "evidence",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(RecordEvidenceSerializer(allow_null=True))
    def get_evidence(self, record: AttendanceRecord):
        if self.context.get("evidence_all") or record.session.section_id in self.context.get("evidence_sections", ()):
            return RecordEvidenceSerializer(record).data
        return None


class CheckInResultSerializer(AttendanceRecordSerializer):
    already_checked_in = serializers.SerializerMethodField(
        help_text="True when the student already had a record in this session (200); it is returned unchanged."
    )

    class Meta(AttendanceRecordSerializer.Meta):
        fields = [*AttendanceRecordSerializer.Meta.fields, "already_checked_in"]

    def get_already_checked_in(self, record: AttendanceRecord) -> bool:
        return bool(self.context.get("already_checked_in"))


_DATETIME = serializers.DateTimeField()


def check_in_result_data(record: AttendanceRecord, *, already_checked_in: bool) -> dict:
    """CheckInResultSerializer's output for a student's own QR check-in (evidence is never shown to
    them), built directly: the busiest response of the site, and the serializer spends more time
    building its fields than the check-in spends in the database. A test keeps the two identical."""
    session = record.session
    return {
        "id": record.pk,
        "session": record.session_id,
        "section": session.section_id,
        "session_starts_at": _DATETIME.to_representation(session.starts_at),
        "student": record.student_id,
        "student_number": record.student.student_number,
        "status": record.status,
        "method": record.method,
        "recorded_at": _DATETIME.to_representation(record.recorded_at),
        "recorded_by": record.recorded_by_id,
        "voided": record.voided,
        "updated_at": _DATETIME.to_representation(record.updated_at),
        "evidence": None,
        "already_checked_in": already_checked_in,
    }


class AttendanceRecordUpdateSerializer(serializers.Serializer):
    status = AttendanceStatusField()
    reason = serializers.CharField(max_length=1000, allow_blank=True, help_text="Why; kept in the audit log.")


# A phone app's device identifier (CheckInSerializer.device_id).
API_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{16,56}$")


class CheckInSerializer(serializers.Serializer):
    """Exactly one of: `token` (a student, for themself); `card_uid` + `reader_id` (a card reader);
    `student` + `session` (staff, by hand)."""

    token = serializers.CharField(max_length=100, required=False, help_text="The QR token, as scanned.")
    device_id = serializers.RegexField(
        API_DEVICE_ID,
        required=False,
        help_text=(
            "With `token`: the phone's own identifier, 16-56 characters of A-Z a-z 0-9 _ -, made once when "
            "the app is installed and sent with every check-in (docs/API.md). Without it the check-in is "
            "flagged `no_device_id` for the lecturer; one identifier checking in several students is "
            "flagged `shared_device`, as in the portal."
        ),
    )
    session = serializers.IntegerField(
        min_value=1, required=False, help_text="With `token`: the session the client expects (else refused)."
    )
    card_uid = serializers.CharField(max_length=64, required=False)
    reader_id = serializers.CharField(max_length=64, required=False)
    student = serializers.IntegerField(min_value=1, required=False)
    status = AttendanceStatusField(
        required=False,
        default=AttendanceRecord.Status.PRESENT,
        help_text="Staff only. `present` checks in (late by the usual rule); any other status needs `reason`.",
    )
    reason = serializers.CharField(max_length=1000, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        modes = [
            mode
            for mode, present in (
                ("qr", "token" in attrs),
                ("card", "card_uid" in attrs or "reader_id" in attrs),
                ("manual", "student" in attrs),
            )
            if present
        ]
        if len(modes) != 1:
            raise serializers.ValidationError(
                "Send exactly one of: token; card_uid and reader_id; student and session.", code="check_in_mode"
            )
        mode = modes[0]
        required = {"qr": ["token"], "card": ["card_uid", "reader_id"], "manual": ["student", "session"]}[mode]
        missing = {name: "This field is required." for name in required if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing, code="required")
        sent = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        if mode == "card" and "session" in sent:
            raise serializers.ValidationError({"session": "A card reader finds the session from its room."})
        if mode != "qr" and "device_id" in sent:
            raise serializers.ValidationError({"device_id": "Only a student's own check-in sends a device id."})
        if mode != "manual" and sent & {"status", "reason"}:
            raise serializers.ValidationError("status and reason are only for staff recording a student by hand.")
        return {**attrs, "mode": mode}


# What a QR token looks like (attendance.qr): <session id>.<step>.<url-safe base64 MAC>.
_WELL_FORMED_QR_TOKEN = re.compile(r"[0-9]{1,18}\.[0-9]{1,18}\.[A-Za-z0-9_-]{1,40}")


def check_in_values(data) -> dict:
    """CheckInSerializer's validated data for a check-in body (ValidationError if it is invalid).

    A phone's scan, `{"token": "<well-formed token>"}`, is the busiest request of the site and the
    serializer spends longer building its seven fields than the check-in spends in the database: that
    one shape is answered directly (a test keeps the two identical). Everything else is validated by
    the serializer, errors included."""
    token = data.get("token") if type(data) is dict and len(data) in (1, 2) else None
    device_id = data.get("device_id") if token is not None and len(data) == 2 else None
    if (
        isinstance(token, str)
        and _WELL_FORMED_QR_TOKEN.fullmatch(token)
        and (len(data) == 1 or (isinstance(device_id, str) and API_DEVICE_ID.fullmatch(device_id)))
    ):
        values = {"token": token, "status": AttendanceRecord.Status.PRESENT, "reason": "", "mode": "qr"}
        return {**values, "device_id": device_id} if device_id is not None else values
    serializer = CheckInSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Rates -----------------------------------------------------------------------------------


class AttendanceRateSerializer(serializers.Serializer):
    """One enrollment's attendance, as attendance.selectors.attendance_rates computes it."""

    enrollment = serializers.IntegerField(source="enrollment.pk")
    student = serializers.IntegerField(source="enrollment.student_id")
    student_number = serializers.CharField(source="enrollment.student.student_number")
    section = serializers.IntegerField(source="enrollment.section_id")
    course_code = serializers.CharField(source="enrollment.section.course.code")
    term = serializers.IntegerField(source="enrollment.section.term_id")
    held = serializers.IntegerField(help_text="Sessions held since the student enrolled (not cancelled).")
    attended = serializers.IntegerField(help_text="Present or late.")
    late = serializers.IntegerField()
    excused = serializers.IntegerField()
    absent = serializers.IntegerField()
    rate = serializers.DecimalField(
        max_digits=5, decimal_places=4, allow_null=True, help_text="attended / (held - excused); null before any."
    )
    minimum = serializers.DecimalField(max_digits=3, decimal_places=2, help_text="The section's minimum rate.")
    absences_left = serializers.IntegerField(help_text="Further absences the minimum still allows.")
    cannot_reach_minimum = serializers.BooleanField()


class SectionAttendanceSerializer(serializers.Serializer):
    section = serializers.IntegerField()
    course_code = serializers.CharField()
    term = serializers.IntegerField()
    minimum = serializers.DecimalField(max_digits=3, decimal_places=2)
    students = serializers.IntegerField(help_text="Enrollments counted (those you may see; dropped excluded).")
    students_with_rate = serializers.IntegerField(help_text="Of them, those with at least one session held.")
    average_rate = serializers.DecimalField(
        max_digits=5, decimal_places=4, allow_null=True, help_text="Mean of the students' rates; null if none."
    )
    below_minimum = serializers.IntegerField(help_text="Students whose rate is below the section's minimum.")
    cannot_reach_minimum = serializers.IntegerField(help_text="Students who can no longer reach the minimum.")
