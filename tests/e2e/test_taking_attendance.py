"""Headless Chromium, keyboard only: a lecturer takes attendance by hand while a student checks in
(the page shows the check-in on its own), sets every unmarked student absent, and closes the session
after the confirmation says how many it will mark absent."""

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from attendance.models import AttendanceRecord, ClassSession
from attendance.services import attendance_check_in, class_session_open
from students.models import Student
from tests.e2e.test_attendance import console_of, lecture  # noqa: F401  (lecture: a fixture)
from tests.e2e.test_portal import assert_no_csp_violation, sign_in
from tests.factories import EnrollmentFactory, StudentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def class_of_three(request):
    """test_attendance's lecture (Ana in CS101, a session that started two minutes ago), opened, with
    Ben and Cleo besides, numbered in the order the page lists them."""
    world = request.getfixturevalue("lecture")
    session, ana = world["session"], world["ana"]
    Student.objects.filter(pk=ana.pk).update(student_number="S1")
    others = []
    for number, first in (("S2", "Ben"), ("S3", "Cleo")):
        student = StudentFactory(student_number=number, user__first_name=first)
        EnrollmentFactory(student=student, section=session.section, enrolled_on=timezone.localdate())
        others.append(student)
    return class_session_open(session=session, actor=None), [ana, *others]


def tab_to(page: Page, condition: str, *, limit: int = 80) -> None:
    """Presses Tab until the focused element meets `condition` (JavaScript, `el` the focused element)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!el && ({condition}); }})()"):
            return
    raise AssertionError(f"Tab never reached {condition}")


def focused_text(name: str) -> str:
    return f"el.textContent.trim() === {name!r}"


def test_lecturer_takes_attendance_with_the_keyboard_and_closes(page: Page, live_server, class_of_three):
    session, (ana, ben, cleo) = class_of_three
    console = console_of(page)
    page.goto(f"{live_server.url}/attendance/sessions/{session.pk}/take/")
    sign_in(page, "lena@campus.example")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Take attendance: CS101")

    # Ben checks in on his phone while the page is open: it shows up without a reload.
    attendance_check_in(student=ben, session=session, method="qr")
    expect(page.locator(f"#mark-{ben.pk}-present")).to_be_checked(timeout=15_000)

    # Ana's group: Tab into it, the arrow keys choose (present, then late).
    tab_to(page, f"el.name === 'mark-{ana.pk}'")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    expect(page.locator(f"#mark-{ana.pk}-late")).to_be_checked()
    # Tab leaves the group for the next student's, not the next mark.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == f"mark-{ben.pk}"

    # Everyone still unmarked (Cleo) absent, then save.
    tab_to(page, "el.id === 'id_unmarked_to'")
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(page.locator("#id_unmarked_to")).to_have_value("absent")
    tab_to(page, focused_text("Save marks"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("2 marks saved.")
    marks = dict(AttendanceRecord.objects.filter(session=session).values_list("student_id", "status"))
    assert marks == {ana.pk: "late", ben.pk: "present", cleo.pk: "absent"}

    # Closing asks first, saying how many it will mark absent.
    tab_to(page, focused_text("Back to the session"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("CS101")
    expect(page.get_by_role("link", name="Close session")).to_be_visible()
    tab_to(page, focused_text("Close session"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Close the CS101 session")
    expect(page.locator("#close-outcome")).to_contain_text("0 students have no mark and will be marked absent.")
    assert ClassSession.objects.get(pk=session.pk).state == ClassSession.State.OPEN  # asking changed nothing
    tab_to(page, focused_text("Close session"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("Session closed.")
    assert ClassSession.objects.get(pk=session.pk).state == ClassSession.State.CLOSED
    assert AttendanceRecord.objects.filter(session=session).count() == 3
    assert_no_csp_violation(console)
