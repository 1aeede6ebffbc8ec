"""The timed part of the marking benchmark (bench/marking.py), with the production environment of
bench/harness.py: builds the section (untimed), then times each request in this process.

    python bench/marking_run.py STUDENTS OUT.json
"""

import datetime
import json
import statistics
import sys
import time

import django

django.setup()

from campus import open_sessions, term_and_program  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.roles import Role, group_name  # noqa: E402
from attendance.models import AttendanceRecord, ClassSession  # noqa: E402
from attendance.services import attendance_marks_save  # noqa: E402
from students.models import Course, Enrollment, Section, Student  # noqa: E402

PAGE_RUNS = 40
SAVE_RUNS = 20  # under the marks-save rate limit of one lecturer (30 a minute)
PAST_SESSIONS = 12


def campus(size: int) -> tuple[User, ClassSession, list[int]]:
    term, program = term_and_program("Marking", "MRK")
    users = User.objects.bulk_create(
        [User(email=f"mark{i}@campus.example", first_name="Mark", last_name=str(i)) for i in range(size)]
    )
    Group.objects.get(name=group_name(Role.STUDENT)).user_set.add(*users)
    students = Student.objects.bulk_create(
        [Student(user=u, student_number=f"M{i:06d}", program=program, semester=1) for i, u in enumerate(users)]
    )
    lecturer = User.objects.create(email="lecturer@campus.example", first_name="Lena", last_name="Lecturer")
    Group.objects.get(name=group_name(Role.LECTURER)).user_set.add(lecturer)
    course = Course.objects.create(department=program.department, code="MRK101", title="Marking", credits=6)
    section = Section.objects.create(course=course, term=term, capacity=size)
    section.lecturers.add(lecturer)
    Enrollment.objects.bulk_create(
        [Enrollment(student=s, section=section, enrolled_on=term.start_date) for s in students]
    )
    [session] = open_sessions([(section, "Hall")], hours=2)
    past = ClassSession.objects.bulk_create(
        [
            ClassSession(
                section=section,
                starts_at=session.starts_at - datetime.timedelta(weeks=n + 1),
                ends_at=session.ends_at - datetime.timedelta(weeks=n + 1),
                state=ClassSession.State.CLOSED,
            )
            for n in range(PAST_SESSIONS)
        ]
    )
    AttendanceRecord.objects.bulk_create(
        [
            AttendanceRecord(session=p, student=s, status="present", recorded_at=p.starts_at, method="qr")
            for p in past
            for s in students
        ],
        batch_size=5000,
    )
    return lecturer, session, [s.pk for s in students]


def timed(action, runs: int) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "n": runs,
        "p50": statistics.median(times),
        "p95": statistics.quantiles(times, n=20)[18],
    }


def main(size: int, path: str) -> None:
    lecturer, session, student_ids = campus(size)
    client = Client(HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https")
    client.force_login(lecturer)
    take = reverse("attendance:session-take", args=[session.pk])
    statuses = iter(["late", "present"] * SAVE_RUNS)

    def get(url: str):
        def action():
            response = client.get(url, secure=True)
            assert response.status_code == 200, response.status_code

        return action

    def save_page():
        status = next(statuses)
        response = client.post(take, {f"mark-{pk}": status for pk in student_ids}, secure=True)
        assert response.status_code == 302, response.status_code

    service_statuses = iter(["absent", "present"] * SAVE_RUNS)

    def save_service():
        attendance_marks_save(session=session, marks=dict.fromkeys(student_ids, next(service_statuses)), actor=lecturer)

    timings = {
        "take page": timed(get(take), PAGE_RUNS),
        "bulk save (page)": timed(save_page, SAVE_RUNS),
        "bulk save (service)": timed(save_service, SAVE_RUNS),
        "marks json": timed(get(reverse("attendance:session-marks-json", args=[session.pk])), PAGE_RUNS),
        "roster grid (13 sessions)": timed(get(reverse("attendance:section-roster", args=[session.section_id])), 10),
    }
    marked = AttendanceRecord.objects.filter(session=session).values_list("status", flat=True)
    result = {
        "students": size,
        "timings": timings,
        "every_student_marked": len(marked) == size and len(set(marked)) == 1,
    }
    with open(path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
