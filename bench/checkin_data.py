"""Builds the check-in benchmark's campus (untimed) and writes what the load tool needs to a JSON file:
students with personal API tokens ("logged in before measuring"), and the open sessions.

    python bench/checkin_data.py OUT.json   (with the production environment of bench/harness.py)
"""

import json
import sys

import django

django.setup()

from campus import open_sessions, term_and_program  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402

from accounts.models import ApiToken, User  # noqa: E402
from accounts.roles import Role, group_name  # noqa: E402
from accounts.tokens import api_token_issue  # noqa: E402
from students.models import Course, Enrollment, Section, Student  # noqa: E402

LECTURE_HALL = 500
CAPACITY_STUDENTS = 2000
CAPACITY_SECTIONS = 12  # fresh (session, student) pairs for the capacity and floor runs


def main(path: str) -> None:
    term, program = term_and_program("Bench", "BEN")
    student_group = Group.objects.get(name=group_name(Role.STUDENT))
    users = User.objects.bulk_create(
        [User(email=f"bench{i}@campus.example", first_name="Bench", last_name=str(i)) for i in range(CAPACITY_STUDENTS)]
    )
    student_group.user_set.add(*users)
    students = Student.objects.bulk_create(
        [Student(user=u, student_number=f"B{i:06d}", program=program, semester=1) for i, u in enumerate(users)]
    )
    sections = []
    for name in ["hall", "stampede", *[f"cap{i}" for i in range(CAPACITY_SECTIONS)]]:
        course = Course.objects.create(department=program.department, code=f"B-{name}", title=name, credits=6)
        sections.append(Section.objects.create(course=course, term=term, capacity=CAPACITY_STUDENTS))
    enrollments = []
    for index, section in enumerate(sections):
        members = students[:LECTURE_HALL] if index < 2 else students
        enrollments += [Enrollment(student=s, section=section, enrolled_on=term.start_date) for s in members]
    Enrollment.objects.bulk_create(enrollments, batch_size=5000)
    sessions = open_sessions([(section, f"R{index}") for index, section in enumerate(sections)], hours=3)
    keys = [api_token_issue(user=u, name="bench phone", scope=ApiToken.Scope.READ_WRITE)[1] for u in users]
    data = {
        "keys": keys,
        "hall": {"id": sessions[0].pk, "salt": sessions[0].token_salt},
        "stampede": {"id": sessions[1].pk, "salt": sessions[1].token_salt},
        "capacity": [{"id": s.pk, "salt": s.token_salt} for s in sessions[2:]],
        "lecture_hall": LECTURE_HALL,
    }
    with open(path, "w") as out:
        json.dump(data, out)


if __name__ == "__main__":
    main(sys.argv[1])
