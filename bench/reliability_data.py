"""Builds the reliability workload's campus (untimed) and writes what locust needs to a JSON file:
students who sign in to the portal, students with personal API tokens for the check-in bursts, an
integrator (a service account with the Registrar role and a read token), accounts to guess the
passwords of, and one open class session per run, each a fresh lecture every student can attend.

    python bench/reliability_data.py OUT.json CHECK_IN_STUDENTS   (under the production environment)

Used by tests/reliability/ and bench/reliability.py.
"""

import json
import secrets
import sys

import django

django.setup()

from campus import open_sessions, term_and_program  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402

from accounts.models import ApiToken, User  # noqa: E402
from accounts.roles import Role, group_name  # noqa: E402
from accounts.tokens import api_token_issue  # noqa: E402
from students.models import Course, Enrollment, Section, Student  # noqa: E402

PORTAL_STUDENTS = 20
SESSIONS = ("mixed", "redis", "postgres", "bench")


def main(path: str, check_in_students: int) -> None:
    term, program = term_and_program("Reliability", "REL")
    course = Course.objects.create(department=program.department, code="REL101", title="Failure modes", credits=6)
    total = PORTAL_STUDENTS + check_in_students
    section = Section.objects.create(course=course, term=term, capacity=total)
    password = secrets.token_urlsafe(12)
    hashed = make_password(password)  # one Argon2 hash for every portal student: building stays quick
    users = User.objects.bulk_create(
        [
            User(
                email=f"rel{i}@campus.example",
                first_name="Rel",
                last_name=str(i),
                password=hashed if i < PORTAL_STUDENTS else "!",
            )
            for i in range(total)
        ]
    )
    Group.objects.get(name=group_name(Role.STUDENT)).user_set.add(*users)
    students = Student.objects.bulk_create(
        [Student(user=u, student_number=f"R{i:06d}", program=program, semester=1) for i, u in enumerate(users)]
    )
    Enrollment.objects.bulk_create(
        [Enrollment(student=s, section=section, enrolled_on=term.start_date) for s in students], batch_size=2000
    )
    sessions = open_sessions([(section, f"Hall {name}") for name in SESSIONS], hours=6)
    check_in_users = users[PORTAL_STUDENTS:]
    keys = [api_token_issue(user=u, name="phone", scope=ApiToken.Scope.READ_WRITE)[1] for u in check_in_users]
    integrator = User.objects.create(email="bi@campus.example", first_name="BI", is_service_account=True)
    integrator.set_unusable_password()
    integrator.save(update_fields=["password"])
    Group.objects.get(name=group_name(Role.REGISTRAR)).user_set.add(integrator)
    _, integrator_key = api_token_issue(user=integrator, name="BI sync", scope=ApiToken.Scope.READ)
    # Accounts whose passwords are guessed at (one per phase of a run: limits are counted per account).
    targets = User.objects.bulk_create(
        [User(email=f"target{i}@campus.example", first_name="Target", password=hashed) for i in range(4)]
    )
    data = {
        "password": password,
        "portal": [u.email for u in users[:PORTAL_STUDENTS]],
        "check_in": {"keys": keys, "students": [s.pk for s in students[PORTAL_STUDENTS:]]},
        "integrator_key": integrator_key,
        "brute_force_targets": [u.email for u in targets],
        "section": section.pk,
        "sessions": {name: {"id": s.pk, "salt": s.token_salt} for name, s in zip(SESSIONS, sessions, strict=True)},
    }
    with open(path, "w") as out:
        json.dump(data, out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
