"""Reads of attendance, and the one definition of the attendance rate (docs/ATTENDANCE.md):

    rate = (present + late) / (sessions held since the student enrolled - excused)

"Held" = sessions of the section (for the whole section, or for a group the student is a member of),
neither cancelled nor not taken, that started on or after the enrolment day, up to `as_of` (and, for a
student who left, before the day they left). Cancelled and not-taken sessions count for nobody; a voided
check-in is an absence. No held session yet: the rate is None.
"""

import datetime
import math
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, Min, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles
from attendance.models import (
    BUILT_IN_STATUSES,
    AbsenceExcuse,
    AdvanceAbsence,
    AttendanceRecord,
    AttendanceStatus,
    AttendanceStatusSet,
    AttendanceWarningRule,
    CalendarFeed,
    ClassSession,
    ProxyFlag,
    SectionAttendanceGrade,
    SectionGroup,
    SectionGroupMember,
    SectionNetworkRule,
)
from students.models import Enrollment, Section, Student, Term
from students.selectors import enrollments_visible_to, student_rows_visible_to, term_current

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


# --- Status sets ---------------------------------------------------------------------------------


def status_set_for_section(section_id: int) -> AttendanceStatusSet | None:
    """The section's own set, else its department's, else the campus default (None: no set at all),
    with its statuses: two queries."""
    sets = AttendanceStatusSet.objects.filter(
        Q(section_id=section_id) | Q(department__courses__sections=section_id) | Q(is_campus_default=True)
    ).prefetch_related("statuses")
    return min(sets, key=lambda s: (s.section_id is None, s.department_id is None), default=None)


def section_statuses(section_id: int) -> list[AttendanceStatus]:
    """The statuses a lecturer may give in the section, in their order."""
    status_set = status_set_for_section(section_id)
    if status_set is None:
        return [
            AttendanceStatus(code=code, label=label, acronym=acronym, kind=kind, points=points, order=order)
            for order, (code, label, acronym, kind, points) in enumerate(BUILT_IN_STATUSES)
        ]
    return list(status_set.statuses.all())


def session_statuses(session: ClassSession) -> list[AttendanceStatus]:
    """The statuses available for a session (its section's set), in order: each has .code, .label,
    .acronym, .kind, .points (None for excused: not counted)."""
    return section_statuses(session.section_id)


def status_defaults_by_kind(statuses: list[AttendanceStatus]) -> dict[str, AttendanceStatus]:
    """Kind -> the set's first status of that kind: what a record with no status_choice stands for."""
    defaults: dict[str, AttendanceStatus] = {}
    for status in statuses:
        defaults.setdefault(status.kind, status)
    return defaults


def section_attendance_grade_get(section: Section) -> SectionAttendanceGrade | None:
    """The section's attendance grade with its assessment, or None where attendance is not graded."""
    return SectionAttendanceGrade.objects.select_related("assessment").filter(section=section).first()


def record_code_reader(statuses: list[AttendanceStatus]) -> Callable[[AttendanceRecord], str]:
    """Reads a record's mark as a code of these statuses: the status chosen, else its kind's first."""
    defaults = status_defaults_by_kind(statuses)
    codes_by_id = {status.pk: status.code for status in statuses if status.pk}

    def code_of(record: AttendanceRecord) -> str:
        if record.status_choice_id is None:
            return defaults[record.status].code if record.status in defaults else record.status
        return codes_by_id.get(record.status_choice_id, record.status)

    return code_of


def statuses_in_use(status_ids: list[int]) -> set[int]:
    """Those of the statuses that some record was given: one query."""
    return set(
        AttendanceRecord.objects.filter(status_choice_id__in=status_ids)
        .values_list("status_choice_id", flat=True)
        .distinct()
    )


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


