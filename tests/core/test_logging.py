"""Passwords, tokens, cookies and Authorization headers never reach the logs."""

import pytest
import structlog
from django.test import Client

from campusiq.core.logging import redact_secrets

pytestmark = pytest.mark.django_db

SECRETS = ["S3cret-Passw0rd!", "tok_9f8e7d6c5b4a39281706", "sessioncookievalue1234567890"]


def test_requests_with_secrets_leave_none_in_logs(user, log_output):
    client = Client(raise_request_exception=False)
    client.post("/accounts/login/", {"username": user.email, "password": SECRETS[0]})
    client.get(
        f"/api/v1/me/?token={SECRETS[1]}",
        HTTP_AUTHORIZATION=f"Bearer {SECRETS[1]}",
        HTTP_COOKIE=f"sessionid={SECRETS[2]}",
    )
    structlog.get_logger("test").warning(
        "login attempt", password=SECRETS[0], authorization=f"Bearer {SECRETS[1]}", note=f"sessionid={SECRETS[2]}"
    )
    output = log_output.getvalue()
    assert "login attempt" in output
    for secret in SECRETS:
        assert secret not in output


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        ("x", "password", "hunter2"),
        ("x", "new_password1", "hunter2"),
        ("x", "api_key", "hunter2"),
        ("x", "HTTP_AUTHORIZATION", "Basic aHVudGVyMjpodW50ZXIy"),
        ("x", "headers", {"Cookie": "hunter2", "Accept": "json"}),
        ("sent Token abcdefgh12345678hunter2", "detail", "nothing"),
        ("x", "url", "/reset?token=hunter2&x=1"),
    ],
)
def test_redaction(event, field, value):
    rendered = str(redact_secrets(None, "info", {"event": event, field: value}))
    assert "hunter2" not in rendered and "aHVudGVyMjpodW50ZXIy" not in rendered


def test_redaction_keeps_harmless_fields():
    event = redact_secrets(
        None, "info", {"event": "request", "path": "/api/v1/", "status": 200, "headers": {"Accept": "json"}}
    )
    assert event == {"event": "request", "path": "/api/v1/", "status": 200, "headers": {"Accept": "json"}}
