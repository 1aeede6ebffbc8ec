"""Reads of attendance, and the one definition of the attendance rate (docs/ATTENDANCE.md):

    rate = (present + late) / (sessions held since the student enrolled - excused)

"Held" = sessions of the section (for the whole section, or for a group the student is a member of),
neither cancelled nor not taken, that started on or after the enrolment day, up to `as_of` (and, for a
student who left, before the day they left). Cancelled and not-taken sessions count for nobody; a voided
check-in is an absence. No held session yet: the rate is None.
"""

import datetime
import math
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles
from attendance.models import (
    AbsenceExcuse,
    AttendanceRecord,
    ClassSession,
    ProxyFlag,
    SectionGroup,
    SectionGroupMember,
    SectionNetworkRule,
)
from students.models import Enrollment, Section, Student, Term
from students.selectors import enrollments_visible_to, student_rows_visible_to

Status = AttendanceRecord.Status
State = ClassSession.State
ATTENDED = (Status.PRESENT, Status.LATE)
# Sessions in these states count for nobody in any rate.
NOT_HELD = (State.CANCELLED, State.NOT_TAKEN)


@dataclass(frozen=True)
class AttendanceRate:
    enrollment: Enrollment
    held: int
    attended: int
    late: int
    excused: int
    absent: int
    planned: int  # every session of the term still counting for this student, past and future

    @property
    def counted(self) -> int:
        return self.held - self.excused

    @property
    def rate(self) -> Decimal | None:
        return (
            None if self.counted <= 0 else (Decimal(self.attended) / Decimal(self.counted)).quantize(Decimal("0.0001"))
        )

    @property
    def minimum(self) -> Decimal:
        return self.enrollment.section.min_attendance_rate

    @property
    def needed(self) -> int:
        """Sessions the student must attend over the term to reach the section's minimum."""
        return math.ceil(self.minimum * (self.planned - self.excused))

    @property
    def remaining(self) -> int:
        return max(self.planned - self.held, 0)

    @property
    def absences_left(self) -> int:
        """How many more absences the minimum still allows (attending every other session)."""
        return max(self.attended + self.remaining - self.needed, 0)

    @property
    def cannot_reach_minimum(self) -> bool:
        return self.attended + self.remaining < self.needed


def _left_on():
    """The day the student left the section, or far in the future while they are in it."""
    return Coalesce(OuterRef("ended_on"), Value(datetime.date(9999, 12, 31)))


def _for_student(student, *, group: str = "group") -> Q:
    """Sessions for the whole section, or for a group `student` is a member of: a session of another
    group is neither held nor planned for them, whatever its records."""
    member = SectionGroupMember.objects.filter(group=OuterRef(group), student=student)
    return Q(**{f"{group}__isnull": True}) | Q(Exists(member))


def _session_counts(as_of: datetime.datetime, *, only_held: bool):
    """Correlated count of the enrollment's sessions (held so far, or all planned)."""
    sessions = ClassSession.objects.filter(section=OuterRef("section_id")).exclude(state__in=NOT_HELD)
    sessions = sessions.filter(_for_student(OuterRef(OuterRef("student_id"))))
    sessions = sessions.filter(starts_at__date__gte=OuterRef("enrolled_on"))
    if only_held:
        sessions = sessions.filter(starts_at__lte=as_of)
    sessions = sessions.filter(starts_at__date__lt=_left_on())
    return Coalesce(
        Subquery(
            sessions.order_by().values("section").annotate(n=Count("pk")).values("n"), output_field=IntegerField()
        ),
        Value(0),
    )


