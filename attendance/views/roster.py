"""Lecturers: a section's roster grid (students by sessions), one session's column editable at a time
(saved through the same bulk service as the marking page), and its CSV and XLSX exports."""

import csv
import io
import re
from dataclasses import dataclass, replace

import tablib
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from attendance.forms import RosterRangeForm
from attendance.limits import marks_save_limits_enforce
from attendance.models import ClassSession
from attendance.selectors import (
    AttendanceRate,
    attendance_rates_for_section,
    class_sessions_of_sections,
    record_code_reader,
    section_group_memberships,
    section_proxy_flag_counts,
    section_record_statuses,
    session_marks,
    session_statuses,
)
from attendance.services import attendance_marks_save
from attendance.views.access import lecturer_required, taught_section_or_404
from attendance.views.taking import MarksInvalid, marks_refusal, posted_marks, posted_reason, saved_message
from campusiq.core.admin import formula_neutralise
from campusiq.core.errors import ServiceError
from students.models import Section, Student

State = ClassSession.State
# A cell of a group's session for a student outside the group: not held for them, nothing to mark.
NOT_THEIR_GROUP = "other_group"


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
    editing_code: str = ""  # the mark's code in the column being edited (a section's own status, say)

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
        NOT_THEIR_GROUP: ("\u00b7", _("another group's session")),
    }
    return {status: (letter, label) for status, (letter, label) in words.items()}


def _grid(
    user: User, section: Section, *, sessions_in: RosterRangeForm | None = None
) -> tuple[list[ClassSession], list[GridRow]]:
    """Sessions (columns, those of the chosen dates) and one row per student with their rate: five
    queries for any size."""
    sessions = class_sessions_of_sections(viewer=user, section_ids=[section.pk])
    if sessions_in is not None:
        sessions = sessions_in.filter_sessions(sessions)
    sessions = list(sessions)
    rates = attendance_rates_for_section(section)
    statuses = section_record_statuses(viewer=user, section=section)
    flags = section_proxy_flag_counts(section=section)
    members = section_group_memberships(section)
    words = _grid_cells()

    def cell(session: ClassSession, student_id: int) -> GridCell:
        if session.group_id and (session.group_id, student_id) not in members:
            return GridCell(session, NOT_THEIR_GROUP, *words[NOT_THEIR_GROUP])
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


def _roster_page(
    request: HttpRequest, section: Section, *, edit_id: int | None = None, error: str = "", reason: str = ""
) -> HttpResponse:
    sessions, rows = _grid(request.user, section)
    editing = next((s for s in sessions if s.pk == edit_id and s.state != State.CANCELLED), None)
    statuses = session_statuses(editing) if editing else []
    if editing:
        code_of, marks = record_code_reader(statuses), session_marks(editing)
        rows = [
            replace(row, editing_code=code_of(marks[row.student.pk]) if row.student.pk in marks else "") for row in rows
        ]
    return render(
        request,
        "attendance/roster.html",
        {
            "section": section,
            "sessions": sessions,
            "rows": rows,
            "editing": editing,
            "statuses": statuses,
            "range_form": RosterRangeForm(request.GET or None),
            "error": error,
            "reason": reason,
        },
        status=400 if error else 200,
    )


def _edit_id(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 18 else None


@require_http_methods(["GET", "POST"])
@lecturer_required
def section_roster(request: HttpRequest, section_id: int) -> HttpResponse:
    """GET: the grid (`?edit=<session id>`: that column as marks to change); POST: save that column."""
    section = taught_section_or_404(request.user, section_id)
    if request.method == "GET":
        return _roster_page(request, section, edit_id=_edit_id(request.GET.get("edit", "")))
    marks_save_limits_enforce(request)
    edit_id = _edit_id(request.POST.get("session", ""))
    session = next(
        (s for s in class_sessions_of_sections(viewer=request.user, section_ids=[section.pk]) if s.pk == edit_id),
        None,
    )
    reason = posted_reason(request.POST)
    try:
        if session is None:
            raise MarksInvalid(_("Choose a session of this section to change. Nothing was saved."))
        saved = attendance_marks_save(
            session=session, marks=posted_marks(request.POST), actor=request.user, reason=reason
        )
    except MarksInvalid as invalid:
        return _roster_page(request, section, edit_id=edit_id, error=str(invalid), reason=reason)
    except ServiceError as refused:
        return _roster_page(request, section, edit_id=edit_id, error=marks_refusal(refused), reason=reason)
    messages.success(request, saved_message(saved))
    return redirect(reverse("attendance:section-roster", args=[section.pk]) + f"#session-{session.pk}")


def _export_table(sessions: list[ClassSession], rows: list[GridRow]) -> tuple[list[str], list[list]]:
    """The exports' header and rows, every text cell a spreadsheet would run as a formula neutralised."""
    session_headers = [
        f"{timezone.localtime(s.starts_at):%Y-%m-%d %H:%M}" + (" (cancelled)" if s.state == State.CANCELLED else "")
        for s in sessions
    ]
    headers = [
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
    table = []
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
        table.append([formula_neutralise(cell) for cell in cells])
    return headers, table


def _csv(headers: list[str], table: list[list]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(table)
    return out.getvalue().encode()


def _xlsx(headers: list[str], table: list[list]) -> bytes:
    return tablib.Dataset(*table, headers=headers, title="Attendance").export("xlsx")


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", _csv),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _xlsx),
}


def _export(request: HttpRequest, section_id: int, extension: str) -> HttpResponse:
    """The grid as a file (the sessions from/to the days asked, if any), or the grid page saying
    what is wrong with the range."""
    section = taught_section_or_404(request.user, section_id)
    form = RosterRangeForm(request.GET or None)
    if request.GET and not form.is_valid():
        return _roster_page(request, section, error=_("Choose a valid date range. Nothing was exported."))
    sessions, rows = _grid(request.user, section, sessions_in=form if request.GET else None)
    content_type, write = EXPORTS[extension]
    response = HttpResponse(write(*_export_table(sessions, rows)), content_type=content_type)
    filename = f"attendance-{section.course.code}-{section.code}-{section.term.name}"
    response["Content-Disposition"] = f'attachment; filename="{re.sub(r"[^A-Za-z0-9._-]+", "-", filename)}.{extension}"'
    return response


@require_GET
@lecturer_required
def section_roster_csv(request: HttpRequest, section_id: int) -> HttpResponse:
    return _export(request, section_id, "csv")


@require_GET
@lecturer_required
def section_roster_xlsx(request: HttpRequest, section_id: int) -> HttpResponse:
    return _export(request, section_id, "xlsx")