def section_series(section: Section) -> list[dict]:
    """The section's series, each with its first start and how many of its sessions are still
    scheduled, in the order they begin: one query."""
    return list(
        ClassSession.objects.filter(section=section, series__isnull=False)
        .values("series")
        .annotate(
            first_start=Min("starts_at"),
            scheduled=Count("pk", filter=Q(state=ClassSession.State.SCHEDULED)),
        )
        .order_by("first_start")
    )


def series_sessions_from(
    *, section: Section, series: uuid.UUID, from_date: datetime.date | None = None
) -> QuerySet[ClassSession]:
    """The section's sessions of one series in order, those starting on or after `from_date` if given."""
    sessions = ClassSession.objects.filter(section=section, series=series).order_by("starts_at")
    if from_date is not None:
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        sessions = sessions.filter(starts_at__gte=datetime.datetime.combine(from_date, datetime.time(), tzinfo=zone))
    return sessions


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


def session_marks(session: ClassSession) -> dict[int, AttendanceRecord]:
    """Student id -> their record in the session (only the fields a marking page shows): one query."""
    records = AttendanceRecord.objects.filter(session=session).only(
        "student_id", "status", "status_choice_id", "voided", "method", "recorded_at"
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


# --- Calendar feeds ------------------------------------------------------------------------------


def calendar_feed_active(user: User) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(user=user, revoked_at__isnull=True).first()


def calendar_terms(today: datetime.date | None = None) -> list[Term]:
    """The current term and the one after it: what a timetable feed covers."""
    current = term_current(today)
    if current is None:
        return []
    following = Term.objects.filter(start_date__gt=current.start_date).order_by("start_date").first()
    return [current, *([following] if following else [])]


def calendar_sessions_for(user: User, *, today: datetime.date | None = None) -> QuerySet[ClassSession]:
    """The sessions of the user's own timetable in the current and next term: the sections they are
    enrolled in (their own group's sessions only) and the sections they teach, cancelled ones too (a
    feed must say they are off)."""
    enrolled = Enrollment.objects.filter(
        section_id=OuterRef("section_id"), student__user=user, status=Enrollment.Status.ENROLLED
    )
    taught = Section.lecturers.through.objects.filter(section_id=OuterRef("section_id"), user_id=user.pk)
    # A lab group's session is on the timetable of its members only (and of the section's lecturers).
    member = SectionGroupMember.objects.filter(group=OuterRef("group"), student__user=user)
    return (
        ClassSession.objects.filter(section__term__in=calendar_terms(today))
        .filter(Exists(taught) | (Exists(enrolled) & (Q(group__isnull=True) | Exists(member))))
        .select_related("section__course", "section__term")
        .order_by("starts_at", "pk")
    )


# --- Absences reported in advance ----------------------------------------------------------------


def advance_absences_excusing(session: ClassSession) -> set[int]:
    """Students whose approved advance absence covers the session's day (for its section, or for all
    their sections in its term): closing marks them excused instead of absent."""
    day = timezone.localtime(session.starts_at).date()
    return set(
        AdvanceAbsence.objects.filter(
            Q(section_id=session.section_id) | Q(section=None, term_id=session.section.term_id),
            state=AdvanceAbsence.State.APPROVED,
            first_day__lte=day,
            last_day__gte=day,
        ).values_list("student_id", flat=True)
    )


def advance_absences_of_student(student: Student) -> QuerySet[AdvanceAbsence]:
    return AdvanceAbsence.objects.filter(student=student).select_related("section__course", "term")


def advance_absences_decidable_by(user: User) -> QuerySet[AdvanceAbsence]:
    """Reports the user may decide: those for a section they teach, or for all the sections of a student
    they teach in that term; registry staff: all."""
    absences = AdvanceAbsence.objects.select_related("section__course", "term", "student__user")
    if is_registry_staff(user):
        return absences
    if not user.is_authenticated or Role.LECTURER not in user_roles(user):
        return absences.none()
    taught = Enrollment.objects.filter(
        student=OuterRef("student_id"), section__term=OuterRef("term_id"), section__lecturers=user
    )
    return absences.filter(Q(section__lecturers=user) | (Q(section=None) & Exists(taught))).distinct()


def advance_absence_attachment_viewable(*, viewer: User, absence_id: int) -> AdvanceAbsence | None:
    """The report if the viewer may open its attachment (the student, who may decide it), else None."""
    if viewer.is_authenticated:
        own = AdvanceAbsence.objects.filter(pk=absence_id, student__user=viewer).first()
        if own is not None:
            return own
    return advance_absences_decidable_by(viewer).filter(pk=absence_id).first()


# --- Warnings ------------------------------------------------------------------------------------


def warning_rules_for_section(section: Section) -> list[AttendanceWarningRule]:
    """The rules that apply to the section: its own if it has any, else its department's, else the
    campus-wide ones."""
    rules = list(
        AttendanceWarningRule.objects.filter(
            Q(section=section) | Q(department_id=section.course.department_id) | Q(section=None, department=None)
        )
    )
    for scope in (
        lambda r: r.section_id == section.pk,
        lambda r: r.department_id is not None,
        lambda r: r.section_id is None and r.department_id is None,
    ):
        if chosen := [rule for rule in rules if scope(rule)]:
            return chosen
    return []


@dataclass(frozen=True)
class WarningStanding:
    """A student's rate in a section, and their held sessions in order with their mark (None: none)."""

    rate: AttendanceRate
    sessions: list[tuple[ClassSession, str | None]]

    def missed(self) -> list[ClassSession]:
        return [session for session, status in self.sessions if status in (None, Status.ABSENT)]

    def missed_for(self, rule: AttendanceWarningRule) -> list[ClassSession] | None:
        """The sessions missed that make the rule warn the student, or None if it does not."""
        if rule.kind == AttendanceWarningRule.Kind.RATE_BELOW:
            rate = self.rate.rate
            return self.missed() if rate is not None and rate < rule.rate_below else None
        run: list[ClassSession] = []
        for session, status in self.sessions:
            # Only a closed session has its verdict; an excused one neither breaks a run nor extends it.
            if session.state != State.CLOSED or status == Status.EXCUSED:
                continue
            run = [*run, session] if status in (None, Status.ABSENT) else []
            if len(run) >= rule.absences_in_row:
                return run
        return None


def warning_standings(section: Section, *, as_of: datetime.datetime | None = None) -> list[WarningStanding]:
    """Every student's standing in the section, for the warning rules: three queries, whatever the size."""
    as_of = as_of or timezone.now()
    enrollments = Enrollment.objects.filter(section=section).exclude(status=Enrollment.Status.DROPPED)
    rates = attendance_rates(enrollments.select_related("student__advisor").order_by("pk"), as_of=as_of)
    held = list(
        ClassSession.objects.filter(section=section, starts_at__lte=as_of)
        .exclude(state__in=NOT_HELD)
        .select_related("section__course")
        .order_by("starts_at", "pk")
    )
    records = AttendanceRecord.objects.filter(session__in=held).order_by().values_list("student", "session", "status")
    marks = {(student, session): status for student, session, status in records}
    standings = []
    for rate in rates:
        enrollment = rate.enrollment
        left = enrollment.ended_on or datetime.date(9999, 12, 31)
        mine = [
            (session, marks.get((enrollment.student_id, session.pk)))
            for session in held
            if enrollment.enrolled_on <= timezone.localtime(session.starts_at).date() < left
        ]
        standings.append(WarningStanding(rate=rate, sessions=mine))
    return standings


def advance_absence_sections(*, student: Student, term: Term | None) -> QuerySet[Section]:
    """The sections a student may report an absence for: those they are enrolled in this term."""
    if term is None:
        return Section.objects.none()
    return (
        Section.objects.filter(term=term, enrollments__student=student, enrollments__status=Enrollment.Status.ENROLLED)
        .select_related("course", "term")
        .order_by("course__code", "code")
    )


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