def _record_counts(as_of: datetime.datetime, statuses: tuple[str, ...]):
    records = AttendanceRecord.objects.filter(
        session__section=OuterRef("section_id"),
        student=OuterRef("student_id"),
        status__in=statuses,
        session__starts_at__lte=as_of,
        session__starts_at__date__gte=OuterRef("enrolled_on"),
        session__starts_at__date__lt=_left_on(),
    ).exclude(session__state__in=NOT_HELD)
    records = records.filter(_for_student(OuterRef("student"), group="session__group"))
    return Coalesce(
        Subquery(records.order_by().values("student").annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
        Value(0),
    )


def enrollments_with_attendance(enrollments: QuerySet[Enrollment], *, as_of: datetime.datetime | None = None):
    """Annotates each enrollment with its session and record counts: one query for any number of rows."""
    as_of = as_of or timezone.now()
    return enrollments.select_related("section__course", "section__term", "student__user").annotate(
        sessions_held=_session_counts(as_of, only_held=True),
        sessions_planned=_session_counts(as_of, only_held=False),
        records_attended=_record_counts(as_of, ATTENDED),
        records_late=_record_counts(as_of, (Status.LATE,)),
        records_excused=_record_counts(as_of, (Status.EXCUSED,)),
    )


def attendance_rates(
    enrollments: QuerySet[Enrollment], *, as_of: datetime.datetime | None = None
) -> list[AttendanceRate]:
    rows = []
    for e in enrollments_with_attendance(enrollments, as_of=as_of):
        absent = max(e.sessions_held - e.records_attended - e.records_excused, 0)
        rows.append(
            AttendanceRate(
                enrollment=e,
                held=e.sessions_held,
                attended=e.records_attended,
                late=e.records_late,
                excused=e.records_excused,
                absent=absent,
                planned=e.sessions_planned,
            )
        )
    return rows


def attendance_rates_for_section(section: Section, *, as_of: datetime.datetime | None = None) -> list[AttendanceRate]:
    enrollments = Enrollment.objects.filter(section=section).exclude(status=Enrollment.Status.DROPPED)
    return attendance_rates(enrollments.order_by("student__student_number"), as_of=as_of)


def attendance_rates_visible_to(user: User, *, as_of: datetime.datetime | None = None) -> list[AttendanceRate]:
    return attendance_rates(enrollments_visible_to(user).exclude(status=Enrollment.Status.DROPPED), as_of=as_of)


def class_sessions_visible_to(user: User) -> QuerySet[ClassSession]:
    """Sessions of sections the user teaches, attends, or (advisors) their advisees attend; staff: all."""
    sessions = ClassSession.objects.select_related("section__course", "section__term")
    if not user.is_authenticated:
        return sessions.none()
    if is_registry_staff(user):
        return sessions
    roles = user_roles(user)
    visible = Q(section__in=enrollments_visible_to(user).values("section_id"))
    if Role.LECTURER in roles:
        visible |= Q(section__lecturers=user)
    return sessions.filter(Exists(ClassSession.objects.filter(visible, pk=OuterRef("pk"))))


def records_visible_to(user: User) -> QuerySet[AttendanceRecord]:
    records = AttendanceRecord.objects.select_related("session__section__course", "student__user")
    return student_rows_visible_to(user, records, section_id="session__section_id")


def session_flags(session: ClassSession) -> QuerySet[ProxyFlag]:
    return ProxyFlag.objects.filter(record__session=session).select_related("record__student__user")


def session_checked_in_count(session: ClassSession) -> int:
    return AttendanceRecord.objects.filter(session=session, status__in=ATTENDED).count()


def enrolled_at_session(session: ClassSession):
    """Students enrolled in the section on the session's day (dropped later still count for it) and,
    for a session of one group, in that group."""
    day = timezone.localtime(session.starts_at).date()
    students = Student.objects.filter(
        Q(enrollments__status=Enrollment.Status.ENROLLED) | Q(enrollments__ended_on__gt=day),
        enrollments__section_id=session.section_id,
        enrollments__enrolled_on__lte=day,
    )
    if session.group_id:  # a group's session: only its members (roster, marks, closing)
        students = students.filter(
            Exists(SectionGroupMember.objects.filter(group_id=session.group_id, student=OuterRef("pk")))
        )
    return students


# --- For the portal pages -----------------------------------------------------------------------


def class_session_get(*, session_id: int) -> ClassSession | None:
    """The session with its section, course and term (what every page of it shows), or None."""
    return ClassSession.objects.select_related("section__course", "section__term").filter(pk=session_id).first()


def class_sessions_with_check_ins(*, viewer: User, section: Section) -> QuerySet[ClassSession]:
    """The section's sessions in order, each annotated `checked_in` (present or late): one query."""
    return (
        class_sessions_visible_to(viewer)
        .filter(section=section)
        .annotate(checked_in=Count("records", filter=Q(records__status__in=ATTENDED)))
        .order_by("starts_at")
    )


def class_sessions_of_sections(*, viewer: User, section_ids: list[int]) -> QuerySet[ClassSession]:
    """The sessions of those sections, in the order they start."""
    return class_sessions_visible_to(viewer).filter(section_id__in=section_ids).order_by("starts_at")


def class_sessions_open_for(*, student: Student) -> QuerySet[ClassSession]:
    """Sessions open for check-in now, of the sections the student is enrolled in."""
    return (
        ClassSession.objects.filter(
            state=ClassSession.State.OPEN,
            section__enrollments__student=student,
            section__enrollments__status=Enrollment.Status.ENROLLED,
        )
        .filter(_for_student(student))
        .select_related("section__course", "section__term")
    )


def session_records(*, viewer: User, session: ClassSession) -> QuerySet[AttendanceRecord]:
    return records_visible_to(viewer).filter(session=session)


def session_roster(*, session: ClassSession) -> list[Student]:
    """The students enrolled at the session, by name."""
    return list(
        enrolled_at_session(session)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "student_number")
        .distinct()
    )


