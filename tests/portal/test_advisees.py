"""The advisor's page of one advisee: grades and, beside them, each course's attendance (rate, absences,
lates, the absences the minimum still allows); another advisor's advisee is a 404; the page's queries
do not grow with the number of courses."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from tests.factories import (
    AssessmentFactory,
    AttendanceRecordFactory,
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
Status = AttendanceRecord.Status


@pytest.fixture
def advisor():
    return UserFactory(roles=[Role.ADVISOR], first_name="Adele", last_name="Advisor")


@pytest.fixture
def section(term):
    return SectionFactory(
        term=term, course=CourseFactory(code="CS101", title="Programming One"), min_attendance_rate=Decimal("0.75")
    )


@pytest.fixture
def ana(section, advisor):
    names = {"student__user__first_name": "Ana", "student__user__last_name": "Almeida"}
    return EnrollmentFactory(section=section, student__advisor=advisor, **names).student


def sessions(section, *, held: int, upcoming: int) -> list[ClassSession]:
    """`held` sessions in the days before now, then `upcoming` after it."""
    now = timezone.now()
    return [
        ClassSessionFactory(section=section, starts_at=now - datetime.timedelta(days=held - i)) for i in range(held)
    ] + [ClassSessionFactory(section=section, starts_at=now + datetime.timedelta(days=i + 1)) for i in range(upcoming)]


def attend(student, held: list[ClassSession], statuses: list[str]) -> None:
    for session, status in zip(held, statuses, strict=False):
        AttendanceRecordFactory(session=session, student=student, status=status)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_of(client: Client, student) -> str:
    response = client.get(reverse("portal:advisee-detail", kwargs={"student_id": student.pk}))
    assert response.status_code == 200
    return " ".join(response.content.decode().replace("&nbsp;", " ").split())


def test_advisee_page_shows_grades_and_attendance_of_each_course(advisor, ana, section):
    quiz = AssessmentFactory(section=section, name="Quiz 1", weight=Decimal("20"), max_score=Decimal("20"))
    GradeFactory(student=ana, assessment=quiz, score=Decimal("16"))
    # 4 of 8 sessions held: present, late, absent, present. 3/4 = 75 %; the minimum needs 6 of 8, so one
    # more absence is still allowed.
    held = sessions(section, held=4, upcoming=4)[:4]
    attend(ana, held, [Status.PRESENT, Status.LATE, Status.ABSENT, Status.PRESENT])
    page = page_of(signed_in(advisor), ana)
    assert "Ana Almeida" in page and "16 / 20" in page and "80.0 %" in page
    assert "Attendance: <strong>75 %</strong>" in page and "(minimum 75 %)" in page
    assert "<dt>Absent</dt><dd>1</dd>" in page.replace("> <", "><")
    assert "<dt>Late</dt><dd>1</dd>" in page.replace("> <", "><")
    assert "<dt>Sessions held</dt><dd>4 / 8</dd>" in page.replace("> <", "><")
    assert "May miss 1 more session and still reach the minimum." in page
    # The attendance sits inside the course's own block, after its grades heading.
    course_block = page[page.index('id="course-') : page.index('id="past-terms"')]
    assert "CS101" in course_block and "Attendance:" in course_block


def test_advisee_who_can_no_longer_reach_the_minimum_is_marked(advisor, ana, section):
    held = sessions(section, held=4, upcoming=2)[:4]
    attend(ana, held, [Status.ABSENT, Status.ABSENT, Status.ABSENT, Status.PRESENT])
    page = page_of(signed_in(advisor), ana)
    assert "Attendance: <strong>25 %</strong>" in page
    assert "can no longer reach the minimum" in page and "May miss" not in page


def test_a_course_without_sessions_yet_says_so(advisor, ana):
    page = page_of(signed_in(advisor), ana)
    assert 'Attendance: <span class="muted">no session held yet</span>' in page


def test_advisee_page_of_someone_elses_advisee_or_nobodys_is_not_found(advisor, term, section):
    client = signed_in(advisor)
    others = [StudentFactory(advisor=UserFactory(roles=[Role.ADVISOR])), StudentFactory()]
    for student in others:
        EnrollmentFactory(student=student, section=section)
        response = client.get(reverse("portal:advisee-detail", kwargs={"student_id": student.pk}))
        assert response.status_code == 404


def test_the_advisees_page_shows_no_classmates_attendance(advisor, ana, section):
    classmate = StudentFactory(student_number="S1000002")
    EnrollmentFactory(student=classmate, section=section)
    held = sessions(section, held=2, upcoming=0)
    attend(ana, held, [Status.PRESENT, Status.PRESENT])
    attend(classmate, held, [Status.LATE, Status.LATE])
    page = page_of(signed_in(advisor), ana)
    assert "Attendance: <strong>100 %</strong>" in page and "<dt>Late</dt><dd>0</dd>" in page.replace("> <", "><")
    assert "S1000002" not in page


def test_advisee_page_queries_do_not_grow_with_courses(advisor, term):
    counts = []
    for courses in (1, 6):
        student = StudentFactory(advisor=advisor)
        for _ in range(courses):
            section = SectionFactory(term=term)
            EnrollmentFactory(student=student, section=section)
            AssessmentFactory(section=section)
            attend(student, sessions(section, held=2, upcoming=1), [Status.PRESENT, Status.LATE])
        client = signed_in(advisor)
        with CaptureQueriesContext(connection) as queries:
            page = page_of(client, student)
        assert page.count("Sessions held") == courses
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
