"""The attendance API tests' world: two sections, their people, and an open session in each."""

import datetime

from attendance import models as attendance
from tests.factories import SESSION_START, ClassSessionFactory, SectionFactory, StudentFactory

DURING = SESSION_START + datetime.timedelta(minutes=3)  # during the sessions, on time: late after 10 minutes


def attendance_world() -> dict:
    """Student S in section X (lecturer L, advisor A), student O in section Y (lecturer L2, advisor A2),
    and an open session in each, both at SESSION_START (rooms B2.14 and C1.01)."""
    from accounts.roles import Role
    from tests.factories import EnrollmentFactory, TermFactory, UserFactory

    term = TermFactory(name="2026 Autumn")
    lecturer, other_lecturer = UserFactory(roles=[Role.LECTURER]), UserFactory(roles=[Role.LECTURER])
    advisor, other_advisor = UserFactory(roles=[Role.ADVISOR]), UserFactory(roles=[Role.ADVISOR])
    section_x = SectionFactory(term=term, lecturers=[lecturer])
    section_y = SectionFactory(term=term, lecturers=[other_lecturer])
    student = StudentFactory(advisor=advisor, student_number="S-SUBJECT-1")
    other = StudentFactory(advisor=other_advisor, student_number="S-OTHER-99")
    EnrollmentFactory(student=student, section=section_x)
    EnrollmentFactory(student=other, section=section_y)
    open_ = attendance.ClassSession.State.OPEN
    session_x = ClassSessionFactory(section=section_x, room="B2.14", state=open_, opened_at=SESSION_START)
    session_y = ClassSessionFactory(section=section_y, room="C1.01", state=open_, opened_at=SESSION_START)
    return {
        "term": term,
        "lecturer": lecturer,
        "other_lecturer": other_lecturer,
        "advisor": advisor,
        "other_advisor": other_advisor,
        "registrar": UserFactory(roles=[Role.REGISTRAR]),
        "admin": UserFactory(roles=[Role.ADMIN]),
        "section_x": section_x,
        "section_y": section_y,
        "student": student,
        "other": other,
        "session_x": session_x,
        "session_y": session_y,
    }