def student_enrollments_in_term(*, viewer: User, student: Student, term: Term) -> QuerySet[Enrollment]:
    """The student's enrollments of the term that still count (not dropped), by course and section."""
    return (
        enrollments_visible_to(viewer)
        .filter(student=student, section__term=term)
        .exclude(status=Enrollment.Status.DROPPED)
        .order_by("section__course__code", "section__code")
    )


def student_records(*, viewer: User, student: Student) -> QuerySet[AttendanceRecord]:
    return records_visible_to(viewer).filter(student=student)


def student_records_in_sections(
    *, viewer: User, student: Student, section_ids: list[int]
) -> QuerySet[AttendanceRecord]:
    """The student's records of those sections' sessions, with their excuse."""
    return (
        student_records(viewer=viewer, student=student)
        .filter(session__section_id__in=section_ids)
        .select_related("excuse")
    )


def section_record_statuses(*, viewer: User, section: Section) -> dict[tuple[int, int], str]:
    """(session id, student id) -> the record's status, or "voided": one query."""
    return {
        (session_id, student_id): "voided" if voided else status
        for session_id, student_id, status, voided in records_visible_to(viewer)
        .filter(session__section=section)
        .values_list("session_id", "student_id", "status", "voided")
    }


def section_proxy_flag_counts(*, section: Section) -> dict[int, int]:
    """Student id -> how many proxy flags their check-ins (not voided) in the section raised."""
    return dict(
        ProxyFlag.objects.filter(record__session__section=section, record__voided=False)
        .values("record__student_id")
        .annotate(n=Count("pk"))
        .values_list("record__student_id", "n")
    )


def absence_excuses_of_sections_taught_by(*, lecturer: User | None) -> QuerySet[AbsenceExcuse]:
    """Excuses for absences in sections `lecturer` teaches; None: every excuse."""
    excuses = AbsenceExcuse.objects.select_related(
        "record__session__section__course", "record__session__section__term", "record__student__user"
    )
    if lecturer is None:
        return excuses
    return excuses.filter(record__session__section__lecturers=lecturer)


# --- For the "today" page ---------------------------------------------------------------------


def _local_day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """The day's first moment and the next day's, in the campus's time zone (a class at 00:30 is today's)."""
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    return start, timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))


def class_sessions_taught_by(lecturer: User) -> QuerySet[ClassSession]:
    """Sessions of the sections `lecturer` teaches, each with `checked_in` (present or late)."""
    # A subquery, not a join through the lecturers: a session of a section taught by two is listed once.
    taught = Section.lecturers.through.objects.filter(section_id=OuterRef("section_id"), user_id=lecturer.pk)
    return (
        ClassSession.objects.filter(Exists(taught))
        .select_related("section__course", "section__term")
        .annotate(checked_in=Count("records", filter=Q(records__status__in=ATTENDED)))
    )


def class_sessions_today_for(*, lecturer: User, day: datetime.date) -> QuerySet[ClassSession]:
    """The lecturer's sessions on `day` (local time), cancelled ones too (they say so), in order."""
    start, end = _local_day_bounds(day)
    return class_sessions_taught_by(lecturer).filter(starts_at__gte=start, starts_at__lt=end).order_by("starts_at")


def class_sessions_next_for(*, lecturer: User, day: datetime.date, limit: int = 5) -> QuerySet[ClassSession]:
    """The lecturer's next `limit` sessions after `day`, not cancelled."""
    _, end = _local_day_bounds(day)
    return (
        class_sessions_taught_by(lecturer)
        .filter(starts_at__gte=end)
        .exclude(state=ClassSession.State.CANCELLED)
        .order_by("starts_at")[:limit]
    )


