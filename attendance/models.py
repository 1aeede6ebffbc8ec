"""Attendance: class sessions, one record per (session, student), and what anti-proxy checks noticed.

docs/ATTENDANCE.md defines the attendance rate; attendance/selectors.py computes it, once, for
every consumer (portal, API, reports, predictions).
"""

import datetime
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from campusiq.core.models import TimeStampedModel
from students.models import Assessment, Department, Section, Student, Term


def _new_token_salt() -> str:
    return secrets.token_hex(16)


class TermHoliday(models.Model):
    """A day without teaching: weekly series skip it."""

    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["term", "date"], name="holiday_unique_per_term_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SectionGroup(models.Model):
    """Part of a section's students (a lab group): its sessions are held for its members only."""

    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["section", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["section", "name"],
                name="section_group_name_unique",
                violation_error_message="The section already has a group of that name.",
            ),
            models.CheckConstraint(
                condition=~Q(name=""), name="section_group_name_not_empty", violation_error_message="Name the group."
            ),
        ]

    def __str__(self) -> str:
        return f"{self.section} {self.name}"


class SectionGroupMember(models.Model):
    group = models.ForeignKey(SectionGroup, on_delete=models.CASCADE, related_name="members")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="group_memberships")

    class Meta:
        ordering = ["group", "student"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "student"],
                name="section_group_member_unique",
                violation_error_message="The student is already in this group.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id} in {self.group_id}"


