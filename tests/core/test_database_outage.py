"""PostgreSQL down: 503 at once, in the API's problem shape under /api/ and as a page on the portal,
with Retry-After; logged once when the outage starts and once when it ends, not per request.
(tests/reliability/test_postgres_restart.py stops a real PostgreSQL under a real gunicorn.)"""

import json

import pytest
from django.contrib.auth import middleware as auth_middleware
from django.db import OperationalError

from campusiq.core import middleware
from tests.core.error_urls import DATABASE_DOWN

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.error_urls")]


@pytest.fixture(autouse=True)
def no_outage_yet(monkeypatch):
    monkeypatch.setattr(middleware, "database_outage", middleware._DatabaseOutage())


def lines(log_output, event: str | None = None) -> list[dict]:
    parsed = [json.loads(line) for line in log_output.getvalue().splitlines()]
    return [line for line in parsed if event is None or line.get("event") == event]


def test_api_answers_503_in_the_problem_shape(client, log_output):
    response = client.post("/api/test/database-down/", HTTP_X_REQUEST_ID="db-down-0001-abcdef")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "type": "urn:campusiq:problem:service_unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "The service is temporarily unavailable; nothing was changed. Try again shortly.",
        "code": "service_unavailable",
        "request_id": "db-down-0001-abcdef",
        "instance": "/api/test/database-down/",
    }
    assert "5432" not in response.content.decode()  # the cause is logged, not shown
    assert "Traceback" not in log_output.getvalue()


def test_portal_answers_a_readable_503_page(client):
    response = client.get("/test/database-down/", HTTP_X_REQUEST_ID="db-down-0002-abcdef")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "db-down-0002-abcdef" in page and "5432" not in page


def test_an_outage_is_logged_when_it_starts_and_when_it_ends_not_per_request(client, log_output):
    for _ in range(3):
        assert client.post("/api/test/database-down/").status_code == 503
    assert client.get("/test/database-down/").status_code == 503
    (started,) = lines(log_output, "database.unavailable")
    assert started["level"] == "warning" and DATABASE_DOWN in started["error"]
    # No "Service Unavailable" error line from django.request per request: the access line has each.
    assert not [line for line in lines(log_output) if line.get("logger") == "django.request"]
    assert len([line for line in lines(log_output, "request") if line["status"] == 503]) == 4
    assert client.get("/api/v1/terms/").status_code in {401, 403}  # a request that reached the database
    (ended,) = lines(log_output, "database.available")
    assert ended["failed_requests"] == 4
    assert client.post("/api/test/database-down/").status_code == 503
    assert len(lines(log_output, "database.unavailable")) == 2  # a new outage is said again


def test_a_signed_in_page_is_503_even_though_the_user_cannot_be_loaded(client, user, monkeypatch, log_output):
    """Resolving request.user reads the session from the database; the access line must not try again
    after the view failed (it would turn the 503 into a 500)."""
    client.force_login(user)

    def database_down(request):
        raise OperationalError(DATABASE_DOWN)

    monkeypatch.setattr(auth_middleware.auth, "get_user", database_down)
    response = client.get("/portal/student/")
    assert response.status_code == 503
    (access,) = [line for line in lines(log_output, "request") if line["path"] == "/portal/student/"]
    assert access["status"] == 503 and access["user_id"] is None


def test_other_errors_are_still_500s(client):
    client.raise_request_exception = False
    assert client.get("/api/test/crash/").status_code == 500