def class_sessions_today_of_student(*, student: Student, day: datetime.date) -> QuerySet[ClassSession]:
    """Sessions on `day` (local time) of the sections the student is enrolled in, not cancelled, in order."""
    start, end = _local_day_bounds(day)
    enrolled = Enrollment.objects.filter(
        section_id=OuterRef("section_id"), student=student, status=Enrollment.Status.ENROLLED
    )
    return (
        ClassSession.objects.filter(Exists(enrolled), starts_at__gte=start, starts_at__lt=end)
        .filter(_for_student(student))
        .exclude(state=ClassSession.State.CANCELLED)
        .select_related("section__course", "section__term")
        .order_by("starts_at")
    )


# --- Taking attendance --------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStatus:
    """A mark a lecturer may give in a session. `kind` is what the rate counts it as."""

    code: str
    label: str
    acronym: str
    kind: str
    points: int | None


def session_statuses(session: ClassSession) -> list[SessionStatus]:
    """The marks offered in the session, in the order shown. For now the four built-in statuses
    everywhere; per-department status sets will answer here instead."""
    return [
        SessionStatus(Status.PRESENT, _("Present"), pgettext("attendance status letter", "P"), Status.PRESENT, 2),
        SessionStatus(Status.LATE, _("Late"), pgettext("attendance status letter", "L"), Status.LATE, 1),
        SessionStatus(Status.ABSENT, _("Absent"), pgettext("attendance status letter", "A"), Status.ABSENT, 0),
        SessionStatus(Status.EXCUSED, _("Excused"), pgettext("attendance status letter", "E"), Status.EXCUSED, None),
    ]


def session_marks(session: ClassSession) -> dict[int, AttendanceRecord]:
    """Student id -> their record in the session (only the fields a marking page shows): one query."""
    records = AttendanceRecord.objects.filter(session=session).only(
        "student_id", "status", "voided", "method", "recorded_at"
    )
    return {record.student_id: record for record in records}


def class_sessions_not_taken_for(lecturer: User) -> QuerySet[ClassSession]:
    """The lecturer's sessions that ended without attendance being taken, most recent first: each
    waits for them to take attendance or cancel it."""
    return (
        ClassSession.objects.select_related("section__course", "section__term")
        .filter(section__lecturers=lecturer, state=State.NOT_TAKEN)
        .order_by("-starts_at", "-pk")
    )


def session_unmarked(session: ClassSession) -> QuerySet[Student]:
    """Students enrolled at the session who have no record in it: those closing marks absent."""
    return enrolled_at_session(session).exclude(attendance_records__session=session)


def class_session_never_taken(session: ClassSession) -> bool:
    """Scheduled, never opened and nothing recorded: closing it now records it as not taken."""
    return (
        session.state == State.SCHEDULED
        and session.opened_at is None
        and not AttendanceRecord.objects.filter(session=session).exists()
    )


def session_marking_roster(session: ClassSession) -> list[Student]:
    """The students enrolled at the session in the roster grid's order (student number): one query."""
    return list(enrolled_at_session(session).select_related("user").order_by("student_number").distinct())


# --- Groups of a section's students, its network rule ------------------------------------------


def section_groups(section: Section) -> QuerySet[SectionGroup]:
    """The section's groups by name, each with `member_count` and `session_count`: one query."""
    return (
        SectionGroup.objects.filter(section=section)
        .annotate(member_count=Count("members", distinct=True), session_count=Count("class_sessions", distinct=True))
        .order_by("name")
    )


def section_group_get(*, group_id: int) -> SectionGroup | None:
    return SectionGroup.objects.select_related("section__course", "section__term").filter(pk=group_id).first()


def section_group_students(group: SectionGroup) -> tuple[list[Student], list[Student]]:
    """(members, the section's other enrolled students), each by name: two queries."""
    enrolled = (
        Student.objects.filter(enrollments__section_id=group.section_id, enrollments__status=Enrollment.Status.ENROLLED)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "student_number")
        .distinct()
    )
    in_group = SectionGroupMember.objects.filter(group=group, student=OuterRef("pk"))
    rows = list(enrolled.annotate(in_group=Exists(in_group)))
    members = list(
        Student.objects.filter(group_memberships__group=group)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "student_number")
    )
    return members, [student for student in rows if not student.in_group]


def section_network_list(section: Section) -> list[str]:
    """The section's own allowed networks (empty: the campus list applies)."""
    return SectionNetworkRule.objects.filter(section=section).values_list("networks", flat=True).first() or []


def section_group_memberships(section: Section) -> set[tuple[int, int]]:
    """(group id, student id) of every membership in the section's groups: one query."""
    return set(SectionGroupMember.objects.filter(group__section=section).values_list("group_id", "student_id"))
