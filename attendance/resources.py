"""The registrars' imports of class sessions and attendance marks (CSV or XLSX, in the admin), on the
pattern of students/resources.py: a dry run to preview, errors by row and column, the whole file one
transaction (one bad row and nothing is written), rows found by their natural keys, so importing the
same file again changes nothing.

Marks come in two shapes: long, one mark a row (student number, session, status), and the wide
"Export" report of Moodle's Attendance plugin (mod_attendance): a row per student, a column per
session headed by its date and time, the status acronym in each cell, summary columns beside them.
Either way every row is checked as it is read, and the marks are written at the end of the file by
attendance_marks_save, one call per session, so an imported mark obeys the rules of the marking page
and is audited like one.
"""

import csv
import datetime
import re
import zoneinfo
from typing import Any

import tablib
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from import_export.fields import Field
from import_export.widgets import DateWidget

from attendance.models import AttendanceRecord, ClassSession
from attendance.selectors import enrolled_at_session, session_statuses
from attendance.services import attendance_marks_save, class_session_cancel, class_session_create
from campusiq.core.admin import CampusCSV, ImportFileUnreadable, csv_bytes_decode
from campusiq.core.errors import ServiceError
from students.models import Student
from students.resources import ServiceImportResource, cells_required, section_lookup, student_lookup, text

