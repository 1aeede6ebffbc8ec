"""Headless Chromium on a phone: a student makes an API token from the menu's "API tokens" page by its
labels alone, copies the key from its read-only field, and revokes the token. No CSP violation."""

import pytest
from playwright.sync_api import Page, expect

from accounts.models import ApiToken
from tests.e2e.test_portal import assert_fits_the_screen, assert_no_csp_violation, console, sign_in  # noqa: F401
from tests.factories import StudentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_student_makes_a_token_by_its_labels_copies_the_key_and_revokes_it(page: Page, live_server, console):  # noqa: F811
    student = StudentFactory(user__email="ana@campus.example", user__first_name="Ana")
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(live_server.url + "/accounts/login/")
    sign_in(page, "ana@campus.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    page.get_by_label("Name").fill("timetable app")
    page.get_by_role("group", name="What it may do").get_by_label("Read and write").check()
    page.get_by_label("Expires after").select_option(label="30 days")
    page.get_by_role("button", name="Make token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your new API token")
    key = page.get_by_label("Key")
    expect(key).to_have_attribute("readonly", "")
    token = ApiToken.objects.get(user=student.user)
    assert key.input_value().startswith(f"ciq_{token.prefix}_") and token.scope == "read_write"
    key.focus()
    page.keyboard.press("Control+A")
    selected = "(e => e.id === 'issued-key' && e.value.slice(e.selectionStart, e.selectionEnd))(document.activeElement)"
    assert page.evaluate(selected) == key.input_value()  # the whole key, ready to copy
    assert_fits_the_screen(page)
    page.get_by_role("link", name="Back to your API tokens").click()
    row = page.get_by_role("row", name="timetable app")
    expect(row).to_contain_text("Active")
    row.get_by_role("button", name="Revoke timetable app").click()
    expect(page.get_by_role("status").first).to_contain_text("is revoked")
    expect(page.get_by_role("row", name="timetable app")).to_contain_text("Revoked")
    assert_fits_the_screen(page)
    assert_no_csp_violation(console)
