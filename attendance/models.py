"""Attendance: class sessions, one record per (session, student), and what anti-proxy checks noticed.

docs/ATTENDANCE.md defines the attendance rate; attendance/selectors.py computes it, once, for
every consumer (portal, API, reports, predictions).
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from campusiq.core.models import TimeStampedModel
from students.models import Section, Student, Term


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


class AttendanceRecord(TimeStampedModel):
    class Status(models.TextChoices):
        PRESENT = "present", "Present"
        LATE = "late", "Late"
        ABSENT = "absent", "Absent"
        EXCUSED = "excused", "Excused"

    class Method(models.TextChoices):
        QR = "qr", "QR code"
        CODE = "code", "Numeric code"
        CARD = "card", "Card reader"
        MANUAL = "manual", "Manual"
        API = "api", "API"
        CLOSING = "closing", "Session closed"

    session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="records")
    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="attendance_records")
    status = models.CharField(max_length=16, choices=Status.choices)
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
    """Whether a student is below the warning level in a section: one email per downward crossing."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="+")
    below = models.BooleanField(default=False)
    last_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["student", "section"], name="attendance_warning_unique")]

    def __str__(self) -> str:
        return f"{self.student_id} in {self.section_id}: {'below' if self.below else 'ok'}"
