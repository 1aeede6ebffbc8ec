"""The signed-in home, "Today": one part per role the person holds, each read from its app's selectors.
Each part costs a fixed number of queries, whatever the number of sessions, courses or advisees."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from accounts.access import is_registry_staff
from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles
from attendance.models import AbsenceExcuse, ClassSession
from attendance.selectors import (
    AttendanceRate,
    absence_excuses_of_sections_taught_by,
    attendance_rates,
    class_sessions_next_for,
    class_sessions_not_taken_for,
    class_sessions_today_for,
    class_sessions_today_of_student,
    student_enrollments_in_term,
)
from campusiq.core.imports import import_jobs_recent
from predictions.models import Intervention, RiskScore, ScoringRun
from predictions.selectors import (
    interventions_visible_to,
    latest_run,
    risk_scores_newly_high,
    risk_scores_visible_to,
    scoring_runs_latest,
)
from students.models import Student
from students.selectors import CourseStanding, course_standings, students_visible_to, term_current

State = ClassSession.State
INTERVENTIONS_SHOWN = 10
IMPORT_JOBS_SHOWN = 5


@dataclass(frozen=True)
class LecturerSession:
    session: ClassSession
    # "open" (one click opens and shows the code), "show" (already open), "later" (too early to open),
    # "record" (closed, cancelled, or over without being opened)
    action: str


@dataclass(frozen=True)
class LecturerToday:
    today: list[LecturerSession]
    upcoming: list[ClassSession]
    not_taken: list[ClassSession]
    excuses_pending: int


@dataclass(frozen=True)
class StudentCourse:
    standing: CourseStanding
    attendance: AttendanceRate

    @property
    def rate_percent(self) -> str | None:
        rate = self.attendance.rate
        return None if rate is None else f"{rate * 100:.0f}"


@dataclass(frozen=True)
class StudentToday:
    classes: list[ClassSession]
    courses: list[StudentCourse]

    @property
    def check_in_open(self) -> bool:
        return any(session.state == State.OPEN for session in self.classes)


@dataclass(frozen=True)
class AdvisorToday:
    run: ScoringRun | None
    newly_high: list[RiskScore]
    open_interventions: list[Intervention]  # the oldest first
    open_count: int

    @property
    def open_not_shown(self) -> int:
        return self.open_count - len(self.open_interventions)


@dataclass(frozen=True)
class RegistrarToday:
    excuses_pending: int
    runs: list[ScoringRun]
    import_jobs: list[dict]  # campusiq.core.imports.import_jobs_recent


@dataclass(frozen=True)
class Today:
    day: datetime.date
    lecturer: LecturerToday | None = None
    student: StudentToday | None = None
    advisor: AdvisorToday | None = None
    registrar: RegistrarToday | None = None


def _session_action(session: ClassSession, now: datetime.datetime) -> str:
    if session.state == State.OPEN:
        return "show"
    opens_at = session.starts_at - datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES)
    if session.state != State.SCHEDULED or now > session.ends_at:
        return "record"
    return "open" if now >= opens_at else "later"


def _pending(excuses) -> int:
    return excuses.filter(state=AbsenceExcuse.State.SUBMITTED).count()


def lecturer_today(user: User, day: datetime.date) -> LecturerToday:
    now = timezone.now()
    return LecturerToday(
        today=[
            LecturerSession(session, _session_action(session, now))
            for session in class_sessions_today_for(lecturer=user, day=day)
        ],
        upcoming=list(class_sessions_next_for(lecturer=user, day=day)),
        not_taken=list(class_sessions_not_taken_for(user)),
        excuses_pending=_pending(absence_excuses_of_sections_taught_by(lecturer=user)),
    )


def student_today(user: User, student: Student, day: datetime.date) -> StudentToday:
    term = term_current(day)
    classes = list(class_sessions_today_of_student(student=student, day=day))
    if term is None:
        return StudentToday(classes=classes, courses=[])
    rates = {
        rate.enrollment.section_id: rate
        for rate in attendance_rates(student_enrollments_in_term(viewer=user, student=student, term=term))
    }
    courses = [
        StudentCourse(standing=standing, attendance=rates[standing.enrollment.section_id])
        for standing in course_standings(student=student, term=term)
        # Dropped courses have no attendance that counts; they are not today's business.
        if standing.enrollment.section_id in rates
    ]
    return StudentToday(classes=classes, courses=courses)


def advisor_today(user: User, day: datetime.date) -> AdvisorToday:
    term = term_current(day)
    run = latest_run(term) if term is not None else None
    # Open whatever their term: an intervention left open last term still waits for its outcome.
    open_interventions = interventions_visible_to(user).filter(student__advisor=user, closed_at__isnull=True)
    newly_high = []
    if run is not None:
        advisees_scores = risk_scores_visible_to(user).filter(student__advisor=user)
        newly_high = list(risk_scores_newly_high(advisees_scores, run))
    return AdvisorToday(
        run=run,
        newly_high=newly_high,
        open_interventions=list(open_interventions.order_by("created_at", "pk")[:INTERVENTIONS_SHOWN]),
        open_count=open_interventions.count(),
    )


def registrar_today() -> RegistrarToday:
    return RegistrarToday(
        excuses_pending=_pending(absence_excuses_of_sections_taught_by(lecturer=None)),
        runs=list(scoring_runs_latest()),
        import_jobs=import_jobs_recent(IMPORT_JOBS_SHOWN),
    )


def today_for(user: User) -> Today:
    """Each part of the page the user's roles call for (a lecturer who advises gets both)."""
    day = timezone.localdate()
    roles = user_roles(user)
    student = None
    if Role.STUDENT in roles:
        student = students_visible_to(user).filter(user=user).first()
    return Today(
        day=day,
        lecturer=lecturer_today(user, day) if Role.LECTURER in roles else None,
        student=student_today(user, student, day) if student is not None else None,
        advisor=advisor_today(user, day) if Role.ADVISOR in roles else None,
        registrar=registrar_today() if is_registry_staff(user) else None,
    )
