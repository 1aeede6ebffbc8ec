"""Features of every student of a term, as of a moment, in a handful of set-based queries.

Each feature is defined in docs/PREDICTIONS.md. Attendance follows the one definition of
docs/ATTENDANCE.md (held = not cancelled, started by the cut-off, on or after the day the student
enrolled and before the day they left; rate = (present + late) / (held - excused)); the tests check
these numbers against attendance.selectors.attendance_rates on the same data.

"As of" is what makes training honest: a past term is seen as it was at its cut-off — sessions
held and assessments due by then — never its final grades or outcome.
"""

import datetime
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from attendance.models import AttendanceRecord, ClassSession, SectionGroupMember
from attendance.selectors import NOT_HELD
from students.models import Assessment, Course, Enrollment, Grade, Section, Student, Term, TermOutcome

# Bumped when an existing feature changes meaning. Adding a feature does not bump it: a model keeps the
# names it was trained on (ModelVersion.feature_names) and is scored on those columns alone.
FEATURE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Feature:
    name: str
    label: str  # plain language, for explanations
    kind: str  # "rate" (0 to 1, shown as %), "count", "delta" (difference of rates), "flag"


FEATURES = [
    Feature("attendance_rate", "attendance this term", "rate"),
    Feature("attendance_rate_2w", "attendance over the last 2 weeks", "rate"),
    Feature("attendance_rate_4w", "attendance over the last 4 weeks", "rate"),
    Feature("attendance_trend", "attendance trend (last 2 weeks minus the term)", "delta"),
    Feature("longest_absence_run", "longest run of consecutive absences", "count"),
    Feature("late_rate", "share of sessions arrived late", "rate"),
    Feature("assessment_average", "weighted assessment average so far", "rate"),
    Feature("assessment_latest", "latest graded assessment", "rate"),
    Feature("grade_trend", "grade trend (latest assessment minus the earlier ones)", "delta"),
    Feature("assessments_missing", "assessments due but not graded", "count"),
    Feature("credit_load", "credits taken this term", "count"),
    Feature("semester", "terms studied so far", "count"),
    Feature("previous_term_at_risk", "previous term failed or withdrawn", "flag"),
    Feature("admission_grade", "admission grade (0 to 200)", "grade"),
    Feature("prior_qualification_grade", "previous qualification's grade (0 to 200)", "grade"),
]
FEATURE_NAMES = [feature.name for feature in FEATURES]
# Features that come from the same records: a campus without attendance (or grades) lacks a whole
# family, and the training gate must know which baselines its data can support.
FEATURE_FAMILIES = {
    "attendance": [
        "attendance_rate", "attendance_rate_2w", "attendance_rate_4w", "attendance_trend", "longest_absence_run",
        "late_rate",
    ],
    "grades": ["assessment_average", "assessment_latest", "grade_trend", "assessments_missing"],
    "enrolment": ["credit_load", "semester"],
    "history": ["previous_term_at_risk"],
    "prior achievement": ["admission_grade", "prior_qualification_grade"],
}  # fmt: skip
FEATURES_BY_NAME = {feature.name: feature for feature in FEATURES}
AT_RISK_OUTCOMES = (TermOutcome.Outcome.FAILED, TermOutcome.Outcome.WITHDREW)
ATTENDED_SQL = "r.status IN ('present', 'late')"  # the statuses of attendance.selectors.ATTENDED


@dataclass
class FeatureMatrix:
    student_ids: np.ndarray  # int64, ascending
    values: np.ndarray  # float64, one row per student, FEATURE_NAMES order; NaN = unknown
    names: list[str]

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def restricted(self, names: list[str]) -> "FeatureMatrix":
        """The same students with only `names`' columns, in that order (a model's own features)."""
        if names == self.names:
            return self
        return FeatureMatrix(self.student_ids, self.values[:, [self.names.index(n) for n in names]], list(names))

    def __len__(self) -> int:
        return len(self.student_ids)


def training_cutoff(term: Term, weeks: int) -> datetime.datetime:
    """The moment a past term is seen as of: `weeks` into it (its last day at the latest), end of that day."""
    day = min(term.start_date + datetime.timedelta(weeks=weeks), term.end_date)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.max))


