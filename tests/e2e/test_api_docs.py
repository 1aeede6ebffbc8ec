"""Swagger UI and ReDoc render from local assets under the Content Security Policy."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("path", "marker"), [("/api/docs/", "/api/v1/students/"), ("/api/redoc/", "CampusIQ API")])
def test_api_documentation_renders_without_script_violations(page, live_server, path, marker):
    messages, requests = [], []
    page.on("console", lambda message: messages.append(message.text))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(live_server.url + path)
    page.get_by_text(marker).first.wait_for(timeout=15000)
    assert not [m for m in messages if "script-src" in m], messages
    # Everything the page needs comes from this server (ReDoc's decorative logo link is blocked, not needed).
    outside = [url for url in requests if not url.startswith((live_server.url, "data:", "blob:"))]
    assert all("redoc.ly" in url for url in outside), outside
