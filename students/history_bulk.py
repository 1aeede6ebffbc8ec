"""Bulk history imports of past enrollments and grades, run as background jobs (campusiq/core/imports.py).

History is not live operation: a withdrawn student's grades, an enrollment of a student who has since
graduated. So these importers never call the live services (enrollment_create, grade_record); they hold
the invariants that are true of the past instead: dates inside the term, a score within its assessment's
bounds, a grade only for a student enrolled (in any status) in the section. Rows are matched by natural
keys, so a re-run writes nothing and an updated file updates; each chunk is resolved with a few set-wise
queries (never one per row) and written with bulk upserts.
"""

import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _

from campusiq.core.imports import ChunkResult, ImportKind, ImportRow, RowError
from students.models import Assessment, Enrollment, Grade, Section, Student

TWO_PLACES = Decimal("0.01")
SECTION_COLUMNS = ("student_number", "term", "course", "section")
# An SIS says "completed" for an enrollment that ran to the end of the term: CampusIQ's "enrolled".
ENROLLMENT_STATUSES = {
    "enrolled": Enrollment.Status.ENROLLED,
    "completed": Enrollment.Status.ENROLLED,
    "dropped": Enrollment.Status.DROPPED,
    "withdrawn": Enrollment.Status.WITHDRAWN,
}


class RowRefused(ValueError):
    pass


