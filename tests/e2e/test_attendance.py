"""Headless Chromium through a class session: the lecturer opens check-in and puts the rotating QR
code on the screen; a student follows the code's link on their phone, signs in, confirms, and the
count on the screen goes up. The Content Security Policy must hold on every page on the way."""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from tests.e2e.test_portal import assert_fits_the_screen, assert_no_csp_violation, sign_in
from tests.factories import (
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ROTATION_SECONDS = 3


def console_of(page: Page) -> list[str]:
    """Everything the page logs, page errors included: CSP violations show up here."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(str(error)))
    return messages


@pytest.fixture
def lecture(settings):
    settings.ATTENDANCE_QR_ROTATION_SECONDS = ROTATION_SECONDS  # live_server runs in this process
    today = timezone.localdate()
    term = TermFactory(
        name="This term",
        start_date=today - datetime.timedelta(days=30),
        end_date=today + datetime.timedelta(days=60),
        add_drop_deadline=today - datetime.timedelta(days=16),
    )
    lecturer = UserFactory(roles=[Role.LECTURER], email="lena@campus.example", first_name="Lena", last_name="Lee")
    section = SectionFactory(
        term=term, lecturers=[lecturer], course=CourseFactory(code="CS101", title="Programming One")
    )
    ana = StudentFactory(user__email="ana@campus.example", user__first_name="Ana", user__last_name="Almeida")
    EnrollmentFactory(student=ana, section=section)
    now = timezone.now()
    session = ClassSessionFactory(
        section=section, starts_at=now - datetime.timedelta(minutes=2), ends_at=now + datetime.timedelta(minutes=88)
    )
    return {"section": section, "session": session, "ana": ana}


def test_lecturer_shows_a_rotating_qr_code_and_a_student_checks_in(page: Page, browser: Browser, live_server, lecture):
    section, session, ana = lecture["section"], lecture["session"], lecture["ana"]
    lecturer_console = console_of(page)
    page.set_viewport_size({"width": 1280, "height": 720})  # a projector

    # The lecturer opens check-in from the section's sessions page.
    page.goto(f"{live_server.url}/attendance/sections/{section.pk}/sessions/")
    sign_in(page, "lena@campus.example")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Class sessions: CS101 Programming One")
    page.get_by_role("button", name=re.compile("Open check-in")).click()
    expect(page.get_by_role("status")).to_contain_text("Check-in is open")
    assert ClassSession.objects.get(pk=session.pk).state == ClassSession.State.OPEN

    # The full-screen display: a QR code, the code beside it, the count.
    page.get_by_role("link", name="Show QR code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check in: CS101 Programming One")
    qr = page.get_by_role("img", name="QR code to check in")
    expect(qr).to_be_visible()
    main = page.locator("main")
    count = page.locator("[data-count]")
    expect(count).to_have_text("0")
    first_step = main.get_attribute("data-step")
    first_code = page.locator("[data-code]").inner_text()
    first_svg = page.locator("[data-qr]").inner_html()
    assert re.fullmatch(r"\d{6}", first_code)

    # After the rotation interval the code and QR change, without reloading the page.
    page.evaluate("window.stillTheSamePage = true")
    expect(main).not_to_have_attribute("data-step", first_step, timeout=ROTATION_SECONDS * 3000)
    assert page.evaluate("window.stillTheSamePage === true")
    expect(page.locator("[data-code]")).not_to_have_text(first_code)
    assert page.locator("[data-qr]").inner_html() != first_svg
    expect(qr).to_be_visible()

    # A student follows the link the QR code carries, on a phone, in their own browser.
    phone = browser.new_context(viewport={"width": 375, "height": 740})
    student_page = phone.new_page()
    student_console = console_of(student_page)
    check_in_url = main.get_attribute("data-check-in-url")
    assert re.fullmatch(rf"{re.escape(live_server.url)}/c/[\w.-]+/", check_in_url)
    student_page.goto(check_in_url)
    student_page.wait_for_url("**/accounts/login/?next=/attendance/check-in/confirm/")
    sign_in(student_page, "ana@campus.example")
    student_page.wait_for_url("**/attendance/check-in/confirm/")
    expect(student_page.get_by_role("heading", level=1)).to_have_text("Check in")
    expect(student_page.locator("main")).to_contain_text("CS101 Programming One")
    assert not AttendanceRecord.objects.exists()  # only the button writes
    assert_fits_the_screen(student_page)
    student_page.get_by_role("button", name="Check me in").click()
    expect(student_page.get_by_role("heading", level=1)).to_have_text("You are checked in")
    expect(student_page.locator(".check-in-status")).to_have_text("present")
    assert_fits_the_screen(student_page)

    record = AttendanceRecord.objects.get()
    assert (record.student_id, record.session_id, record.status, record.method) == (ana.pk, session.pk, "present", "qr")
    assert record.device_id  # the browser's signed device cookie

    # The screen's count goes up on its own.
    expect(count).to_have_text("1", timeout=10_000)
    assert page.evaluate("window.stillTheSamePage === true")
    phone.close()
    assert_no_csp_violation(lecturer_console)
    assert_no_csp_violation(student_console)


def test_student_checks_in_with_the_code_on_a_phone(page: Page, live_server, lecture):
    from attendance import qr
    from attendance.services import class_session_open

    session = class_session_open(session=lecture["session"], actor=None)
    console = console_of(page)
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{live_server.url}/attendance/check-in/code/")
    sign_in(page, "ana@campus.example")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code on the screen")
    code = qr.numeric_code(session, qr.step_at(timezone.now()))
    page.get_by_label("Code on the screen").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("main")).to_contain_text("That code does not match")
    page.get_by_label("Code on the screen").fill(qr.numeric_code(session, qr.step_at(timezone.now())))
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Check me in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are checked in")
    assert AttendanceRecord.objects.get().method == "code"
    page.get_by_role("link", name="My attendance").last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My attendance")
    expect(page.get_by_role("img", name=re.compile("Attendance in CS101"))).to_be_visible()
    assert_fits_the_screen(page)
    assert_no_csp_violation(console)
