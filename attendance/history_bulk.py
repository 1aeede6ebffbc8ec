"""Bulk import of past attendance marks (e.g. an LMS's mod_attendance export), as a background job
(campusiq/core/imports.py).

One row is one student's mark in one past session, the session named by its section and start. A
session the file names that CampusIQ lacks is created closed (history happened); an ambiguous one (two
sessions of the section starting then, e.g. two groups) is refused. The invariants of the past hold: the
session lies inside the term and before now, the student has an enrollment (in any status) in the
section. The live marking services are not used and not relaxed.
"""

import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from attendance.models import AttendanceRecord, ClassSession, SectionAttendanceGrade
from campusiq.core.imports import ChunkResult, ImportKind, ImportRow, RowError
from campusiq.core.outbox import enqueue
from students.history_bulk import SECTION_COLUMNS, ChunkKeys, RowRefused, date_within_term, enrolled_pairs

DEFAULT_SESSION_MINUTES = 60
STATUSES = {choice.value for choice in AttendanceRecord.Status}


def _moment(value: str, column: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise RowRefused(
            _("%(column)s is not a date and time (YYYY-MM-DD HH:MM): %(value)r.") % {"column": column, "value": value}
        ) from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class AttendanceHistoryImporter:
    """student_number, term, course, section, session_start, session_end, status."""

    def __init__(self, actor) -> None:
        self.actor = actor
        self.keys = ChunkKeys()
        self.sections_written: set[int] = set()

    def _parse(self, row: ImportRow) -> tuple[int, int, datetime.datetime, datetime.datetime, str]:
        student_id, section = self.keys.student(row), self.keys.section(row)
        status = row.values.get("status", "").lower()
        if status not in STATUSES:
            raise RowRefused(
                _("Unknown status %(status)r: use one of %(choices)s.")
                % {"status": row.values.get("status", ""), "choices": ", ".join(sorted(STATUSES))}
            )
        starts_at = _moment(row.values["session_start"], "session_start")
        if row.values.get("session_end"):
            ends_at = _moment(row.values["session_end"], "session_end")
        else:
            ends_at = starts_at + datetime.timedelta(minutes=DEFAULT_SESSION_MINUTES)
        if ends_at <= starts_at:
            raise RowRefused(_("session_end is not after session_start."))
        date_within_term(timezone.localdate(starts_at), section, "session_start")
        if ends_at > timezone.now():
            raise RowRefused(_("The session has not ended yet: only past marks are imported."))
        return student_id, section.pk, starts_at, ends_at, status

    def _sessions(self, keys: set[tuple[int, datetime.datetime]]) -> dict[tuple[int, datetime.datetime], list[int]]:
        found: dict[tuple[int, datetime.datetime], list[int]] = {}
        if keys:
            for pk, section_id, starts_at in ClassSession.objects.filter(
                section_id__in={k[0] for k in keys}, starts_at__in={k[1] for k in keys}
            ).values_list("pk", "section_id", "starts_at"):
                found.setdefault((section_id, starts_at), []).append(pk)
        return found

    def chunk_apply(self, rows: list[ImportRow], *, write: bool) -> ChunkResult:
        self.keys.load(rows)
        result, parsed = ChunkResult(), []
        for row in rows:
            try:
                parsed.append((row, *self._parse(row)))
            except RowRefused as error:
                result.errors.append(RowError(row.line, str(error)))
        enrolled = enrolled_pairs({(p[1], p[2]) for p in parsed})
        sessions = self._sessions({(p[2], p[3]) for p in parsed})
        marks: dict[tuple[int, datetime.datetime], dict[int, str]] = {}
        missing: dict[tuple[int, datetime.datetime], datetime.datetime] = {}
        for row, student_id, section_id, starts_at, ends_at, status in parsed:
            if (student_id, section_id) not in enrolled:
                result.errors.append(RowError(row.line, _("The student has no enrollment in that section.")))
                continue
            if len(sessions.get((section_id, starts_at), [])) > 1:
                result.errors.append(
                    RowError(row.line, _("The section has more than one session starting then: which is meant?"))
                )
                continue
            if (section_id, starts_at) not in sessions:
                missing.setdefault((section_id, starts_at), ends_at)
            marks.setdefault((section_id, starts_at), {})[student_id] = status  # a later row wins
        if not write or result.errors or not marks:
            return result
        if missing:
            created = ClassSession.objects.bulk_create(
                [
                    ClassSession(section_id=section_id, starts_at=starts_at, ends_at=ends_at, state="closed")
                    for (section_id, starts_at), ends_at in missing.items()
                ]
            )
            result.written += len(created)
            sessions.update({(s.section_id, s.starts_at): [s.pk] for s in created})
        session_of = {key: sessions[key][0] for key in marks}
        existing = {
            (session_id, student_id): (status, voided)
            for session_id, student_id, status, voided in AttendanceRecord.objects.filter(
                session_id__in=set(session_of.values()),
                student_id__in={student_id for by_student in marks.values() for student_id in by_student},
            ).values_list("session_id", "student_id", "status", "voided")
        }
        now, changed = timezone.now(), []
        for key, by_student in marks.items():
            session_id = session_of[key]
            for student_id, status in by_student.items():
                if existing.get((session_id, student_id)) != (status, False):
                    changed.append(
                        AttendanceRecord(
                            session_id=session_id,
                            student_id=student_id,
                            status=status,
                            recorded_at=key[1],
                            method=AttendanceRecord.Method.MANUAL,
                            recorded_by=self.actor,
                            voided=False,
                            updated_at=now,
                        )
                    )
                    self.sections_written.add(key[0])
        AttendanceRecord.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["session", "student"],
            update_fields=["status", "status_choice", "voided", "recorded_by", "updated_at"],
        )
        result.written += len(changed)
        return result

    def finish(self) -> None:
        """Sections graded on attendance recompute that grade (one query finds them, one task each);
        warnings are not sent: they are about the present."""
        graded = SectionAttendanceGrade.objects.filter(section_id__in=self.sections_written).values_list(
            "section_id", flat=True
        )
        for section_id in graded:
            transaction.on_commit(
                lambda section_id=section_id: enqueue("attendance.grades_compute", section_id=section_id)
            )


MARKS = ImportKind(
    name="attendance_marks",
    label="Past attendance marks",
    columns=(*SECTION_COLUMNS, "session_start", "session_end", "status"),
    required=(*SECTION_COLUMNS, "session_start", "status"),
    importer=AttendanceHistoryImporter,
    permission="attendance.add_attendancerecord",
)
