"""Builds the scoring benchmark's campus with COPY (untimed): 100,000 students in the current term, about
20 attendance records and 6 grades each, and two past terms of 5,000 students with outcomes to train on.

    python bench/scoring_data.py STUDENTS   (with the production environment of bench/harness.py)

Each student has a latent engagement and ability that drive attendance, grades and (past terms)
the outcome, so the trained model has something real to find.
"""

import datetime
import math
import random
import sys
import time

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from attendance.models import AttendanceRecord, ClassSession  # noqa: E402
from students.models import (  # noqa: E402
    Assessment,
    Course,
    Department,
    Enrollment,
    Grade,
    Program,
    Section,
    Student,
    Term,
    TermOutcome,
)

SECTION_SIZE = 100
SECTIONS_PER_STUDENT = 2
SESSIONS_HELD = 10  # per section so far: 2 sections x 10 = about 20 records per student
ASSESSMENTS_DUE = 3  # per section so far: 6 grades per student
HISTORY_STUDENTS = 5_000
PAST_TERMS = 2
NOW = timezone.now()


def copy(model, columns: list[str], rows) -> int:
    """COPY rows (tuples in `columns` order) into the model's table; returns the count."""
    table = connection.ops.quote_name(model._meta.db_table)
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as out:
        for row in rows:
            out.write_row(row)
            count += 1
    return count


def stamped(rows):
    """Rows of (id, ...) as (id, created_at, updated_at, ...)."""
    for row in rows:
        yield (row[0], NOW, NOW, *row[1:])


def traits(rng: random.Random) -> tuple[float, float]:
    engagement = rng.gauss(0, 1)
    return 0.3 * engagement + math.sqrt(0.91) * rng.gauss(0, 1), engagement


