"""The child processes of the import benchmark (bench/imports.py), each with its own peak RSS:

    python bench/imports_run.py data DIR            build the campus (ORM bulk writes, untimed), write the files
    python bench/imports_run.py run KIND FILE OUT   import FILE as a job of KIND (timed), write figures to OUT

(with the production environment of bench/harness.py). The campus: 10,000 students in a past term, two
sections of 100 each, 5 assessments per section (100,000 grades) and 25 sessions (500,000 marks, whose
sessions the import creates).
"""

import csv
import datetime
import json
import random
import resource
import sys
import time
from pathlib import Path

import django

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.files import File  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from attendance.models import AttendanceRecord, ClassSession  # noqa: E402
from campusiq.core.imports import import_job_create  # noqa: E402
from campusiq.core.tasks import import_job_run  # noqa: E402
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
)

STUDENTS = 10_000
SECTION_SIZE = 100
SECTIONS_PER_STUDENT = 2
ASSESSMENTS = 5
SESSIONS = 25
TERM = "Bench past term"
SMALL_FRACTION = 5  # the small files hold the first fifth of the rows


def _term_start() -> datetime.date:
    return timezone.localdate() - datetime.timedelta(weeks=40)


def data(directory: Path) -> None:
    start = _term_start()
    term = Term.objects.create(
        name=TERM,
        start_date=start,
        end_date=start + datetime.timedelta(weeks=16),
        add_drop_deadline=start + datetime.timedelta(weeks=2),
    )
    department = Department.objects.create(code="BEN", name="Benchmarks")
    program = Program.objects.create(department=department, code="BENP", name="Bench program")
    unusable = make_password(None)
    users = User.objects.bulk_create(
        User(email=f"s{i}@bench.example", password=unusable, first_name="Bench", last_name=str(i))
        for i in range(STUDENTS)
    )
    students = Student.objects.bulk_create(
        Student(user=user, student_number=f"B{i:07d}", program=program) for i, user in enumerate(users)
    )
    sections_count = STUDENTS * SECTIONS_PER_STUDENT // SECTION_SIZE
    courses = Course.objects.bulk_create(
        Course(department=department, code=f"B{c:04d}", title=f"Course {c}", credits=6) for c in range(sections_count)
    )
    sections = Section.objects.bulk_create(
        Section(course=course, term=term, capacity=SECTION_SIZE) for course in courses
    )
    Assessment.objects.bulk_create(
        Assessment(section=section, name=f"Test {a}", weight=20, max_score=20)
        for section in sections
        for a in range(ASSESSMENTS)
    )
    rng = random.Random(2026)
    members: list[tuple[Section, list[Student]]] = []
    for round_ in range(SECTIONS_PER_STUDENT):
        order = students[:]
        random.Random(round_).shuffle(order)
        per_round = len(sections) // SECTIONS_PER_STUDENT
        for s, section in enumerate(sections[round_ * per_round : (round_ + 1) * per_round]):
            members.append((section, order[s * SECTION_SIZE : (s + 1) * SECTION_SIZE]))
    Enrollment.objects.bulk_create(
        Enrollment(student=student, section=section, enrolled_on=start)
        for section, group in members
        for student in group
    )
    keys = ["student_number", "term", "course", "section"]
    grades = [
        (student.student_number, TERM, section.course.code, "A", f"Test {a}", f"{rng.uniform(0, 20):.2f}")
        for section, group in members
        for student in group
        for a in range(ASSESSMENTS)
    ]
    _write(directory, "grades", [*keys, "assessment", "score"], grades)
    moments = [
        timezone.make_aware(datetime.datetime.combine(start + datetime.timedelta(days=7 * (n // 2) + 2 * (n % 2)),
                                                      datetime.time(9))).isoformat()
        for n in range(SESSIONS)
    ]  # fmt: skip
    statuses = ["present"] * 8 + ["late", "absent"]
    marks = [
        (student.student_number, TERM, section.course.code, "A", moment, rng.choice(statuses))
        for section, group in members
        for moment in moments
        for student in group
    ]
    _write(directory, "attendance_marks", [*keys, "session_start", "status"], marks)


def _write(directory: Path, kind: str, header: list[str], rows: list[tuple]) -> None:
    for size, count in (("small", len(rows) // SMALL_FRACTION), ("big", len(rows))):
        with open(directory / f"{kind}_{size}.csv", "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows[:count])


def run(kind: str, path: Path, out: Path) -> None:
    # Each run starts from no grades and no marks, so small and big files write all their rows. TRUNCATE,
    # not the ORM's delete (which loads the rows to cascade), and the file streamed into the job: the
    # process's peak memory is then the import's own.
    tables = ", ".join(model._meta.db_table for model in (AttendanceRecord, ClassSession, Grade))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    actor = User.objects.create(email=f"registrar-{time.time_ns()}@bench.example", is_staff=True)
    with open(path, "rb") as handle:
        job = import_job_create(kind=kind, upload=File(handle, name=path.name), actor=actor)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    status = import_job_run.apply(kwargs={"job_id": job.pk}).get()
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    result = {
        "kind": kind,
        "file": path.name,
        "status": status,
        "rows": job.rows_done,
        "written": job.rows_written,
        "errors": job.errors[:3],
        "seconds": seconds,
        "rows_per_second": job.rows_done / seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "data":
        data(Path(sys.argv[2]))
    else:
        run(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
