"""Lecturers: a section's roster grid (students by sessions) and its CSV."""

import csv
import re
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from accounts.models import User
from attendance.models import ClassSession
from attendance.selectors import (
    AttendanceRate,
    attendance_rates_for_section,
    class_sessions_of_sections,
    section_proxy_flag_counts,
    section_record_statuses,
)
from attendance.views.access import lecturer_required, taught_section_or_404
from campusiq.core.admin import formula_neutralise
from students.models import Section, Student

State = ClassSession.State


@dataclass(frozen=True)
class GridCell:
    session: ClassSession
    status: str  # present, late, absent, excused, voided, or "" without a record
    letter: str
    label: str


@dataclass(frozen=True)
class GridRow:
    rate: AttendanceRate
    cells: list[GridCell]
    flags: int

    @property
    def student(self) -> Student:
        return self.rate.enrollment.student

    @property
    def rate_percent(self) -> str | None:
        return None if self.rate.rate is None else f"{self.rate.rate * 100:.0f}"

    @property
    def below_minimum(self) -> bool:
        return self.rate.rate is not None and self.rate.rate < self.rate.minimum


def _grid_cells() -> dict[str, tuple[str, str]]:
    words = {
        "present": (pgettext("attendance status letter", "P"), _("present")),
        "late": (pgettext("attendance status letter", "L"), _("late")),
        "absent": (pgettext("attendance status letter", "A"), _("absent")),
        "excused": (pgettext("attendance status letter", "E"), _("excused")),
        "voided": (pgettext("attendance status letter", "V"), _("check-in voided")),
        "": ("\u2013", _("no record")),
    }
    return {status: (letter, label) for status, (letter, label) in words.items()}


def _grid(user: User, section: Section) -> tuple[list[ClassSession], list[GridRow]]:
    """Sessions (columns) and one row per student with their rate: four queries for any size."""
    sessions = list(class_sessions_of_sections(viewer=user, section_ids=[section.pk]))
    rates = attendance_rates_for_section(section)
    statuses = section_record_statuses(viewer=user, section=section)
    flags = section_proxy_flag_counts(section=section)
    words = _grid_cells()

    def cell(session: ClassSession, student_id: int) -> GridCell:
        status = statuses.get((session.pk, student_id), "")
        return GridCell(session, status, *words[status])

    rows = [
        GridRow(
            rate=rate,
            cells=[cell(session, rate.enrollment.student_id) for session in sessions],
            flags=flags.get(rate.enrollment.student_id, 0),
        )
        for rate in rates
    ]
    return sessions, rows


@require_GET
@lecturer_required
def section_roster(request: HttpRequest, section_id: int) -> HttpResponse:
    section = taught_section_or_404(request.user, section_id)
    sessions, rows = _grid(request.user, section)
    return render(
        request,
        "attendance/roster.html",
        {"section": section, "sessions": sessions, "rows": rows},
    )


@require_GET
@lecturer_required
def section_roster_csv(request: HttpRequest, section_id: int) -> HttpResponse:
    section = taught_section_or_404(request.user, section_id)
    sessions, rows = _grid(request.user, section)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"attendance-{section.course.code}-{section.code}-{section.term.name}"
    response["Content-Disposition"] = f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]+", "-", filename)}.csv"'
    writer = csv.writer(response)
    session_headers = [
        f"{timezone.localtime(s.starts_at):%Y-%m-%d %H:%M}" + (" (cancelled)" if s.state == State.CANCELLED else "")
        for s in sessions
    ]
    writer.writerow(
        [
            "student_number",
            "name",
            "email",
            "rate",
            "minimum",
            "present",
            "late",
            "absent",
            "excused",
            "cannot_reach_minimum",
            "proxy_flags",
            *session_headers,
        ]
    )
    for row in rows:
        rate, student = row.rate, row.student
        cells = [
            student.student_number,
            student.user.get_full_name(),
            student.user.email,
            "" if rate.rate is None else str(rate.rate),
            str(rate.minimum),
            rate.attended - rate.late,
            rate.late,
            rate.absent,
            rate.excused,
            "yes" if rate.cannot_reach_minimum else "no",
            row.flags,
            *(cell.status for cell in row.cells),
        ]
        writer.writerow([formula_neutralise(cell) for cell in cells])
    return response