def main(students: int) -> None:
    started = time.monotonic()
    rng = random.Random(2026)
    now_date = timezone.localdate(NOW)
    current_start = now_date - datetime.timedelta(weeks=SESSIONS_HELD)
    terms = [
        (current_start - datetime.timedelta(weeks=20 * (PAST_TERMS - i)), f"Bench term {i}")
        for i in range(PAST_TERMS + 1)
    ]
    copy(Term, ["id", "created_at", "updated_at", "name", "start_date", "end_date", "add_drop_deadline"],
         stamped((i + 1, name, start, start + datetime.timedelta(weeks=16), start + datetime.timedelta(weeks=2))
                 for i, (start, name) in enumerate(terms)))  # fmt: skip
    copy(Department, ["id", "created_at", "updated_at", "code", "name"], stamped([(1, "BEN", "Benchmarks")]))
    copy(Program, ["id", "created_at", "updated_at", "department_id", "code", "name"],
         stamped((p, 1, f"P{p:02d}", f"Program {p}") for p in range(1, 11)))  # fmt: skip
    copy(User, ["id", "password", "is_superuser", "first_name", "last_name", "is_staff", "is_active", "date_joined",
                "email", "is_service_account"],
         ((i, "!", False, "Bench", str(i), False, True, NOW, f"s{i}@bench.example", False)
          for i in range(1, students + 1)))  # fmt: skip
    copy(Student, ["id", "created_at", "updated_at", "user_id", "student_number", "program_id", "semester", "status"],
         stamped((i, i, f"B{i:07d}", 1 + i % 10, 1 + i % 8, "active") for i in range(1, students + 1)))  # fmt: skip
    people = {i: traits(rng) for i in range(1, students + 1)}

    ids = {"course": 0, "section": 0, "enrollment": 0, "session": 0, "record": 0, "assessment": 0, "grade": 0}
    rows = {key: [] for key in ("course", "section", "enrollment", "session", "record", "assessment", "grade")}
    outcomes = []
    for term_id, (start, _) in enumerate(terms, start=1):
        current = term_id == len(terms)
        cohort = list(range(1, (students if current else HISTORY_STUDENTS) + 1))
        is_done = not current
        risk_points: dict[int, float] = dict.fromkeys(cohort, 0.0)
        for round_ in range(SECTIONS_PER_STUDENT):
            order = cohort[:]
            random.Random(f"{term_id}:{round_}").shuffle(order)
            for first in range(0, len(order), SECTION_SIZE):
                members = order[first : first + SECTION_SIZE]
                ids["course"] += 1
                ids["section"] += 1
                rows["course"].append((ids["course"], 1, f"B{ids['course']:06d}", f"Course {ids['course']}", 6))
                rows["section"].append((ids["section"], ids["course"], term_id, "A", SECTION_SIZE + 10, 0.75))
                sessions = []
                for week in range(SESSIONS_HELD):
                    ids["session"] += 1
                    at = timezone.make_aware(
                        datetime.datetime.combine(start + datetime.timedelta(weeks=week), datetime.time(10))
                    )
                    sessions.append(ids["session"])
                    rows["session"].append((ids["session"], ids["section"], at, at + datetime.timedelta(minutes=90),
                                            "R1", 10, "closed", f"salt{ids['session']}"))  # fmt: skip
                assessments = []
                for number in range(ASSESSMENTS_DUE):
                    ids["assessment"] += 1
                    assessments.append(ids["assessment"])
                    rows["assessment"].append((ids["assessment"], ids["section"], f"Test {number}", 20, 20,
                                               start + datetime.timedelta(weeks=2 + 3 * number)))  # fmt: skip
                for student in members:
                    ability, engagement = people[student]
                    ids["enrollment"] += 1
                    rows["enrollment"].append((ids["enrollment"], student, ids["section"], "enrolled", start))
                    attend = 1 / (1 + math.exp(-(1.8 + 1.2 * engagement)))
                    for week, session in enumerate(sessions):
                        ids["record"] += 1
                        drift = 0.04 * week * min(engagement, 0)  # the disengaged slip as the term goes on
                        status = "present" if rng.random() < attend + drift else "absent"
                        rows["record"].append((ids["record"], session, student, status, NOW, "qr", "", "", False, ""))
                    scores = []
                    for assessment in assessments:
                        ids["grade"] += 1
                        score = max(0.0, min(20.0, rng.gauss(12.5 + 3 * ability + engagement, 3)))
                        scores.append(score)
                        rows["grade"].append((ids["grade"], student, assessment, round(score, 2)))
                    risk_points[student] += (10 - sum(scores) / len(scores)) / 3 - 0.6 * engagement
        if is_done:
            for student in cohort:
                at_risk = rng.random() < 1 / (1 + math.exp(-(risk_points[student] - 1.2)))
                outcomes.append((len(outcomes) + 1, student, term_id, "failed" if at_risk else "passed", "derived", ""))
    copy(
        Course, ["id", "created_at", "updated_at", "department_id", "code", "title", "credits"], stamped(rows["course"])
    )
    copy(Section, ["id", "created_at", "updated_at", "course_id", "term_id", "code", "capacity", "min_attendance_rate"],
         stamped(rows["section"]))  # fmt: skip
    copy(Enrollment, ["id", "created_at", "updated_at", "student_id", "section_id", "status", "enrolled_on"],
         stamped(rows["enrollment"]))  # fmt: skip
    copy(ClassSession, ["id", "created_at", "updated_at", "section_id", "starts_at", "ends_at", "room",
                        "late_after_minutes", "state", "token_salt"], stamped(rows["session"]))  # fmt: skip
    record_columns = ["id", "created_at", "updated_at", "session_id", "student_id", "status", "recorded_at", "method",
                      "user_agent", "device_id", "voided", "note"]  # fmt: skip
    copy(AttendanceRecord, record_columns, stamped(rows["record"]))
    copy(Assessment, ["id", "created_at", "updated_at", "section_id", "name", "weight", "max_score", "due_date"],
         stamped(rows["assessment"]))  # fmt: skip
    copy(Grade, ["id", "created_at", "updated_at", "student_id", "assessment_id", "score"], stamped(rows["grade"]))
    copy(TermOutcome, ["id", "created_at", "updated_at", "student_id", "term_id", "outcome", "source", "note"],
         stamped(outcomes))  # fmt: skip
    models = [User, Term, Department, Program, Course, Section, Student, Enrollment, ClassSession, AttendanceRecord,
              Assessment, Grade, TermOutcome]  # fmt: skip
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
        cursor.execute("ANALYZE")
    print(
        f"[bench] campus built in {time.monotonic() - started:.0f}s: {students} students, "
        f"{ids['record']} attendance records, {ids['grade']} grades, {len(outcomes)} past outcomes",
        flush=True,
    )


def no_style():
    from django.core.management.color import no_style as style

    return style()


if __name__ == "__main__":
    main(int(sys.argv[1]))