def term_features(term: Term, as_of: datetime.datetime, *, student_ids: list[int] | None = None) -> FeatureMatrix:
    """Features of the students enrolled in `term` (or of `student_ids` among them) as of `as_of`."""
    sql = _Sql(term=term, as_of=as_of)
    ids = np.array(sorted(sql.students() if student_ids is None else student_ids), dtype=np.int64)
    values = np.full((len(ids), len(FEATURE_NAMES)), np.nan)
    if len(ids) == 0:
        return FeatureMatrix(ids, values, list(FEATURE_NAMES))
    row = {student: index for index, student in enumerate(ids.tolist())}

    def put(name: str, student: int, value) -> None:
        index = row.get(student)
        if index is not None and value is not None:
            values[index, FEATURE_NAMES.index(name)] = float(value)

    for student, held, attended, late, excused, held2, att2, exc2, held4, att4, exc4 in sql.attendance():
        rate = _rate(attended, held - excused)
        put("attendance_rate", student, rate)
        put("attendance_rate_2w", student, _rate(att2, held2 - exc2))
        put("attendance_rate_4w", student, _rate(att4, held4 - exc4))
        put("late_rate", student, _rate(late, held - excused))
        recent = _rate(att2, held2 - exc2)
        put("attendance_trend", student, None if rate is None or recent is None else recent - rate)
    for student, longest in sql.longest_absence_runs():
        put("longest_absence_run", student, longest)
    for student, weighted, weights, graded, total, last, missing in sql.grades():
        put("assessment_average", student, weighted / weights if weights else None)
        put("assessment_latest", student, last if graded else None)
        put("grade_trend", student, last - (total - last) / (graded - 1) if graded >= 2 else None)
        put("assessments_missing", student, missing)
    for student, credits in sql.credit_loads():
        put("credit_load", student, credits)
    for student, terms in sql.terms_studied():
        put("semester", student, terms)
    for student, at_risk in sql.previous_outcomes():
        put("previous_term_at_risk", student, at_risk)
    in_term = Enrollment.objects.filter(section__term=term).values("student_id")
    prior = Student.objects.filter(pk__in=in_term).exclude(admission_grade=None, prior_qualification_grade=None)
    for student, admission, qualification in prior.values_list("pk", "admission_grade", "prior_qualification_grade"):
        put("admission_grade", student, admission)
        put("prior_qualification_grade", student, qualification)
    # Nothing missing yet and no graded work is a count of zero, not unknown.
    for name in ("assessments_missing", "longest_absence_run", "credit_load"):
        column = values[:, FEATURE_NAMES.index(name)]
        column[np.isnan(column)] = 0.0
    return FeatureMatrix(ids, values, list(FEATURE_NAMES))


def term_population(term: Term, as_of: datetime.datetime) -> set[int]:
    """The students in `term` at `as_of`: an enrolment begun by that day and not ended by it. Scoring
    scores the active ones among them and training learns from them, so both see one population."""
    day = timezone.localdate(as_of)
    running = Enrollment.objects.filter(
        Q(ended_on__isnull=True) | Q(ended_on__gt=day), section__term=term, enrolled_on__lte=day
    )
    return set(running.values_list("student_id", flat=True))


def term_labels(term: Term) -> dict[int, int]:
    """{student id: 1 if the term ended failed or withdrawn (at risk), else 0}."""
    return {
        student: int(outcome in AT_RISK_OUTCOMES)
        for student, outcome in TermOutcome.objects.filter(term=term).values_list("student_id", "outcome")
    }


def _rate(numerator, denominator):
    return None if not denominator or denominator <= 0 else numerator / denominator


