"""Headless Chromium: a lecturer, with the keyboard only, counts attendance as a grade; the student
then finds it among their grades, computed from their marks. The Content Security Policy holds."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from tests.e2e.test_attendance import console_of
from tests.e2e.test_portal import assert_no_csp_violation, sign_in
from tests.factories import (
    SESSION_START,
    AssessmentFactory,
    AttendanceRecordFactory,
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lecturer_counts_attendance_and_the_student_sees_the_grade(page: Page, browser: Browser, live_server):
    lecturer = UserFactory(roles=[Role.LECTURER], email="lena@campus.example")
    section = SectionFactory(lecturers=[lecturer], course=CourseFactory(code="CS101", title="Programming One"))
    AssessmentFactory(section=section, name="Quiz 1", weight=Decimal("20"), max_score=Decimal("20"))
    ana = StudentFactory(user__email="ana@campus.example", user__first_name="Ana")
    EnrollmentFactory(student=ana, section=section)
    for day, status in enumerate([AttendanceRecord.Status.PRESENT, AttendanceRecord.Status.LATE]):
        starts_at = SESSION_START + datetime.timedelta(days=day)
        session = ClassSessionFactory(section=section, starts_at=starts_at, state=ClassSession.State.CLOSED,
                                      ends_at=starts_at + datetime.timedelta(minutes=90))  # fmt: skip
        AttendanceRecordFactory(session=session, student=ana, status=status)
    lecturer_console = console_of(page)

    page.goto(f"{live_server.url}/attendance/sections/{section.pk}/attendance-grade/")
    sign_in(page, "lena@campus.example")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Attendance grade: CS101 Programming One")
    page.get_by_label("Weight (% of the final grade)").focus()
    page.keyboard.type("10")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Leave out the lowest sessions")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Attendance counts as a grade")
    expect(page.get_by_role("main")).to_contain_text("10 % of the final grade")
    assert_no_csp_violation(lecturer_console)

    student_page = browser.new_context().new_page()
    student_console = console_of(student_page)
    student_page.goto(live_server.url + "/portal/student/")
    sign_in(student_page, "ana@campus.example")
    grades = student_page.get_by_role("region", name="CS101 Programming One")
    expect(grades.get_by_role("row", name="Attendance")).to_contain_text("75 / 100")  # (2 + 1) / (2 x 2)
    assert_no_csp_violation(student_console)
