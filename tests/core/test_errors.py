"""Every API error answers in the one documented shape (RFC 9457 problem+json) with the request id."""

import json

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.error_urls")]

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id", "instance"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:campusiq:problem:{code}"
    assert body["request_id"] == response["X-Request-ID"]
    return body


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def test_validation_error_lists_each_field(client):
    response = client.post(
        "/api/test/echo/",
        data=json.dumps({"student_number": "X1", "credits": 99, "tags": ["ok", "toolong"]}),
        content_type="application/json",
    )
    body = assert_problem(response, 400, "validation_error")
    fields = {error["field"]: error["code"] for error in body["errors"]}
    assert fields == {"student_number": "invalid", "credits": "max_value", "tags.1": "max_length"}


def test_missing_fields_are_reported(client):
    response = client.post("/api/test/echo/", data="{}", content_type="application/json")
    body = assert_problem(response, 400, "validation_error")
    assert {error["field"] for error in body["errors"]} == {"student_number", "credits"}
    assert all(error["code"] == "required" for error in body["errors"])


def test_valid_input_passes(client):
    response = client.post(
        "/api/test/echo/", data=json.dumps({"student_number": "S123456", "credits": 6}), content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json() == {"student_number": "S123456", "credits": 6}


def test_malformed_json(client):
    response = client.post("/api/test/echo/", data='{"credits": ', content_type="application/json")
    body = assert_problem(response, 400, "malformed_request")
    assert "JSON" in body["detail"]


def test_unsupported_media_type(client):
    response = client.post("/api/test/echo/", data="credits=3", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")


def test_oversized_body_is_refused_before_parsing(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post(
        "/api/test/echo/", data=json.dumps({"student_number": "S" + "1" * 5000}), content_type="application/json"
    )
    assert_problem(response, 413, "request_too_large")


def test_oversized_form_post_on_portal_gets_friendly_page(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post("/accounts/login/", data={"username": "a" * 5000, "password": "x"})
    assert response.status_code == 413
    assert b"larger than we accept" in response.content


def test_unauthenticated(client):
    body = assert_problem(client.get("/api/v1/me/"), 401, "not_authenticated")
    assert body["instance"] == "/api/v1/me/"


def test_unauthenticated_response_names_a_scheme(client):
    assert client.get("/api/v1/me/")["WWW-Authenticate"].startswith("Bearer")


def test_forbidden_csrf_on_api_with_session(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/test/conflict/", data="{}", content_type="application/json")
    assert_problem(response, 403, "csrf_failed")


def test_unknown_api_url(client):
    assert_problem(client.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_unknown_portal_url_gets_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"could not find the page" in response.content
    assert response["X-Request-ID"].encode() in response.content


def test_method_not_allowed(client):
    response = client.delete("/api/v1/")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_conflict(client):
    body = assert_problem(
        client.post("/api/test/conflict/", data="{}", content_type="application/json"), 409, "already_enrolled"
    )
    assert body["detail"] == "The student is already enrolled in this section."


def test_rate_limited_api(rf):
    from django_ratelimit.exceptions import Ratelimited

    from campusiq.core.views import permission_denied

    request = rf.get("/api/v1/")
    request.request_id = "abcdefgh12345678"
    body = json.loads(permission_denied(request, Ratelimited()).content)
    assert body["status"] == 429 and body["code"] == "rate_limited" and body["request_id"] == "abcdefgh12345678"


def test_rate_limited_portal_page(rf):
    from django_ratelimit.exceptions import Ratelimited

    from campusiq.core.views import permission_denied

    response = permission_denied(rf.get("/accounts/login/"), Ratelimited())
    assert response.status_code == 429
    assert b"tried that too often" in response.content


def test_server_error_hides_the_traceback(client, log_output):
    response = client.get("/api/test/crash/")
    body = assert_problem(response, 500, "server_error")
    text = response.content.decode()
    assert "Traceback" not in text and "secret internal detail" not in text and "hunter2" not in text
    logged = log_output.getvalue()
    assert body["request_id"] in logged
    assert "hunter2" not in logged


def test_portal_server_error_page(client):
    response = client.get("/test/crash/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"portal failure" not in response.content
    assert response["X-Request-ID"].encode() in response.content


def test_portal_csrf_failure_gets_readable_page(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", data={"username": user.email, "password": "x"})
    assert response.status_code == 403
    assert b"This form expired" in response.content
