"""Headless Chromium, keyboard and form: a student reports an absence in advance, the lecturer approves
it beside the excuses, the session closes, and the student's record is excused, not absent."""

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from attendance.models import AdvanceAbsence, AttendanceRecord
from attendance.services import class_session_close, class_session_open
from tests.e2e.test_attendance import console_of, lecture  # noqa: F401  (lecture: a fixture)
from tests.e2e.test_portal import assert_no_csp_violation, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_student_reports_an_absence_the_lecturer_approves_and_closing_excuses_it(
    page: Page, browser: Browser, live_server, request
):
    world = request.getfixturevalue("lecture")
    session, ana = world["session"], world["ana"]
    console = console_of(page)
    today = timezone.localdate().isoformat()

    page.goto(f"{live_server.url}/attendance/me/advance-absences/")
    sign_in(page, "ana@campus.example")
    expect(page.get_by_role("heading", level=1)).to_have_text("Report an absence")
    page.get_by_label("Course").select_option(label="CS101 Programming One")
    page.get_by_label("First day").fill(today)
    page.get_by_label("Last day").fill(today)
    page.get_by_label("Reason").fill("Dentist appointment")
    page.get_by_role("button", name="Report absence").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your absence was reported to your lecturers.")).to_be_visible()
    report = page.get_by_role("region", name="My reports").get_by_role("listitem").first
    expect(report).to_contain_text("CS101")
    expect(report).to_contain_text("Submitted")
    assert_no_csp_violation(console)

    lecturer = browser.new_context().new_page()
    lecturer.goto(f"{live_server.url}/attendance/excuses/")
    sign_in(lecturer, "lena@campus.example")
    expect(lecturer.get_by_role("heading", name="Absences reported in advance")).to_be_visible()
    lecturer.get_by_role("button", name=f"Approve absence of {ana.student_number}").focus()
    lecturer.keyboard.press("Enter")
    expect(lecturer.get_by_text("approved: they will be excused")).to_be_visible()
    assert AdvanceAbsence.objects.get(student=ana).state == "approved"

    class_session_open(session=session, actor=None)
    class_session_close(session=session, actor=None)
    assert AttendanceRecord.objects.get(session=session, student=ana).status == "excused"
    page.reload()
    expect(page.get_by_role("region", name="My reports")).to_contain_text("Approved")