class _Sql:
    """The queries behind term_features. Identifiers come from the models' metadata; every value is a
    parameter. Dates of sessions are taken in the campus time zone, as the ORM's __date does."""

    def __init__(self, *, term: Term, as_of: datetime.datetime):
        self.term, self.as_of = term, as_of
        self.as_of_date = timezone.localdate(as_of)
        q = connection.ops.quote_name
        self.t = {
            "enrollment": q(Enrollment._meta.db_table),
            "section": q(Section._meta.db_table),
            "course": q(Course._meta.db_table),
            "session": q(ClassSession._meta.db_table),
            "record": q(AttendanceRecord._meta.db_table),
            "group_member": q(SectionGroupMember._meta.db_table),
            "assessment": q(Assessment._meta.db_table),
            "grade": q(Grade._meta.db_table),
            "term": q(Term._meta.db_table),
            "outcome": q(TermOutcome._meta.db_table),
            "student": q(Student._meta.db_table),
        }
        self.session_day, self.session_day_params = connection.ops.datetime_cast_date_sql(
            "s.starts_at", (), timezone.get_current_timezone_name()
        )

    def _rows(self, sql: str, params: list) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql.format(**self.t, day=self.session_day), params)
            return cursor.fetchall()

    def students(self) -> list[int]:
        sql = (
            "SELECT DISTINCT e.student_id FROM {enrollment} e JOIN {section} sec ON sec.id = e.section_id "
            "WHERE sec.term_id = %s AND e.enrolled_on <= %s"
        )
        return [row[0] for row in self._rows(sql, [self.term.pk, self.as_of_date])]

    def _held_sessions(self) -> tuple[str, list]:
        """FROM clause of every (enrollment, held session) pair with the student's record, if any."""
        sql = (
            "FROM {enrollment} e JOIN {section} sec ON sec.id = e.section_id "
            "JOIN {session} s ON s.section_id = e.section_id "
            "LEFT JOIN {record} r ON r.session_id = s.id AND r.student_id = e.student_id "
            "WHERE sec.term_id = %s AND s.state NOT IN (%s, %s) AND s.starts_at <= %s "
            "AND {day} >= e.enrolled_on AND (e.ended_on IS NULL OR {day} < e.ended_on) "
            # A group's session is held only for its members (attendance.selectors, the one rate).
            "AND (s.group_id IS NULL OR EXISTS (SELECT 1 FROM {group_member} m "
            "WHERE m.group_id = s.group_id AND m.student_id = e.student_id))"
        )
        params = [self.term.pk, *NOT_HELD, self.as_of, *self.session_day_params]
        params += [*self.session_day_params]
        return sql, params

    def attendance(self) -> list[tuple]:
        held_from, params = self._held_sessions()
        two, four = self.as_of - datetime.timedelta(weeks=2), self.as_of - datetime.timedelta(weeks=4)
        attended, late, excused = ATTENDED_SQL, "r.status = 'late'", "r.status = 'excused'"

        def count(condition: str) -> str:
            return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

        windows = []
        for _ in (two, four):
            recent = "s.starts_at > %s"
            windows += [count(recent), count(f"{recent} AND {attended}"), count(f"{recent} AND {excused}")]
        sql = (
            f"SELECT e.student_id, COUNT(*), {count(attended)}, {count(late)}, {count(excused)}, "
            f"{', '.join(windows)} {held_from} GROUP BY e.student_id"
        )
        return self._rows(sql, [two, two, two, four, four, four, *params])

    def longest_absence_runs(self) -> list[tuple]:
        """Per student, the longest run of held sessions (all sections, in time order) not attended
        and not excused: islands of equal absent flags, found with two row numbers."""
        held_from, params = self._held_sessions()
        absent = f"CASE WHEN {ATTENDED_SQL} OR r.status = 'excused' THEN 0 ELSE 1 END"
        sql = (
            # Bandit B608: identifiers from model metadata; values are parameters.
            "SELECT student_id, MAX(n) FROM ("  # noqa: S608  (fixed SQL fragments; values are parameters)  # nosec B608
            " SELECT student_id, island, COUNT(*) AS n FROM ("
            f"  SELECT e.student_id AS student_id, {absent} AS absent,"
            "   ROW_NUMBER() OVER (PARTITION BY e.student_id ORDER BY s.starts_at, s.id)"
            f"   - ROW_NUMBER() OVER (PARTITION BY e.student_id, {absent} ORDER BY s.starts_at, s.id) AS island"
            f"  {held_from}"
            " ) flags WHERE absent = 1 GROUP BY student_id, island"
            ") runs GROUP BY student_id"
        )
        return self._rows(sql, params)

    def grades(self) -> list[tuple]:
        """Per student: sum of weight * score/max, sum of weights, graded count, sum of score/max, the latest
        graded score/max, and assessments due by the cut-off without a grade. Only assessments due by then."""
        sql = (
            "SELECT student_id, SUM(CASE WHEN score IS NULL THEN 0 ELSE weight * score END),"
            " SUM(CASE WHEN score IS NULL THEN 0 ELSE weight END), COUNT(score), SUM(score),"
            " MAX(CASE WHEN latest = 1 THEN score END), SUM(CASE WHEN score IS NULL THEN 1 ELSE 0 END)"
            " FROM ("
            "  SELECT e.student_id AS student_id, a.weight AS weight, 1.0 * g.score / a.max_score AS score,"
            "   ROW_NUMBER() OVER (PARTITION BY e.student_id, g.id IS NULL"
            # The latest by due date, then by when the grade was entered; the id only if both tie.
            "   ORDER BY a.due_date DESC, g.created_at DESC, a.id DESC)"
            "   AS latest"
            "  FROM {enrollment} e JOIN {section} sec ON sec.id = e.section_id"
            "  JOIN {assessment} a ON a.section_id = e.section_id"
            "  LEFT JOIN {grade} g ON g.assessment_id = a.id AND g.student_id = e.student_id"
            "  WHERE sec.term_id = %s AND a.due_date IS NOT NULL AND a.due_date <= %s"
            "  AND a.due_date >= e.enrolled_on AND (e.ended_on IS NULL OR a.due_date < e.ended_on)"
            " ) due GROUP BY student_id"
        )
        rows = self._rows(sql, [self.term.pk, self.as_of_date])
        # The latest row number counts graded and ungraded rows apart: only a graded "latest" has a score.
        return [
            (student, float(w or 0), float(ws or 0), int(n), float(total or 0), float(last or 0), int(missing))
            for student, w, ws, n, total, last, missing in rows
        ]

    def credit_loads(self) -> list[tuple]:
        sql = (
            "SELECT e.student_id, SUM(c.credits) FROM {enrollment} e JOIN {section} sec ON sec.id = e.section_id"
            " JOIN {course} c ON c.id = sec.course_id"
            " WHERE sec.term_id = %s AND e.enrolled_on <= %s AND (e.ended_on IS NULL OR e.ended_on > %s)"
            " GROUP BY e.student_id"
        )
        return self._rows(sql, [self.term.pk, self.as_of_date, self.as_of_date])

    def terms_studied(self) -> list[tuple]:
        """Distinct terms with an enrolment up to and including this one (the semester then, not now)."""
        sql = (
            "SELECT e.student_id, COUNT(DISTINCT sec.term_id) FROM {enrollment} e"
            " JOIN {section} sec ON sec.id = e.section_id JOIN {term} t ON t.id = sec.term_id"
            " WHERE t.start_date <= %s AND e.student_id IN ("
            "  SELECT e2.student_id FROM {enrollment} e2 JOIN {section} s2 ON s2.id = e2.section_id"
            "  WHERE s2.term_id = %s)"
            " GROUP BY e.student_id"
        )
        return self._rows(sql, [self.term.start_date, self.term.pk])

    def previous_outcomes(self) -> list[tuple]:
        """The outcome of each student's latest term that ended before this one began."""
        at_risk = ", ".join(["%s"] * len(AT_RISK_OUTCOMES))
        sql = (
            # Bandit B608: identifiers from model metadata; values are parameters.
            f"SELECT o.student_id, CASE WHEN o.outcome IN ({at_risk}) THEN 1 ELSE 0 END FROM {{outcome}} o"  # noqa: S608  # nosec B608
            " JOIN {term} t ON t.id = o.term_id"
            " WHERE t.end_date < %s AND t.end_date = ("
            "  SELECT MAX(t2.end_date) FROM {outcome} o2 JOIN {term} t2 ON t2.id = o2.term_id"
            "  WHERE o2.student_id = o.student_id AND t2.end_date < %s)"
        )
        return self._rows(sql, [*AT_RISK_OUTCOMES, self.term.start_date, self.term.start_date])