State = ClassSession.State


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def time_read(raw: Any) -> datetime.time:
    """A time cell: "10:00" or "10.00" typed in a CSV, or a time stored in an XLSX."""
    if isinstance(raw, datetime.datetime):
        return raw.time()
    if isinstance(raw, datetime.time):
        return raw
    match = re.fullmatch(r"(\d{1,2})[:.](\d{2})(?::\d{2})?", str(raw).strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{raw!r} is not a time: write it as HH:MM, as in 09:30.")
    return datetime.time(int(match[1]), int(match[2]))


MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
# A session's start at the head of a cell or column: ISO ("2026-12-07 10:00"), day first with dots or
# slashes ("07.12.2026 10.00", "07/12/2026 10:00"), or mod_attendance's English "07 Dec 2026 10.00AM".
# Whatever follows (mod_attendance adds the group, "All students") is ignored.
DATETIME_PATTERNS = [
    (re.compile(r"\s*(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})[ T](?P<H>\d{1,2})[:.](?P<M>\d{2})"), False),
    (re.compile(r"\s*(?P<d>\d{1,2})[./](?P<m>\d{1,2})[./](?P<y>\d{4}),?\s+(?P<H>\d{1,2})[:.](?P<M>\d{2})"), False),
    (re.compile(r"\s*(?:[A-Za-z]{3}\.?\s+)?(?P<d>\d{1,2})\s+(?P<b>[A-Za-z]{3})\.?\s+(?P<y>\d{4})\s+"
                r"(?P<H>\d{1,2})[:.](?P<M>\d{2})\s*(?P<p>[AaPp][Mm])?"), True),
]  # fmt: skip


def session_start_read(raw: Any) -> datetime.datetime | None:
    """The aware start a cell or column header names, in the campus's time zone; None if it names none."""
    if isinstance(raw, datetime.datetime):  # an XLSX date-time cell
        return raw if timezone.is_aware(raw) else raw.replace(tzinfo=_zone())
    for pattern, named_month in DATETIME_PATTERNS:
        match = pattern.match(str(raw or ""))
        if match is None:
            continue
        month = MONTHS.get(match["b"].lower()) if named_month else int(match["m"])
        hour = int(match["H"])
        if named_month and match["p"]:
            hour = hour % 12 + (12 if match["p"].lower() == "pm" else 0)
        try:
            day = datetime.date(int(match["y"]), month or 0, int(match["d"]))
            return datetime.datetime.combine(day, datetime.time(hour, int(match["M"])), tzinfo=_zone())
        except ValueError:
            return None
    return None


class ClassSessionImportResource(ServiceImportResource):
    """One row per session (class_session_create): the section by course code, term name and section
    code (A when left empty), its day, start and end in the campus's time zone, the room, and the state,
    scheduled (the default) or cancelled. A session of the section starting at the same moment is the
    same session: unchanged, it is skipped; cancelled in the file, it is cancelled; other changes to an
    existing session are refused (no service moves a session)."""

    course = text("section__course__code", "course")
    term = text("section__term__name", "term")
    section = text("section__code", "section")
    date = Field(column_name="date", widget=DateWidget())
    start = Field(column_name="start")
    end = Field(column_name="end")
    room = text("room")
    state = text("state")

    import_columns = ("course", "term", "section", "date", "start", "end", "room", "state")
    choice_columns = {"state": State}

    class Meta:
        model = ClassSession
        fields = ("course", "term", "section", "date", "start", "end", "room", "state")

    @classmethod
    def import_allowed_values(cls) -> dict[str, list[str]]:
        return {"state": [State.SCHEDULED, State.CANCELLED]}

    def dehydrate_date(self, session: ClassSession) -> str:
        return f"{timezone.localtime(session.starts_at, _zone()):%Y-%m-%d}" if session.starts_at else ""

    def dehydrate_start(self, session: ClassSession) -> str:
        return f"{timezone.localtime(session.starts_at, _zone()):%H:%M}" if session.starts_at else ""

    def dehydrate_end(self, session: ClassSession) -> str:
        return f"{timezone.localtime(session.ends_at, _zone()):%H:%M}" if session.ends_at else ""

    def row_parse(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, "course", "term", "date", "start", "end")
        section = section_lookup(cells, errors)
        times = {}
        for column in ("start", "end"):
            if cells[column]:
                try:
                    times[column] = time_read(cells[column])
                except ValueError as error:
                    errors.setdefault(column, []).append(str(error))
        state = cells["state"] or State.SCHEDULED
        if state not in (State.SCHEDULED, State.CANCELLED):
            errors.setdefault("state", []).append("An imported session is scheduled or cancelled.")
        if errors:
            raise ValidationError(errors)
        starts_at = datetime.datetime.combine(cells["date"], times["start"], tzinfo=_zone())
        ends_at = datetime.datetime.combine(cells["date"], times["end"], tzinfo=_zone())
        if ends_at <= starts_at:
            raise ValidationError({"end": ["The session must end after it starts."]})
        values = {"section": section, "starts_at": starts_at, "ends_at": ends_at, "room": cells["room"] or ""}
        values["state"] = state
        existing = ClassSession.objects.filter(section=section, starts_at=starts_at).first()
        if existing is not None:
            differs = [name for name in ("ends_at", "room") if getattr(existing, name) != values[name]]
            if differs:
                columns = ", ".join("end" if name == "ends_at" else name for name in differs)
                message = f"{existing} already exists with another {columns}: an import does not move it."
                raise ValidationError({NON_FIELD_ERRORS: [message]})
        return existing, values

    def row_changes(self, existing, values):
        if values["state"] == State.CANCELLED and existing.state != State.CANCELLED:
            return {"state": State.CANCELLED}
        return {}

    def row_write(self, existing, values, *, actor, file_name):
        reason = f"Imported from {file_name}" if file_name else "Imported"
        session = existing or class_session_create(
            section=values["section"],
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            room=values["room"],
            actor=actor,
        )
        if values["state"] == State.CANCELLED:
            session = class_session_cancel(session=session, actor=actor, reason=reason)
        return session


class MarksImportResource(ServiceImportResource):
    """What both shapes of a marks file share: each row is read into (session, student, status) marks,
    checked (session not cancelled, student enrolled on its day, status one the session offers), and
    kept; after the last row they are saved, one attendance_marks_save per session."""

    class Meta:
        model = AttendanceRecord

    def before_import(self, dataset, **kwargs):
        self._to_save: dict[int, dict[int, str]] = {}
        self._sessions: dict[int, ClassSession] = {}
        self._enrolled: dict[int, set[int]] = {}
        self._recorded: dict[int, dict[int, str]] = {}

    def _session_facts(self, session: ClassSession) -> None:
        """Who was enrolled at the session and the marks already there: read once per session."""
        if session.pk not in self._sessions:
            self._sessions[session.pk] = session
            self._enrolled[session.pk] = set(enrolled_at_session(session).values_list("pk", flat=True))
            self._recorded[session.pk] = dict(
                AttendanceRecord.objects.filter(session=session).values_list("student_id", "status")
            )

    def mark_check(self, session: ClassSession, student: Student, value: str) -> str:
        """The status code `value` names in the session (its acronym, code or label, any case), or
        ValueError saying what is wrong."""
        if session.state == State.CANCELLED:
            raise ValueError(f"The session {session} was cancelled.")
        self._session_facts(session)
        if student.pk not in self._enrolled[session.pk]:
            raise ValueError(f"{student.student_number} was not enrolled in {session.section} on the session's day.")
        wanted = value.strip().casefold()
        for status in session_statuses(session):
            if wanted in (str(status.acronym).casefold(), str(status.code).casefold(), str(status.label).casefold()):
                return status.code
        acronyms = ", ".join(str(status.acronym) for status in session_statuses(session))
        raise ValueError(f"{value!r} is not a status of this session: use one of {acronyms}.")

    def row_marks(self, cells: dict[str, Any]) -> list[tuple[ClassSession, Student, str]]:
        raise NotImplementedError

    def row_parse(self, cells):
        marks = self.row_marks(cells)
        changed = [
            (session, student, status)
            for session, student, status in marks
            if self._recorded[session.pk].get(student.pk) != status
        ]
        return None, {"marks": marks, "changed": changed}

    def skip_row(self, instance, original, row, import_validation_errors=None):
        return not self._pending[1]["changed"]

    def save_instance(self, instance, is_create, row, **kwargs):
        changed = self._pending[1]["changed"]
        for session, student, status in changed:
            self._to_save.setdefault(session.pk, {})[student.pk] = status
        # The preview shows the row's first changed mark (the records are written after the last row).
        instance.session, instance.student, instance.status = changed[0]

    def after_import(self, dataset, result, **kwargs):
        if result.has_errors() or result.has_validation_errors():
            return
        file_name = kwargs.get("file_name")
        reason = f"Imported from {file_name}" if file_name else "Imported"
        for session_id, marks in self._to_save.items():
            session = self._sessions[session_id]
            try:
                attendance_marks_save(session=session, marks=marks, actor=kwargs.get("user"), reason=reason)
            except ServiceError as error:
                raise ValidationError(f"{session}: {error.detail}") from error


class AttendanceMarkImportResource(MarksImportResource):
    """Long shape, one mark a row: student number; the session by course code, term name, section code
    (A when left empty) and its start ("2026-12-07 10:00", campus time); the status by its letter
    (P, L, A, E), code or name."""

    student_number = text("student__student_number", "student_number")
    course = text("session__section__course__code", "course")
    term = text("session__section__term__name", "term")
    section = text("session__section__code", "section")
    session = Field(attribute="session__starts_at", column_name="session")
    status = text("status")

    import_columns = ("student_number", "course", "term", "section", "session", "status")

    class Meta(MarksImportResource.Meta):
        name = "Marks, one a row (student_number, course, term, section, session, status)"
        fields = ("student_number", "course", "term", "section", "session", "status")

    def row_marks(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, "student_number", "course", "term", "session", "status")
        student = student_lookup(cells, errors)
        section = section_lookup(cells, errors)
        session = None
        if cells["session"]:
            starts_at = session_start_read(cells["session"])
            if starts_at is None:
                errors.setdefault("session", []).append(
                    f"{cells['session']!r} is not a session's start: write it as YYYY-MM-DD HH:MM."
                )
            elif section is not None:
                session = ClassSession.objects.filter(section=section, starts_at=starts_at).first()
                if session is None:
                    errors.setdefault("session", []).append(f"{section} has no session starting {cells['session']}.")
        if not errors and session is not None and student is not None:
            try:
                return [(session, student, self.mark_check(session, student, cells["status"]))]
            except ValueError as error:
                errors.setdefault("status", []).append(str(error))
        raise ValidationError(errors)


# mod_attendance's identity columns (Moodle's English names) and what each names in CampusIQ.
MOODLE_STUDENT_NUMBER = ("ID number", "Username")
MOODLE_EMAIL = ("Email address", "Email")
MOODLE_NAME_COLUMNS = ("Last name", "First name")


class ModAttendanceImportResource(MarksImportResource):
    """Wide shape: the "Export" of Moodle's Attendance plugin as it downloads it, the "Course:" and
    "Group:" lines above the table included. The student by "ID number" (their student number),
    "Username" (the same) or "Email address" (any case); each column headed by
    a date and time is a session: the one starting then in a section the student is enrolled in. A cell
    holds the status acronym (P, L, E, A); an empty cell or "?" is no mark. Names, groups and the
    summary columns (Taken sessions, Points, Percentage, counts per status) are not read."""

    id_number = Field(column_name="ID number")
    email = Field(column_name="Email address")
    last_name = Field(column_name="Last name")
    first_name = Field(column_name="First name")

    import_columns = ("id_number", "email", "last_name", "first_name")

    class Meta(MarksImportResource.Meta):
        name = "Moodle Attendance export (a row per student, a column per session)"
        fields = ("id_number", "email", "last_name", "first_name")

    @classmethod
    def import_template(cls) -> tablib.Dataset:
        headers = ["Last name", "First name", "ID number", "Email address", "07 Dec 2026 10.00AM All students"]
        return tablib.Dataset(headers=headers, title="mod_attendance export")

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        _header_row_find(dataset)
        self._session_columns = {
            header: start for header in dataset.headers or [] if (start := session_start_read(header)) is not None
        }
        starts = set(self._session_columns.values())
        self._sessions_at: dict[datetime.datetime, list[ClassSession]] = {}
        sessions = ClassSession.objects.filter(starts_at__in=starts).select_related("section__course", "section__term")
        for session in sessions:
            self._sessions_at.setdefault(session.starts_at, []).append(session)
        if not self._session_columns:
            raise ValidationError("No column is headed by a session's date and time (as in 07 Dec 2026 10.00AM).")
        if not {*MOODLE_STUDENT_NUMBER, *MOODLE_EMAIL} & set(dataset.headers):
            raise ValidationError("The file names no student: it needs an ID number, Username or Email address column.")

    def cells(self, row) -> dict[str, Any]:
        return {header: (str(value).strip() if value is not None else "") for header, value in row.items()}

    def get_import_fields(self):
        return [self.fields[name] for name in self.import_columns]

    def row_marks(self, cells):
        student = self._student_of(cells)
        enrolled_sections = set(student.enrollments.values_list("section_id", flat=True))
        marks, errors = [], {}
        for header, starts_at in self._session_columns.items():
            value = cells.get(header, "")
            if value in ("", "?"):
                continue
            candidates = [s for s in self._sessions_at.get(starts_at, []) if s.section_id in enrolled_sections]
            if len(candidates) != 1:
                problem = "no session" if not candidates else "several sessions"
                errors[header] = [f"{student.student_number} has {problem} of their sections at {header}."]
                continue
            try:
                marks.append((candidates[0], student, self.mark_check(candidates[0], student, value)))
            except ValueError as error:
                errors[header] = [str(error)]
        if errors:
            raise ValidationError(errors)
        return marks

    def _student_of(self, cells: dict[str, str]) -> Student:
        numbers = [cells[column] for column in MOODLE_STUDENT_NUMBER if cells.get(column)]
        # A Moodle username is often the person's email address.
        emails = [cells[column] for column in (*MOODLE_EMAIL, "Username") if "@" in cells.get(column, "")]
        if not numbers and not emails:
            raise ValidationError({NON_FIELD_ERRORS: ["The row names no student (ID number, Username or email)."]})
        same_email = Q()
        for email in emails:  # Moodle keeps an email as it was typed; CampusIQ's may differ in case
            same_email |= Q(user__email__iexact=email)
        found = Student.objects.filter(Q(student_number__in=numbers) | same_email).distinct()[:2]
        found = list(found)
        if len(found) != 1:
            who = ", ".join(numbers + emails)
            problem = "No student is" if not found else "Several students are"
            raise ValidationError({NON_FIELD_ERRORS: [f"{problem} {who}."]})
        return found[0]


MOODLE_COLUMNS = {name.casefold(): name for name in (*MOODLE_STUDENT_NUMBER, *MOODLE_EMAIL, *MOODLE_NAME_COLUMNS)}


def _moodle_headers(cells) -> list[str] | None:
    """The row's cells as headers, Moodle's columns in their English spelling whatever their case, if the
    row is the table's header (it names "Last name"); None otherwise."""
    headers = [str(cell or "").strip() for cell in cells]
    headers = [MOODLE_COLUMNS.get(header.casefold(), header) for header in headers]
    return headers if MOODLE_NAME_COLUMNS[0] in headers else None


def _header_row_find(dataset: tablib.Dataset) -> None:
    """mod_attendance writes "Course: …" and "Group: …" above the table: the header is the first row
    naming "Last name"; the rows above it are dropped. (A CSV arrives with them dropped already, by
    ModAttendanceCSV: its reader refuses the rows otherwise.)"""
    headers = _moodle_headers(dataset.headers or [])
    if headers is not None:
        dataset.headers = headers
        return
    for index, row in enumerate(dataset):
        headers = _moodle_headers(row)
        if headers is not None:
            rows = [list(r) for r in dataset][index + 1 :]
            dataset.wipe()
            dataset.headers = headers
            for values in rows:
                dataset.append(values)
            return


# Moodle writes CSV with a comma unless the user chose another separator in their preferences.
MOODLE_CSV_DELIMITERS = (",", ";", "\t", ":")


class ModAttendanceCSV(CampusCSV):
    """CSV as tablib reads it, except a mod_attendance export: its "Course:" and "Group:" lines are
    shorter than the table, which tablib takes for the header and then refuses the longer rows. When a
    row names "Last name" (with any of Moodle's separators), the lines above it are dropped here, before
    the resource sees the file. A byte order mark, as Excel and Moodle write, is ignored; Windows-1252 is read."""

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            in_stream = csv_bytes_decode(in_stream)
        in_stream = in_stream.removeprefix("\ufeff")
        for delimiter in MOODLE_CSV_DELIMITERS:
            rows = list(csv.reader(in_stream.splitlines(), delimiter=delimiter))
            for index, row in enumerate(rows):
                headers = _moodle_headers(row)
                if headers is not None:
                    return _dataset_of(headers, rows[index + 1 :])
        return super().create_dataset(in_stream, **kwargs)


def _dataset_of(headers: list[str], rows: list[list[str]]) -> tablib.Dataset:
    dataset = tablib.Dataset(headers=headers)
    for number, row in enumerate(rows, 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(headers):
            if any(cell.strip() for cell in row[len(headers) :]):
                raise ImportFileUnreadable(
                    gettext("Row %(number)d has more cells than the header row names columns.") % {"number": number}
                )
            row = row[: len(headers)]
        dataset.append(row + [""] * (len(headers) - len(row)))
    return dataset
