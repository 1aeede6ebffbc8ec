"""Who sees which students: each viewer exactly their own scope."""

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.roles import Role
from students.models import Student
from students.selectors import sections_taught_by, student_get_visible, students_visible_to, term_current
from tests.factories import EnrollmentFactory, SectionFactory, StudentFactory, TermFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campus():
    lecturer = UserFactory(roles=[Role.LECTURER])
    advisor = UserFactory(roles=[Role.ADVISOR])
    both = UserFactory(roles=[Role.LECTURER, Role.ADVISOR])
    taught = SectionFactory(lecturers=[lecturer])
    other_section = SectionFactory(lecturers=[both])
    ana = StudentFactory(advisor=advisor)
    ben = StudentFactory(advisor=both)
    caio = StudentFactory()
    EnrollmentFactory(student=ana, section=taught)
    EnrollmentFactory(student=caio, section=taught)
    EnrollmentFactory(student=ben, section=other_section)
    return {
        "lecturer": lecturer,
        "advisor": advisor,
        "both": both,
        "ana": ana,
        "ben": ben,
        "caio": caio,
        "taught": taught,
    }


def visible(user) -> set[str]:
    return set(students_visible_to(user).values_list("student_number", flat=True))


def test_student_sees_only_themself(campus):
    assert visible(campus["ana"].user) == {campus["ana"].student_number}


def test_lecturer_sees_students_of_their_sections(campus):
    assert visible(campus["lecturer"]) == {campus["ana"].student_number, campus["caio"].student_number}


def test_advisor_sees_only_advisees(campus):
    assert visible(campus["advisor"]) == {campus["ana"].student_number}


def test_lecturer_who_advises_sees_both_scopes_without_duplicates(campus):
    rows = list(students_visible_to(campus["both"]))
    assert {s.student_number for s in rows} == {campus["ben"].student_number}
    assert len(rows) == 1


def test_registrar_and_admin_see_everyone(campus):
    for role in (Role.REGISTRAR, Role.ADMIN):
        assert len(visible(UserFactory(roles=[role]))) == Student.objects.count() == 3


def test_anonymous_and_roleless_see_nobody(campus):
    assert visible(AnonymousUser()) == set()
    assert visible(UserFactory()) == set()


def test_get_visible_raises_for_others(campus):
    assert student_get_visible(viewer=campus["advisor"], student_id=campus["ana"].pk) == campus["ana"]
    with pytest.raises(Student.DoesNotExist):
        student_get_visible(viewer=campus["advisor"], student_id=campus["caio"].pk)


def test_sections_taught_by(campus):
    assert list(sections_taught_by(campus["lecturer"])) == [campus["taught"]]


def test_term_current_prefers_running_then_latest_started_then_next():
    past = TermFactory(
        start_date=datetime.date(2026, 2, 1),
        end_date=datetime.date(2026, 6, 30),
        add_drop_deadline=datetime.date(2026, 2, 14),
    )
    running = TermFactory(
        start_date=datetime.date(2026, 9, 1),
        end_date=datetime.date(2026, 12, 20),
        add_drop_deadline=datetime.date(2026, 9, 14),
    )
    assert term_current(datetime.date(2026, 10, 1)) == running
    assert term_current(datetime.date(2026, 7, 15)) == past
    assert term_current(datetime.date(2025, 1, 1)) == past
