"""Headless Chromium: a lecturer whose class is waiting signs in and puts the check-in code on the screen.
From "Today" it is one click; the path through the section's pages (still there) takes five. Each test
counts the clicks it makes after landing, so the numbers in the issue are measured, not claimed."""

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from attendance.models import ClassSession
from tests.e2e.test_attendance import console_of, lecture  # noqa: F401  (a fixture, used by name)
from tests.e2e.test_portal import assert_no_csp_violation, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def waiting_class(request) -> ClassSession:
    """test_attendance's lecture: CS101 taught by Lena, started two minutes ago, check-in not open yet."""
    return request.getfixturevalue("lecture")["session"]


class Clicks:
    """Clicks the locator and counts it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, locator: Locator) -> None:
        locator.click()
        self.count += 1


def land_signed_in(page: Page, live_server) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})  # a projector
    page.goto(live_server.url + "/accounts/login/")
    sign_in(page, "lena@campus.example")
    page.wait_for_url(live_server.url + "/")


def expect_the_code_on_the_screen(page: Page, session: ClassSession) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Check in: CS101 Programming One")
    expect(page.get_by_role("img", name="QR code to check in")).to_be_visible()
    assert re.fullmatch(r"\d{6}", page.locator("[data-code]").inner_text())
    session.refresh_from_db()
    assert session.state == ClassSession.State.OPEN


def test_from_today_the_lecturer_opens_and_shows_the_code_in_one_click(page: Page, live_server, waiting_class):
    console = console_of(page)
    land_signed_in(page, live_server)
    expect(page.get_by_role("heading", level=1)).to_have_text("Today")
    click = Clicks()

    click(page.get_by_role("button", name=re.compile("Open and show code")))

    page.wait_for_url(f"**/attendance/sessions/{waiting_class.pk}/display/")
    expect_the_code_on_the_screen(page, waiting_class)
    assert click.count == 1
    # Back on Today, the open session offers the code again, and nothing opens twice.
    page.goto(live_server.url + "/")
    expect(page.get_by_role("link", name=re.compile("Show code"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Open and show code"))).to_have_count(0)
    assert_no_csp_violation(console)


def test_the_path_through_the_section_pages_takes_five_clicks(page: Page, live_server, waiting_class):
    land_signed_in(page, live_server)
    click = Clicks()

    click(page.get_by_role("link", name="My sections").first)
    click(page.get_by_role("link", name="CS101 Programming One"))
    click(page.get_by_role("link", name="Class sessions and check-in"))
    click(page.get_by_role("button", name=re.compile("Open check-in")))
    expect(page.get_by_role("status")).to_contain_text("Check-in is open")
    click(page.get_by_role("link", name="Show QR code"))

    expect_the_code_on_the_screen(page, waiting_class)
    assert click.count == 5