class SectionNetworkRule(models.Model):
    """The networks a section's check-ins are expected from, instead of ATTENDANCE_CAMPUS_NETWORKS."""

    section = models.OneToOneField(Section, on_delete=models.CASCADE, related_name="network_rule")
    networks = models.JSONField(default=list, blank=True, help_text="CIDRs; empty: the campus networks.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.section}: {', '.join(self.networks) or 'campus networks'}"


class ClassSession(TimeStampedModel):
    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"
        # Never opened and nothing recorded when it ended: counts for nobody until taken or cancelled.
        NOT_TAKEN = "not_taken", "Not taken"

    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="class_sessions")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    room = models.CharField(max_length=64, blank=True)
    late_after_minutes = models.PositiveSmallIntegerField(default=10)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SCHEDULED, db_index=True)
    series = models.UUIDField(null=True, blank=True, db_index=True, help_text="Sessions created as one weekly series.")
    # A session for one group of the section (PROTECT: a group with sessions is not deleted).
    group = models.ForeignKey(
        SectionGroup, on_delete=models.PROTECT, null=True, blank=True, related_name="class_sessions"
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Part of the QR tokens' key: replacing it kills every token issued for this session.
    token_salt = models.CharField(max_length=32, default=_new_token_salt, editable=False)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["section", "starts_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="class_session_ends_after_start",
                violation_error_message="A session must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["scheduled", "open", "closed", "cancelled", "not_taken"]),
                name="class_session_state_valid",
                violation_error_message="Unknown session state.",
            ),
            models.CheckConstraint(
                condition=Q(late_after_minutes__lte=240),
                name="class_session_late_after_at_most_4h",
                violation_error_message="'Late after' is at most 240 minutes.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.section} {self.starts_at:%Y-%m-%d %H:%M}"


class StatusKind(models.TextChoices):
    """What a status means to the one attendance rate and the prediction features (docs/ATTENDANCE.md):
    present and late count as attended (late also as late), absent as missed, excused not at all."""

    PRESENT = "present", "Present"
    LATE = "late", "Late"
    ABSENT = "absent", "Absent"
    EXCUSED = "excused", "Excused"


class AttendanceStatusSet(TimeStampedModel):
    """The statuses a lecturer may give: a section's own set, else its department's, else the campus
    default (selectors.status_set_for_section)."""

    name = models.CharField(max_length=100)
    is_campus_default = models.BooleanField(default=False, help_text="The set of every section with no other.")
    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, null=True, blank=True, related_name="attendance_status_sets"
    )
    section = models.ForeignKey(
        Section, on_delete=models.CASCADE, null=True, blank=True, related_name="attendance_status_sets"
    )

    class Meta:
        ordering = ["-is_campus_default", "department", "section", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(is_campus_default=True, department__isnull=True, section__isnull=True)
                    | Q(is_campus_default=False, department__isnull=False, section__isnull=True)
                    | Q(is_campus_default=False, department__isnull=True, section__isnull=False)
                ),
                name="attendance_status_set_one_scope",
                violation_error_message="A status set is the campus default, a department's or a section's.",
            ),
            models.UniqueConstraint(
                fields=["is_campus_default"],
                condition=Q(is_campus_default=True),
                name="attendance_status_set_one_default",
                violation_error_message="There is already a campus default status set.",
            ),
            models.UniqueConstraint(
                fields=["department"],
                condition=Q(department__isnull=False),
                name="attendance_status_set_one_per_department",
                violation_error_message="This department already has a status set.",
            ),
            models.UniqueConstraint(
                fields=["section"],
                condition=Q(section__isnull=False),
                name="attendance_status_set_one_per_section",
                violation_error_message="This section already has a status set.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AttendanceStatus(models.Model):
    """One status of a set. Its kind keeps the rate's meaning; its points feed the attendance grade."""

    status_set = models.ForeignKey(AttendanceStatusSet, on_delete=models.CASCADE, related_name="statuses")
    code = models.SlugField(max_length=32)
    label = models.CharField(max_length=64)
    acronym = models.CharField(max_length=3)
    description = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=StatusKind.choices)
    points = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Empty for excused: not counted."
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["status_set", "order", "pk"]
        verbose_name_plural = "attendance statuses"
        constraints = [
            models.UniqueConstraint(
                fields=["status_set", "code"],
                name="attendance_status_code_unique_per_set",
                violation_error_message="Each code appears once in a set.",
            ),
            models.UniqueConstraint(
                fields=["status_set", "acronym"],
                name="attendance_status_acronym_unique_per_set",
                violation_error_message="Each acronym appears once in a set.",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["present", "late", "absent", "excused"]),
                name="attendance_status_kind_valid",
                violation_error_message="Unknown kind of status.",
            ),
            models.CheckConstraint(
                condition=Q(kind="excused", points__isnull=True)
                | (~Q(kind="excused") & Q(points__isnull=False, points__gte=0)),
                name="attendance_status_points_by_kind",
                violation_error_message="An excused status has no points; every other has points of 0 or more.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.acronym} {self.label}"


# The campus default set as migration 0004 created it; also what a section falls back to should no set
# exist at all (a database emptied by a test). (code, label, acronym, kind, points)
BUILT_IN_STATUSES = [
    ("present", "Present", "P", StatusKind.PRESENT, Decimal(2)),
    ("late", "Late", "L", StatusKind.LATE, Decimal(1)),
    ("absent", "Absent", "A", StatusKind.ABSENT, Decimal(0)),
    ("excused", "Excused", "E", StatusKind.EXCUSED, None),
]


class AttendanceRecord(TimeStampedModel):
    Status = StatusKind

    class Method(models.TextChoices):
        QR = "qr", "QR code"
        CODE = "code", "Numeric code"
        CARD = "card", "Card reader"
        MANUAL = "manual", "Manual"
        API = "api", "API"
        CLOSING = "closing", "Session closed"

    session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="records")
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="attendance_records")
    status = models.CharField(max_length=16, choices=Status.choices, help_text="The kind of the status given.")
    # The status of the set chosen; empty: the set's first status of this record's kind.
    status_choice = models.ForeignKey(
        AttendanceStatus, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField()
    method = models.CharField(max_length=16, choices=Method.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Evidence of a check-in; purged after ATTENDANCE_EVIDENCE_RETENTION_DAYS (privacy).
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    device_id = models.CharField(max_length=64, blank=True, db_index=True)
    voided = models.BooleanField(default=False, help_text="A check-in the lecturer voided (counts as absent).")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["session", "student"]
        constraints = [
            models.UniqueConstraint(fields=["session", "student"], name="attendance_one_record_per_session_student"),
            models.CheckConstraint(
                condition=Q(status__in=["present", "late", "absent", "excused"]),
                name="attendance_status_valid",
                violation_error_message="Unknown attendance status.",
            ),
            models.CheckConstraint(
                condition=Q(voided=False) | Q(status="absent"),
                name="attendance_voided_is_absent",
                violation_error_message="A voided record counts as absent.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student.student_number} {self.session}: {self.status}"


class ProxyFlag(models.Model):
    """Something about a check-in that suggests it was made for someone else."""

    class Kind(models.TextChoices):
        SHARED_DEVICE = "shared_device", "One device checked in several students"
        NEW_DEVICE = "new_device", "A device never seen for this student, their usual one absent"
        OFF_CAMPUS = "off_campus", "Checked in from outside the campus networks"
        NO_DEVICE_ID = "no_device_id", "Checked in from an app that sent no device identifier"

    record = models.ForeignKey(AttendanceRecord, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["record", "kind"], name="proxy_flag_once_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.record}"


class DeviceSighting(models.Model):
    """Devices a student has checked in from: how the 'never seen for them' check knows their usual one."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="device_sightings")
    device_id = models.CharField(max_length=64)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    check_ins = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["student", "device_id"], name="device_sighting_unique")]

    def __str__(self) -> str:
        return f"{self.student_id} on {self.device_id}"


class StudentCard(models.Model):
    """A campus card, as card readers see it."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="cards")
    uid = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.uid} ({self.student.student_number})"


class CardReader(models.Model):
    reader_id = models.CharField(max_length=64, unique=True)
    room = models.CharField(max_length=64, help_text="Matches ClassSession.room.")
    name = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"{self.reader_id} in {self.room}"


class AbsenceExcuse(TimeStampedModel):
    class State(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    record = models.OneToOneField(AttendanceRecord, on_delete=models.CASCADE, related_name="excuse")
    reason = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.SUBMITTED)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["submitted", "approved", "rejected"]),
                name="absence_excuse_state_valid",
                violation_error_message="Unknown excuse state.",
            ),
        ]

    def __str__(self) -> str:
        return f"Excuse for {self.record} ({self.state})"


class AttendanceWarningState(models.Model):
    """A warning sent to a student in a section under one rule: each is sent once."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="+")
    # Null only for warnings sent before rules existed (under the one ATTENDANCE_WARNING_RATE).
    rule = models.ForeignKey(
        "attendance.AttendanceWarningRule", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    below = models.BooleanField(default=False)
    last_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["student", "section", "rule"], name="attendance_warning_once_per_rule")
        ]

    def __str__(self) -> str:
        return f"{self.student_id} in {self.section_id}: {'below' if self.below else 'ok'}"


class SectionAttendanceGrade(TimeStampedModel):
    """A section's attendance counted as a grade: the linked assessment's scores are computed from the
    points of the statuses (services.section_attendance_grades_compute), never entered by hand."""

    section = models.OneToOneField(Section, on_delete=models.CASCADE, related_name="attendance_grade")
    assessment = models.OneToOneField(Assessment, on_delete=models.PROTECT, related_name="+")
    drop_lowest = models.PositiveSmallIntegerField(default=0, help_text="How many of the lowest sessions to leave out.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(drop_lowest__lte=100),
                name="section_attendance_grade_drop_lowest_at_most_100",
                violation_error_message="Drop at most 100 sessions.",
            ),
        ]

    def __str__(self) -> str:
        return f"Attendance grade of {self.section}"


class CalendarFeed(models.Model):
    """A private iCalendar feed of a person's own timetable. The secret is in the feed's URL, shown
    once; only its SHA-256 is kept (as for API tokens). Revoked feeds stay, so their URLs stay dead."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(revoked_at__isnull=True),
                name="calendar_feed_one_active_per_user",
                violation_error_message="A person has one active calendar feed.",
            ),
        ]

    def __str__(self) -> str:
        return f"Calendar feed of {self.user_id}{' (revoked)' if self.revoked_at else ''}"


