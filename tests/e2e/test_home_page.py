"""Headless Chromium loads the portal and the Content Security Policy holds."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_page_loads_with_no_csp_violation(page, live_server):
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(live_server.url + "/")
    assert response.status == 200
    assert page.get_by_role("heading", name="Welcome to CampusIQ").is_visible()
    # Our own script ran (it marks the page), so 'self' scripts are allowed.
    page.wait_for_function("document.documentElement.classList.contains('js')")
    assert not [m for m in messages if "Content Security Policy" in m], messages


def test_csp_blocks_an_injected_inline_script(page, live_server):
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(live_server.url + "/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.injected") is None
    page.wait_for_timeout(200)
    assert any("Content Security Policy" in m for m in messages), messages


def test_sign_in_link_works_from_keyboard(page, live_server):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign in").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/accounts/login/")
    assert page.get_by_label("Email").is_visible()
