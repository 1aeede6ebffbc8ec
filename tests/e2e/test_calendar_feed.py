"""Headless Chromium: a student makes their calendar feed's address by keyboard, copies it with the
button (CSP intact: the button's script is a static file), and a calendar client with no cookies
reads their timetable from it; after revoking, the address is dead."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_attendance import console_of
from tests.e2e.test_portal import assert_no_csp_violation, sign_in
from tests.factories import ClassSessionFactory, CourseFactory, EnrollmentFactory, SectionFactory, StudentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_student_makes_copies_and_revokes_their_feed(page: Page, browser: Browser, live_server, this_term):
    section = SectionFactory(term=this_term, course=CourseFactory(code="CS101", title="Programming One"))
    EnrollmentFactory(student=StudentFactory(user__email="ana@campus.example"), section=section)
    start = timezone.now() + datetime.timedelta(days=1)
    ClassSessionFactory(section=section, starts_at=start, ends_at=start + datetime.timedelta(hours=1), room="B-101")
    console = console_of(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    page.goto(live_server.url + "/attendance/calendar/")
    sign_in(page, "ana@campus.example")
    page.wait_for_url("**/attendance/calendar/")
    make = page.get_by_role("button", name="Make my feed address")
    make.focus()
    page.keyboard.press("Enter")
    address = page.get_by_role("textbox", name="Feed address")
    expect(address).to_be_visible()
    url = address.input_value()
    assert url.startswith(live_server.url + "/calendar/") and url.endswith(".ics")

    page.get_by_role("button", name="Copy the address").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert_no_csp_violation(console)

    calendar_app = browser.new_context()  # no cookies: what a calendar client sends
    feed = calendar_app.request.get(url)
    assert feed.status == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert "SUMMARY:CS101 Programming One" in feed.text() and "LOCATION:B-101" in feed.text()

    page.get_by_role("button", name="Revoke my feed").click()
    expect(page.get_by_text("Your calendar feed was revoked")).to_be_visible()
    assert calendar_app.request.get(url).status == 404
    calendar_app.close()
