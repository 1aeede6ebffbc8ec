"""Headless Chromium through the portal: a student reads their grades, a lecturer enters one and sees
the running average move. The Content Security Policy must hold on every page on the way."""

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def console(page: Page) -> list[str]:
    """Everything the browser logs, page errors included: CSP violations show up here."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(str(error)))
    return messages


@pytest.fixture
def course():
    lecturer = UserFactory(roles=[Role.LECTURER], email="lena@campus.example", first_name="Lena", last_name="Lee")
    section = SectionFactory(lecturers=[lecturer], course=CourseFactory(code="CS101", title="Programming One"))
    quiz = AssessmentFactory(section=section, name="Quiz 1", weight=Decimal("20"), max_score=Decimal("20"))
    exam = AssessmentFactory(section=section, name="Midterm", weight=Decimal("30"), max_score=Decimal("100"))
    ana = StudentFactory(
        user__email="ana@campus.example", user__first_name="Ana", user__last_name="Almeida", student_number="S1000001"
    )
    ben = StudentFactory(user__first_name="Benedikt", user__last_name="Brandauer", student_number="S1000002")
    for student in (ana, ben):
        EnrollmentFactory(student=student, section=section)
    GradeFactory(student=ana, assessment=quiz, score=Decimal("15"))
    GradeFactory(student=ben, assessment=quiz, score=Decimal("4"))
    return {"lecturer": lecturer, "section": section, "quiz": quiz, "exam": exam, "ana": ana, "ben": ben}


def sign_in(page: Page, email: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def assert_fits_the_screen(page: Page) -> None:
    # Wide tables scroll inside their box; the page itself never scrolls sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


def assert_no_csp_violation(console: list[str]) -> None:
    assert not [m for m in console if "Content Security Policy" in m or "Refused to" in m], console


def test_student_signs_in_and_sees_their_grades(page: Page, live_server, course, console):
    page.set_viewport_size({"width": 375, "height": 740})  # a phone
    page.goto(live_server.url + "/portal/student/")
    page.wait_for_url("**/accounts/login/?next=/portal/student/")
    sign_in(page, "ana@campus.example")
    page.wait_for_url("**/portal/student/")
    expect(page.get_by_role("heading", level=1)).to_have_text("My courses and grades")
    expect(page.get_by_role("heading", name="CS101 Programming One")).to_be_visible()
    grades = page.get_by_role("region", name="CS101 Programming One")
    expect(grades.get_by_role("row", name="Quiz 1")).to_contain_text("15 / 20")
    expect(grades.get_by_role("row", name="Midterm")).to_contain_text("not graded")
    expect(page.get_by_text("Running average: 75.0 %")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Brandauer")
    assert_fits_the_screen(page)
    page.get_by_role("link", name="My profile").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My profile")
    expect(page.locator("main")).to_contain_text("S1000001")
    assert_no_csp_violation(console)


def test_lecturer_enters_a_grade_and_sees_the_running_average_change(page: Page, live_server, course, console):
    section, ana = course["section"], course["ana"]
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign in").first.click()
    sign_in(page, "lena@campus.example")
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("link", name="My sections").first.click()
    page.get_by_role("link", name="CS101 Programming One").click()
    page.wait_for_url(f"**/portal/lecturer/sections/{section.pk}/")
    roster = page.get_by_role("region", name="Roster (2 students)")
    ana_row = roster.get_by_role("row", name="Ana Almeida")
    expect(ana_row).to_contain_text("75.0 %")
    assert_fits_the_screen(page)

    page.get_by_role("link", name="Enter grades for Midterm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Grades for Midterm")
    score = page.get_by_label(f"Ana Almeida ({ana.student_number})")
    assert_fits_the_screen(page)
    # A score above the maximum: nothing is saved and the error sits by the field.
    score.fill("120")
    page.get_by_role("button", name="Save grades").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(score).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#id_score-{ana.pk}_error")).to_have_text("Enter a score between 0 and 100.00.")
    # Corrected, and submitted from the keyboard.
    score.fill("60")
    score.press("Enter")
    page.wait_for_url(f"**/portal/lecturer/sections/{section.pk}/")
    expect(page.get_by_role("status")).to_contain_text("Saved 1 grade for Midterm.")
    # (15/20 x 20 + 60/100 x 30) / 50 = 66.0 %
    expect(roster.get_by_role("row", name="Ana Almeida")).to_contain_text("66.0 %")
    expect(roster.get_by_role("row", name="Benedikt Brandauer")).to_contain_text("20.0 %")
    assert_no_csp_violation(console)


def test_another_lecturers_section_is_not_found_in_the_browser(page: Page, live_server, course, console):
    UserFactory(roles=[Role.LECTURER], email="other@campus.example")
    page.goto(live_server.url + f"/portal/lecturer/sections/{course['section'].pk}/")
    sign_in(page, "other@campus.example")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    assert_no_csp_violation(console)