def date_parse(value: str, column: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        raise RowRefused(
            _("%(column)s is not a date (YYYY-MM-DD): %(value)r.") % {"column": column, "value": value}
        ) from None


def date_within_term(day: datetime.date, section: "SectionInfo", column: str) -> None:
    if not section.start_date <= day <= section.end_date:
        raise RowRefused(
            _("%(column)s %(day)s lies outside the term %(term)s (%(start)s to %(end)s).")
            % {"column": column, "day": day, "term": section.term, "start": section.start_date, "end": section.end_date}
        )


class SectionInfo:
    __slots__ = ("end_date", "pk", "start_date", "term")

    def __init__(self, pk: int, term: str, start_date: datetime.date, end_date: datetime.date):
        self.pk, self.term, self.start_date, self.end_date = pk, term, start_date, end_date


class ChunkKeys:
    """A chunk's students and sections, each fetched in one query. Sections are remembered across
    chunks (a file names few), students are not (a file names many)."""

    def __init__(self) -> None:
        self._sections: dict[tuple[str, str, str], SectionInfo | None] = {}
        self.students: dict[str, int] = {}

    def load(self, rows: list[ImportRow]) -> None:
        numbers = {row.values["student_number"] for row in rows}
        self.students = dict(Student.objects.filter(student_number__in=numbers).values_list("student_number", "pk"))
        wanted = {self.section_key(row) for row in rows} - self._sections.keys()
        if wanted:
            found = Section.objects.filter(
                term__name__in={k[0] for k in wanted},
                course__code__in={k[1] for k in wanted},
                code__in={k[2] for k in wanted},
            ).values_list("term__name", "course__code", "code", "pk", "term__start_date", "term__end_date")
            for term, course, code, pk, start, end in found:
                self._sections[(term, course, code)] = SectionInfo(pk, term, start, end)
            for key in wanted:
                self._sections.setdefault(key, None)

    @staticmethod
    def section_key(row: ImportRow) -> tuple[str, str, str]:
        return (row.values["term"], row.values["course"], row.values.get("section") or "A")

    def student(self, row: ImportRow) -> int:
        number = row.values["student_number"]
        if not number:
            raise RowRefused(_("student_number is empty."))
        if number not in self.students:
            raise RowRefused(_("No student numbered %(number)r.") % {"number": number})
        return self.students[number]

    def section(self, row: ImportRow) -> SectionInfo:
        section = self._sections.get(self.section_key(row))
        if section is None:
            term, course, code = self.section_key(row)
            raise RowRefused(
                _("No section %(code)s of %(course)s in %(term)s.") % {"code": code, "course": course, "term": term}
            )
        return section


def enrolled_pairs(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which (student id, section id) pairs have an enrollment, in any status: one query."""
    if not pairs:
        return set()
    return (
        set(
            Enrollment.objects.filter(
                student_id__in={p[0] for p in pairs}, section_id__in={p[1] for p in pairs}
            ).values_list("student_id", "section_id")
        )
        & pairs
    )


class EnrollmentHistoryImporter:
    """student_number, term, course, section, status, enrolled_on, ended_on."""

    def __init__(self, actor) -> None:
        self.keys = ChunkKeys()

    def _parse(self, row: ImportRow) -> Enrollment:
        student_id, section = self.keys.student(row), self.keys.section(row)
        status = ENROLLMENT_STATUSES.get(row.values.get("status", "").lower() or "completed")
        if status is None:
            raise RowRefused(
                _("Unknown status %(status)r: use one of %(choices)s.")
                % {"status": row.values["status"], "choices": ", ".join(ENROLLMENT_STATUSES)}
            )
        enrolled_on = date_parse(row.values.get("enrolled_on") or section.start_date.isoformat(), "enrolled_on")
        date_within_term(enrolled_on, section, "enrolled_on")
        ended_on = None
        if status == Enrollment.Status.ENROLLED:
            if row.values.get("ended_on"):
                raise RowRefused(_("ended_on is only for a dropped or withdrawn enrollment."))
        else:
            if not row.values.get("ended_on"):
                raise RowRefused(_("A dropped or withdrawn enrollment needs ended_on."))
            ended_on = date_parse(row.values["ended_on"], "ended_on")
            date_within_term(ended_on, section, "ended_on")
            if ended_on < enrolled_on:
                raise RowRefused(_("ended_on is before enrolled_on."))
        return Enrollment(
            student_id=student_id, section_id=section.pk, status=status, enrolled_on=enrolled_on, ended_on=ended_on
        )

    def chunk_apply(self, rows: list[ImportRow], *, write: bool) -> ChunkResult:
        self.keys.load(rows)
        result, parsed = ChunkResult(), {}
        for row in rows:
            try:
                enrollment = self._parse(row)
            except RowRefused as error:
                result.errors.append(RowError(row.line, str(error)))
                continue
            parsed[(enrollment.student_id, enrollment.section_id)] = enrollment  # a later row wins
        if not write or result.errors or not parsed:
            return result
        existing = {
            (e.student_id, e.section_id): e
            for e in Enrollment.objects.filter(
                student_id__in={k[0] for k in parsed}, section_id__in={k[1] for k in parsed}
            ).only("student_id", "section_id", "status", "enrolled_on", "ended_on")
        }
        changed = [
            e
            for key, e in parsed.items()
            if key not in existing
            or (existing[key].status, existing[key].enrolled_on, existing[key].ended_on)
            != (e.status, e.enrolled_on, e.ended_on)
        ]
        Enrollment.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["student", "section"],
            update_fields=["status", "enrolled_on", "ended_on", "updated_at"],
        )
        result.written = len(changed)
        return result

    def finish(self) -> None:
        """Nothing derives from an enrollment alone: final grades and outcomes come with closing the term."""


class GradeHistoryImporter:
    """student_number, term, course, section, assessment, score, recorded_on."""

    def __init__(self, actor) -> None:
        self.actor = actor
        self.keys = ChunkKeys()
        self.assessments: dict[tuple[int, str], Assessment | None] = {}

    def _assessments_load(self, rows: list[ImportRow]) -> None:
        wanted = set()
        for row in rows:
            try:
                wanted.add((self.keys.section(row).pk, row.values["assessment"]))
            except RowRefused:
                continue
        wanted -= self.assessments.keys()
        if wanted:
            for assessment in Assessment.objects.filter(
                section_id__in={k[0] for k in wanted}, name__in={k[1] for k in wanted}
            ).only("pk", "section_id", "name", "max_score", "computed"):
                self.assessments[(assessment.section_id, assessment.name)] = assessment
            for key in wanted:
                self.assessments.setdefault(key, None)

    def _parse(self, row: ImportRow, enrolled: set[tuple[int, int]]) -> Grade:
        student_id, section = self.keys.student(row), self.keys.section(row)
        assessment = self.assessments.get((section.pk, row.values["assessment"]))
        if assessment is None:
            raise RowRefused(_("No assessment %(name)r in that section.") % {"name": row.values["assessment"]})
        if assessment.computed:
            raise RowRefused(_("Scores of %(name)s are computed by CampusIQ.") % {"name": assessment.name})
        try:
            score = Decimal(row.values["score"]).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
        except (InvalidOperation, ValueError):
            raise RowRefused(_("score is not a number: %(value)r.") % {"value": row.values["score"]}) from None
        if not Decimal(0) <= score <= assessment.max_score:
            raise RowRefused(
                _("Score %(score)s lies outside 0 to %(max)s.") % {"score": score, "max": assessment.max_score}
            )
        if row.values.get("recorded_on"):
            date_within_term(date_parse(row.values["recorded_on"], "recorded_on"), section, "recorded_on")
        if (student_id, section.pk) not in enrolled:
            raise RowRefused(_("The student has no enrollment in that section."))
        return Grade(student_id=student_id, assessment_id=assessment.pk, score=score, graded_by=self.actor)

    def chunk_apply(self, rows: list[ImportRow], *, write: bool) -> ChunkResult:
        self.keys.load(rows)
        self._assessments_load(rows)
        pairs = set()
        for row in rows:
            try:
                pairs.add((self.keys.student(row), self.keys.section(row).pk))
            except RowRefused:
                continue
        enrolled = enrolled_pairs(pairs)
        result, parsed = ChunkResult(), {}
        for row in rows:
            try:
                grade = self._parse(row, enrolled)
            except RowRefused as error:
                result.errors.append(RowError(row.line, str(error)))
                continue
            parsed[(grade.student_id, grade.assessment_id)] = grade
        if not write or result.errors or not parsed:
            return result
        existing = {
            (student_id, assessment_id): score
            for student_id, assessment_id, score in Grade.objects.filter(
                student_id__in={k[0] for k in parsed}, assessment_id__in={k[1] for k in parsed}
            ).values_list("student_id", "assessment_id", "score")
        }
        changed = [g for key, g in parsed.items() if existing.get(key) != g.score]
        now = timezone.now()
        for grade in changed:
            grade.updated_at = now
        Grade.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["student", "assessment"],
            update_fields=["score", "graded_by", "updated_at"],
        )
        result.written = len(changed)
        return result

    def finish(self) -> None:
        """Final grades and outcomes are computed when the registrar closes the (past) term, as for live
        grades: grade_record refreshes nothing either."""


ENROLLMENTS = ImportKind(
    name="enrollments",
    label="Enrollment history",
    columns=(*SECTION_COLUMNS, "status", "enrolled_on", "ended_on"),
    required=(*SECTION_COLUMNS, "status"),
    importer=EnrollmentHistoryImporter,
    permission="students.add_enrollment",
)
GRADES = ImportKind(
    name="grades",
    label="Grade history",
    columns=(*SECTION_COLUMNS, "assessment", "score", "recorded_on"),
    required=(*SECTION_COLUMNS, "assessment", "score"),
    importer=GradeHistoryImporter,
    permission="students.add_grade",
)
