"""Builds the scale benchmark's campus with COPY: the shape of `seed_demo --size large` (docs/DEMO_DATA.md) in
minutes. Per 20,000 students: 8 departments of 16 courses, 512 lecturers, 500 advisors (40 advisees each), three
past terms and the running one, four courses per student and term in sections of 40 (one lecture hall of 300),
about 260,000 enrollments, 960,000 grades, 4.1 million attendance records, outcomes for the past terms, then a
model trained on them and one scoring run of the current term (real factors, about 19,800 risk scores).

    python bench/scale_data.py [--students N]   (with the production environment of bench/harness.py)

Students' latent ability and engagement drive their attendance, grades and outcomes, as in the demo. Prints how
long each table took; checks a sample of every table with full_clean() at the end.
"""

import argparse
import datetime
import math
import random
import time
from decimal import Decimal

import django

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.color import no_style  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.roles import Role, group_name  # noqa: E402
from attendance.models import AttendanceRecord, ClassSession  # noqa: E402
from predictions.models import RiskScore, ScoringRun  # noqa: E402
from predictions.services import scoring_run_create, scoring_run_execute  # noqa: E402
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

DEPARTMENTS = ("CS", "MATH", "ECON", "BIO", "PHYS", "CHEM", "PSY", "HIST")
COURSES_PER_DEPARTMENT = 16  # two per semester of an eight-semester degree
LECTURERS_PER_DEPARTMENT = 64  # per 20,000 students
ADVISEES_PER_ADVISOR = 40
SECTION_SIZE, SECTION_CAPACITY, HALL_SIZE = 40, 50, 300
HALL_SLOT = 6  # the first course of the fourth semester
PAST_TERMS = 3
PAST_SESSIONS, HELD_SESSIONS, FUTURE_SESSIONS = 16, 15, 2  # weekly; the running term is in its 16th week
# Assessments of every section: name, weight (%), max score, week due.
ASSESSMENTS = (("Assignment 1", 15, 20, 4), ("Assignment 2", 15, 20, 8), ("Project", 30, 50, 13),
               ("Final exam", 40, 100, 16))  # fmt: skip
WITHDRAW_RATE, WITHDRAW_WEEK = 0.02, 6
NOW = timezone.now()
TODAY = timezone.localdate(NOW)


def copy(model_or_table, columns: list[str], rows) -> int:
    """COPY rows (tuples in `columns` order) into the model's table; prints how long it took; returns the count."""
    table = model_or_table if isinstance(model_or_table, str) else model_or_table._meta.db_table
    started = time.monotonic()
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({', '.join(columns)}) FROM STDIN") as out,
    ):
        for row in rows:
            out.write_row(row)
            count += 1
    print(f"[scale data] {table:<28} {count:>10,} rows  {time.monotonic() - started:6.1f} s", flush=True)
    return count


def stamped(rows):
    """Rows of (id, ...) as (id, created_at, updated_at, ...)."""
    for row in rows:
        yield (row[0], NOW, NOW, *row[1:])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def at(day: datetime.date, hour: int) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


