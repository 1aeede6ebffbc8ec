"""Every request has an id: kept from a well-formed header, generated otherwise, in logs and Celery."""

import json

import pytest
import structlog

from campusiq.core import signals
from campusiq.core.request_id import request_id_from_header
from campusiq.core.tasks import ping

pytestmark = pytest.mark.django_db


def log_lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_generated_when_absent(client):
    first = client.get("/")["X-Request-ID"]
    second = client.get("/")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_well_formed_client_id_is_kept(client):
    response = client.get("/api/v1/", HTTP_X_REQUEST_ID="card-reader-7:req-000123")
    assert response["X-Request-ID"] == "card-reader-7:req-000123"


@pytest.mark.parametrize(
    "bad",
    ["short", "x" * 200, "abc def ghi jkl", "<script>alert(1)</script>", "id\nInjected: header", "ünïcode-request-id"],
)
def test_malformed_client_id_is_replaced(client, bad):
    response = client.get("/api/v1/", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_parser_rejects_and_accepts():
    assert request_id_from_header("abcdefgh") == "abcdefgh"
    assert request_id_from_header("-starts-with-dash") != "-starts-with-dash"
    assert request_id_from_header(None)


def test_access_line_carries_request_id_status_duration_and_user(client, user, log_output):
    client.force_login(user)
    response = client.get("/api/v1/me/", HTTP_X_REQUEST_ID="trace-0001-abcdef")
    access = [line for line in log_lines(log_output) if line.get("logger") == "campusiq.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == response["X-Request-ID"] == "trace-0001-abcdef"
    assert line["method"] == "GET" and line["path"] == "/api/v1/me/" and line["status"] == 200
    assert line["user_id"] == user.pk
    assert isinstance(line["duration_ms"], float)


def test_every_line_during_a_request_carries_its_id(client, log_output):
    client.get("/no-such-page/", HTTP_X_REQUEST_ID="trace-0002-abcdef")
    lines = log_lines(log_output)
    assert lines and all(line.get("request_id") == "trace-0002-abcdef" for line in lines)


def test_context_does_not_leak_between_requests(client, log_output):
    client.get("/", HTTP_X_REQUEST_ID="trace-0003-abcdef")
    structlog.get_logger("test").info("outside any request")
    outside = [line for line in log_lines(log_output) if line["event"] == "outside any request"]
    assert "request_id" not in outside[0]


def test_request_id_is_added_to_published_task_headers():
    structlog.contextvars.bind_contextvars(request_id="trace-0004-abcdef")
    try:
        headers: dict = {}
        signals.add_request_id_header(headers=headers)
        assert headers[signals.REQUEST_ID_HEADER] == "trace-0004-abcdef"
    finally:
        structlog.contextvars.clear_contextvars()


def test_eager_task_logs_carry_request_and_task_ids(log_output):
    structlog.contextvars.bind_contextvars(request_id="trace-0005-abcdef")
    try:
        result = ping.delay("hello")
    finally:
        structlog.contextvars.clear_contextvars()
    assert result.get() == "pong: hello"
    task_lines = [line for line in log_lines(log_output) if line["event"] == "core.ping"]
    assert task_lines[0]["request_id"] == "trace-0005-abcdef"
    assert task_lines[0]["task_id"] == result.id
