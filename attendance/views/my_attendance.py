"""Students: their attendance of the term, a strip of squares per course, and their absences."""

import math
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from attendance.forms import ExcuseForm
from attendance.models import AttendanceRecord, ClassSession
from attendance.selectors import (
    AttendanceRate,
    attendance_rates,
    class_sessions_of_sections,
    student_enrollments_in_term,
    student_records_in_sections,
)
from attendance.views.access import own_student, student_required
from students.models import Enrollment
from students.selectors import term_current

Status = AttendanceRecord.Status
State = ClassSession.State


@dataclass(frozen=True)
class StripCell:
    session: ClassSession
    kind: str  # present, late, excused, absent, missing (held, no record yet), upcoming, cancelled, not_taken
    label: str
    letter: str
    x: int
    y: int


@dataclass(frozen=True)
class CourseAttendance:
    rate: AttendanceRate
    cells: list[StripCell]
    width: int
    height: int

    @property
    def enrollment(self) -> Enrollment:
        return self.rate.enrollment

    @property
    def present(self) -> int:
        return self.rate.attended - self.rate.late

    @property
    def rate_percent(self) -> str | None:
        return None if self.rate.rate is None else f"{self.rate.rate * 100:.0f}"

    @property
    def minimum_percent(self) -> str:
        return f"{self.rate.minimum * 100:.0f}"

    @property
    def below_minimum(self) -> bool:
        return self.rate.rate is not None and self.rate.rate < self.rate.minimum


STRIP_PER_ROW = 15
STRIP_CELL = 20
STRIP_GAP = 4


def _strip_kinds() -> dict[str, tuple[str, str]]:
    return {
        "present": (_("present"), pgettext("attendance status letter", "P")),
        "late": (_("late"), pgettext("attendance status letter", "L")),
        "excused": (_("excused"), pgettext("attendance status letter", "E")),
        "absent": (_("absent"), pgettext("attendance status letter", "A")),
        "missing": (_("no check-in"), "\u2013"),
        "upcoming": (_("upcoming"), ""),
        "cancelled": (_("cancelled"), "\u00d7"),
        "not_taken": (_("attendance not taken"), "\u00d7"),
    }


def _strip(
    enrollment: Enrollment, sessions: list[ClassSession], records: dict[int, AttendanceRecord], now
) -> list[StripCell]:
    """One square per session of the section that concerns the student, in order: no queries."""
    kinds = _strip_kinds()
    cells = []
    for session in sessions:
        day = timezone.localtime(session.starts_at).date()
        if day < enrollment.enrolled_on or (enrollment.ended_on and day >= enrollment.ended_on):
            continue
        record = records.get(session.pk)
        if session.state in (State.CANCELLED, State.NOT_TAKEN):
            kind = session.state
        elif record is not None:
            kind = "absent" if record.voided else record.status
        elif session.starts_at <= now:
            kind = "missing"
        else:
            kind = "upcoming"
        label, letter = kinds[kind]
        index = len(cells)
        cells.append(
            StripCell(
                session=session,
                kind=kind,
                label=label,
                letter=letter,
                x=(index % STRIP_PER_ROW) * (STRIP_CELL + STRIP_GAP),
                y=(index // STRIP_PER_ROW) * (STRIP_CELL + STRIP_GAP),
            )
        )
    return cells


@require_GET
@student_required
def my_attendance(request: HttpRequest) -> HttpResponse:
    student = own_student(request.user)
    term = term_current()
    enrollments = student_enrollments_in_term(viewer=request.user, student=student, term=term)
    rates = attendance_rates(enrollments) if term is not None else []
    section_ids = [row.enrollment.section_id for row in rates]
    sessions_by_section: dict[int, list[ClassSession]] = {}
    for session in class_sessions_of_sections(viewer=request.user, section_ids=section_ids):
        sessions_by_section.setdefault(session.section_id, []).append(session)
    records = {
        record.session_id: record
        for record in student_records_in_sections(viewer=request.user, student=student, section_ids=section_ids)
    }
    now = timezone.now()
    courses = []
    for row in rates:
        cells = _strip(row.enrollment, sessions_by_section.get(row.enrollment.section_id, []), records, now)
        rows = max(math.ceil(len(cells) / STRIP_PER_ROW), 1)
        courses.append(
            CourseAttendance(
                rate=row,
                cells=cells,
                width=min(len(cells), STRIP_PER_ROW) * (STRIP_CELL + STRIP_GAP) or STRIP_CELL,
                height=rows * (STRIP_CELL + STRIP_GAP),
            )
        )
    absences = sorted(
        (
            record
            for record in records.values()
            if (record.status == Status.ABSENT or getattr(record, "excuse", None) is not None)
            and record.session.state != State.CANCELLED
        ),
        key=lambda record: record.session.starts_at,
        reverse=True,
    )
    return render(
        request,
        "attendance/my_attendance.html",
        {"student": student, "term": term, "courses": courses, "absences": absences, "excuse_form": ExcuseForm()},
    )