class Campus:
    def __init__(self, students: int) -> None:
        self.n = students
        self.rng = random.Random(2026)  # nosec B311  (benchmark data, not secrets)
        current_start = TODAY - datetime.timedelta(weeks=HELD_SESSIONS, days=3)
        self.terms = []  # (id, name, start, end, past)
        for index in range(PAST_TERMS + 1):
            start = current_start - datetime.timedelta(weeks=22 * (PAST_TERMS - index))
            end = start + datetime.timedelta(weeks=22, days=-1)
            self.terms.append((index + 1, f"Scale term {index + 1}", start, end, index < PAST_TERMS))
        self.advisors = max(1, students // ADVISEES_PER_ADVISOR)
        self.lecturers_per_department = max(2, round(LECTURERS_PER_DEPARTMENT * students / 20_000))
        # User ids: 1 admin, 2 registrar, then the advisors, the lecturers and the students.
        self.first_advisor = 3
        self.first_lecturer = self.first_advisor + self.advisors
        self.first_student_user = self.first_lecturer + self.lecturers_per_department * len(DEPARTMENTS)
        self.traits = {}
        self.semester = {}
        for student in range(1, students + 1):
            engagement = self.rng.gauss(0, 1)
            self.traits[student] = (0.3 * engagement + math.sqrt(0.91) * self.rng.gauss(0, 1), engagement)
            self.semester[student] = 1 + (student - 1) % 8

    def lecturer(self, department: int, number: int) -> int:
        return self.first_lecturer + department * self.lecturers_per_department + number % self.lecturers_per_department

    def build(self) -> None:
        started = time.monotonic()
        self.people()
        self.catalogue()
        self.teaching()
        with connection.cursor() as cursor:
            models = [User, Term, Department, Program, Course, Section, Student, Enrollment, ClassSession,
                      AttendanceRecord, Assessment, Grade, TermOutcome]  # fmt: skip
            for statement in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(statement)
            step = time.monotonic()
            cursor.execute("ANALYZE")
            print(f"[scale data] ANALYZE {time.monotonic() - step:.1f} s", flush=True)
        self.loaded = time.monotonic() - started
        print(f"[scale data] tables loaded in {self.loaded:.0f} s", flush=True)

    def people(self) -> None:
        users = [(1, "Ada", "Admin", True, True, "admin@scale.example"),
                 (2, "Rui", "Registrar", False, True, "registrar@scale.example")]  # fmt: skip
        users += [(self.first_advisor + a, "Advisor", str(a), False, False, f"advisor{a}@scale.example")
                  for a in range(self.advisors)]  # fmt: skip
        lecturers = range(self.first_lecturer, self.first_student_user)
        users += [(u, "Lecturer", str(u), False, False, f"lecturer{u}@scale.example") for u in lecturers]
        students = ((self.first_student_user + s - 1, "Student", str(s), False, False, f"s{s}@scale.example")
                    for s in range(1, self.n + 1))  # fmt: skip
        copy(User, ["id", "password", "is_superuser", "first_name", "last_name", "is_staff", "is_active", "date_joined",
                    "email", "is_service_account"],
             ((u, "!", superuser, first, last, staff, True, NOW, email, False)
              for u, first, last, superuser, staff, email in [*users, *students]))  # fmt: skip
        group = {role: Group.objects.get(name=group_name(role)).pk for role in Role}
        memberships = [(1, group[Role.ADMIN]), (2, group[Role.REGISTRAR])]
        memberships += [(self.first_advisor + a, group[Role.ADVISOR]) for a in range(self.advisors)]
        memberships += [(u, group[Role.LECTURER]) for u in lecturers]
        memberships += [(self.first_student_user + s - 1, group[Role.STUDENT]) for s in range(1, self.n + 1)]
        copy("accounts_user_groups", ["id", "user_id", "group_id"],
             ((i, u, g) for i, (u, g) in enumerate(memberships, start=1)))  # fmt: skip

    def catalogue(self) -> None:
        copy(Term, ["id", "created_at", "updated_at", "name", "start_date", "end_date", "add_drop_deadline"],
             stamped((t, name, start, end, start + datetime.timedelta(days=20))
                     for t, name, start, end, _ in self.terms))  # fmt: skip
        copy(Department, ["id", "created_at", "updated_at", "code", "name"],
             stamped((d + 1, code, f"Department of {code}") for d, code in enumerate(DEPARTMENTS)))  # fmt: skip
        copy(Program, ["id", "created_at", "updated_at", "department_id", "code", "name"],
             stamped((2 * d + p + 1, d + 1, f"{code}-P{p + 1}", f"Programme {p + 1} of {code}")
                     for d, code in enumerate(DEPARTMENTS) for p in range(2)))  # fmt: skip
        copy(Course, ["id", "created_at", "updated_at", "department_id", "code", "title", "credits"],
             stamped((self.course(d, c), d + 1, f"{code}{101 + c}", f"{code} course {c + 1}", 6)
                     for d, code in enumerate(DEPARTMENTS) for c in range(COURSES_PER_DEPARTMENT)))  # fmt: skip
        copy(Student, ["id", "created_at", "updated_at", "user_id", "student_number", "program_id", "semester",
                       "status", "advisor_id"],
             stamped((s, self.first_student_user + s - 1, f"S{s:07d}", self.program(s), self.semester[s],
                      "suspended" if s % 100 == 99 else "active", self.first_advisor + (s - 1) % self.advisors)
                     for s in range(1, self.n + 1)))  # fmt: skip

    def course(self, department: int, index: int) -> int:
        return department * COURSES_PER_DEPARTMENT + index + 1

    def program(self, student: int) -> int:
        return 1 + (student - 1) // 8 % (2 * len(DEPARTMENTS))

    def department(self, student: int) -> int:
        return (self.program(student) - 1) // 2

    def teaching(self) -> None:
        """Sections, their lecturers, sessions, assessments, enrollments, records, grades and past outcomes."""
        sections, lecturers, enrollments, assessments = [], [], [], []
        members: dict[int, list[tuple[int, int, datetime.date | None]]] = {}  # section -> (enrollment, student, end)
        section_term: dict[int, tuple] = {}
        for term in self.terms:
            term_id, _, start, _, past = term
            demand: dict[int, list[int]] = {}
            offset = PAST_TERMS - term_id + 1  # semesters between this term and the running one
            for student in range(1, self.n + 1):
                semester = self.semester[student] - offset
                if semester < 1:
                    continue
                slot, department = (semester - 1) * 2, self.department(student)
                picks = [self.course(department, slot), self.course(department, slot + 1)]
                for elective in random.Random(f"{student}:{term_id}").sample(  # nosec B311
                    [d for d in range(len(DEPARTMENTS)) if d != department], 2
                ):
                    picks.append(self.course(elective, slot + student % 2))
                for course in picks:
                    demand.setdefault(course, []).append(student)
            for course, students in sorted(demand.items()):
                random.Random(f"{course}:{term_id}").shuffle(students)  # nosec B311
                department = (course - 1) // COURSES_PER_DEPARTMENT
                # One course of the running term, taken in the fourth semester (three terms of history), opens a
                # lecture hall, taught by the department's first lecturer.
                hall = not past and course == self.course(0, HALL_SLOT)
                first, code = 0, 0
                while first < len(students):
                    size = HALL_SIZE if hall and code == 0 else SECTION_SIZE
                    chunk = students[first : first + size]
                    first += size
                    section = len(sections) + 1
                    sections.append((section, course, term_id, f"{code + 1:03d}",
                                     max(SECTION_CAPACITY, len(chunk)), Decimal("0.75")))  # fmt: skip
                    lecturers.append((len(lecturers) + 1, section, self.lecturer(department, 0 if hall and code == 0
                                                                                 else section)))  # fmt: skip
                    section_term[section] = term
                    if hall and code == 0:
                        self.hall = section
                    code += 1
                    rows = members[section] = []
                    for student in chunk:
                        enrollment = len(enrollments) + 1
                        withdrawn = self.rng.random() < WITHDRAW_RATE
                        end = start + datetime.timedelta(weeks=WITHDRAW_WEEK) if withdrawn else None
                        enrollments.append([enrollment, student, section, "withdrawn" if withdrawn else "enrolled",
                                            start, end, None])  # fmt: skip
                        rows.append((enrollment, student, end))
        copy(Section, ["id", "created_at", "updated_at", "course_id", "term_id", "code", "capacity",
                       "min_attendance_rate"], stamped(sections))  # fmt: skip
        copy("students_section_lecturers", ["id", "section_id", "user_id"], lecturers)

        sessions, due = [], {}
        for section, (_, _, start, _, past) in section_term.items():
            held = PAST_SESSIONS if past else HELD_SESSIONS
            for week in range(held + (0 if past else 1 + FUTURE_SESSIONS)):
                day = start + datetime.timedelta(weeks=week)
                state = "closed" if week < held else "scheduled"
                if not past and week == held and section == self.hall:
                    day, state = TODAY, "open"
                sessions.append((len(sessions) + 1, section, at(day, 10), at(day, 12), f"R{section % 200}", 10,
                                 state, f"salt{len(sessions) + 1}", at(day, 10) if state != "scheduled" else None,
                                 at(day, 12) if state == "closed" else None))  # fmt: skip
            for number, (name, weight, max_score, week) in enumerate(ASSESSMENTS):
                assessment = len(assessments) + 1
                day = start + datetime.timedelta(weeks=week)
                assessments.append((assessment, section, name, weight, max_score, day, False))
                if day <= TODAY:
                    due.setdefault(section, []).append((assessment, number))
        copy(ClassSession, ["id", "created_at", "updated_at", "section_id", "starts_at", "ends_at", "room",
                            "late_after_minutes", "state", "token_salt", "opened_at", "closed_at"],
             stamped(sessions))  # fmt: skip
        copy(AttendanceRecord, ["id", "created_at", "updated_at", "session_id", "student_id", "status", "recorded_at",
                                "method", "user_agent", "device_id", "voided", "note"],
             stamped(self.records(sessions, members)))  # fmt: skip
        copy(Assessment, ["id", "created_at", "updated_at", "section_id", "name", "weight", "max_score", "due_date",
                          "computed"], stamped(assessments))  # fmt: skip
        grades, outcomes = self.grades(due, members, section_term, enrollments)
        copy(Grade, ["id", "created_at", "updated_at", "student_id", "assessment_id", "score"], stamped(grades))
        copy(Enrollment, ["id", "created_at", "updated_at", "student_id", "section_id", "status", "enrolled_on",
                          "ended_on", "final_grade"], stamped(enrollments))  # fmt: skip
        copy(
            TermOutcome,
            ["id", "created_at", "updated_at", "student_id", "term_id", "outcome", "source", "note"],
            stamped((i, s, t, outcome, "derived", "") for i, (s, t, outcome) in enumerate(outcomes, start=1)),
        )
        self.counts = {"sections": len(sections), "enrollments": len(enrollments), "sessions": len(sessions),
                       "grades": len(grades), "outcomes": len(outcomes)}  # fmt: skip

    def records(self, sessions, members):
        ids = 0
        for session, section, starts_at, *_, state, _, _, _ in sessions:
            if state != "closed":
                continue
            for _, student, end in members[section]:
                if end is not None and starts_at.date() >= end:
                    continue
                ids += 1
                engagement = self.traits[student][1]
                draw = self.rng.random()
                attend = sigmoid(1.8 + 1.2 * engagement)
                if draw < attend * 0.9:
                    status = "present"
                elif draw < attend:
                    status = "late"
                elif draw < attend + (1 - attend) * 0.15:
                    status = "excused"
                else:
                    status = "absent"
                yield (ids, session, student, status, starts_at + datetime.timedelta(minutes=draw * 20),
                       "qr" if status in ("present", "late") else "manual", "", "", False, "")  # fmt: skip

    def grades(self, due, members, section_term, enrollments):
        grades, outcomes = [], []
        risk: dict[tuple[int, int], list[float]] = {}
        for section, assessments in due.items():
            term = section_term[section]
            for enrollment, student, end in members[section]:
                ability, engagement = self.traits[student]
                total = 0.0
                for assessment, number in assessments:
                    if end is not None and end < term[2] + datetime.timedelta(weeks=ASSESSMENTS[number][3]):
                        continue
                    max_score = ASSESSMENTS[number][2]
                    percent = max(0.0, min(100.0, self.rng.gauss(64 + 11 * ability + 5 * engagement, 9)))
                    total += percent * ASSESSMENTS[number][1] / 100
                    grades.append((len(grades) + 1, student, assessment, round(percent * max_score / 100, 2)))
                if term[4] and end is None:
                    enrollments[enrollment - 1][6] = Decimal(f"{total:.2f}")
                    risk.setdefault((student, term[0]), []).append(total)
                elif term[4]:
                    risk.setdefault((student, term[0]), []).append(-1.0)
        for (student, term_id), finals in sorted(risk.items()):
            engagement = self.traits[student][1]
            finished = [f for f in finals if f >= 0]
            mean = sum(finished) / len(finished) if finished else 0.0
            withdrawn = len(finals) - len(finished)
            p = sigmoid(1.5 * (50 - mean) / 10 - 0.6 * engagement + 0.5 * withdrawn - 0.7)
            if self.rng.random() < p:
                withdrew = not finished or self.rng.random() < sigmoid(-1.2 + 0.8 * withdrawn)
                outcome = "withdrew" if withdrew else "failed"
            else:
                outcome = "passed"
            outcomes.append((student, term_id, outcome))
        return grades, outcomes


def score() -> None:
    """Trains the model on the past terms and scores the running term (real factors and bands)."""
    started = time.monotonic()
    call_command("train_risk_model", verbosity=0)
    term = Term.objects.get(name=f"Scale term {PAST_TERMS + 1}")
    run = scoring_run_execute(scoring_run_create(term=term, trigger=ScoringRun.Trigger.STAFF))
    print(f"[scale data] model trained and {run.students_scored:,} students scored in "
          f"{time.monotonic() - started:.0f} s ({run.status})", flush=True)  # fmt: skip


# Rows that would break the campus's consistency, by kind: each query must count none.
CONSISTENCY = {
    "attendance records of students not enrolled in the session's section, or after they withdrew": """
        SELECT count(*) FROM attendance_attendancerecord r JOIN attendance_classsession s ON s.id = r.session_id
        WHERE NOT EXISTS (SELECT 1 FROM students_enrollment e WHERE e.student_id = r.student_id AND
                          e.section_id = s.section_id AND (e.ended_on IS NULL OR s.starts_at::date < e.ended_on))""",
    "grades of students not enrolled in the assessment's section": """
        SELECT count(*) FROM students_grade g JOIN students_assessment a ON a.id = g.assessment_id
        WHERE NOT EXISTS (SELECT 1 FROM students_enrollment e WHERE e.student_id = g.student_id
                          AND e.section_id = a.section_id)""",
    "enrollments outside their section's term": """
        SELECT count(*) FROM students_enrollment e JOIN students_section s ON s.id = e.section_id
        JOIN students_term t ON t.id = s.term_id WHERE e.enrolled_on NOT BETWEEN t.start_date AND t.end_date""",
    "risk scores of students not enrolled in the running term": """
        SELECT count(*) FROM predictions_riskscore r WHERE NOT EXISTS (SELECT 1 FROM students_enrollment e
        JOIN students_section s ON s.id = e.section_id WHERE e.student_id = r.student_id AND s.term_id = r.term_id)""",
}


def check_sample() -> None:
    """full_clean() on a few rows of every table (spread over its ids): the COPY rows obey the models' rules;
    and across all rows, the consistency above."""
    models = [User, Department, Program, Course, Term, Section, Student, Enrollment, ClassSession, AttendanceRecord,
              Assessment, Grade, TermOutcome, RiskScore]  # fmt: skip
    for model in models:
        last = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        sample = model.objects.filter(pk__in={1 + last * i // 7 for i in range(7)})
        for row in sample:
            row.full_clean()
    with connection.cursor() as cursor:
        for what, sql in CONSISTENCY.items():
            cursor.execute(sql)
            [(stray,)] = cursor.fetchall()
            assert stray == 0, f"{stray} {what}"
    enrolled = Enrollment.objects.filter(section__term__name=f"Scale term {PAST_TERMS + 1}").count()
    print(f"[scale data] a sample of every table passes full_clean(), every row the consistency checks; "
          f"{enrolled:,} enrollments this term", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=20_000)
    options = parser.parse_args()
    started = time.monotonic()
    campus = Campus(options.students)
    campus.build()
    score()
    check_sample()
    print(f"[scale data] campus of {options.students:,} students built in {time.monotonic() - started:.0f} s: "
          f"{campus.counts}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