# --- Absences reported in advance ------------------------------------------------------------

ADVANCE_ABSENCE_MAX_DAYS = 60
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENT_CONTENT_TYPES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}


def _private_storage():
    from django.core.files.storage import storages

    return storages["private"]


def _attachment_path(instance: "AdvanceAbsence", filename: str) -> str:
    # The student's name for the file is never part of the path: it may hold anything.
    extension = next((ext for ext in ATTACHMENT_CONTENT_TYPES.values() if filename.lower().endswith(ext)), "")
    return f"advance-absences/{instance.student_id}/{secrets.token_hex(16)}{extension}"


class AdvanceAbsence(TimeStampedModel):
    """An absence the student reports before it happens; once approved, closing a session it covers
    marks the student excused instead of absent."""

    class State(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="advance_absences")
    # Null: every section the student is enrolled in during the term.
    section = models.ForeignKey(Section, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="+")
    first_day = models.DateField()
    last_day = models.DateField()
    reason = models.TextField()
    attachment = models.FileField(upload_to=_attachment_path, storage=_private_storage, blank=True, max_length=200)
    attachment_content_type = models.CharField(max_length=50, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SUBMITTED, db_index=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-first_day", "-pk"]
        indexes = [models.Index(fields=["student", "first_day"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_day__gte=F("first_day")),
                name="advance_absence_last_after_first",
                violation_error_message="The last day cannot be before the first.",
            ),
            models.CheckConstraint(
                condition=Q(last_day__lte=F("first_day") + datetime.timedelta(days=ADVANCE_ABSENCE_MAX_DAYS - 1)),
                name="advance_absence_at_most_60_days",
                violation_error_message=f"An advance absence spans at most {ADVANCE_ABSENCE_MAX_DAYS} days.",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["submitted", "approved", "rejected", "withdrawn"]),
                name="advance_absence_state_valid",
                violation_error_message="Unknown state.",
            ),
            models.CheckConstraint(
                condition=Q(attachment="") | Q(attachment_content_type__in=list(ATTACHMENT_CONTENT_TYPES)),
                name="advance_absence_attachment_type_allowed",
                violation_error_message="Attach a PDF, JPEG or PNG file.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} away {self.first_day} to {self.last_day} ({self.state})"


# --- Warning rules ---------------------------------------------------------------------------


class AttendanceWarningRule(TimeStampedModel):
    """When attendance warnings are sent. A section's rules replace its department's, which replace the
    campus-wide ones (neither department nor section)."""

    class Kind(models.TextChoices):
        RATE_BELOW = "rate_below", "Attendance rate below a threshold"
        ABSENCES_IN_ROW = "absences_in_row", "Absences in a row"

    department = models.ForeignKey(
        "students.Department", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    section = models.ForeignKey(Section, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    rate_below = models.DecimalField(
        max_digits=4, decimal_places=3, null=True, blank=True, help_text="For 'rate below': 0.800 is 80%."
    )
    absences_in_row = models.PositiveSmallIntegerField(null=True, blank=True, help_text="For 'absences in a row'.")
    max_per_term = models.PositiveSmallIntegerField(
        default=3, help_text="This rule sends nothing more once the student had this many warnings in the term."
    )
    notify_student = models.BooleanField(default=True)
    notify_lecturers = models.BooleanField(default=True)
    notify_advisor = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "rate_below", "absences_in_row", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(department__isnull=True) | Q(section__isnull=True),
                name="warning_rule_one_scope",
                violation_error_message="A rule is for a department or for a section, not both.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="rate_below", rate_below__isnull=False, rate_below__gt=0, rate_below__lte=1)
                    & Q(absences_in_row__isnull=True)
                    | Q(kind="absences_in_row", absences_in_row__isnull=False, absences_in_row__gte=1)
                    & Q(rate_below__isnull=True)
                ),
                name="warning_rule_kind_fields",
                violation_error_message="'Rate below' needs a rate between 0 and 1; 'absences in a row' a count.",
            ),
            models.CheckConstraint(
                condition=Q(max_per_term__gte=1),
                name="warning_rule_max_per_term_positive",
                violation_error_message="Allow at least one warning per term.",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.RATE_BELOW:
            return f"rate below {self.rate_below:.0%}"
        return f"{self.absences_in_row} absences in a row"
