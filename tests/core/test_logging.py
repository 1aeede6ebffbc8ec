"""Passwords, tokens, cookies and Authorization headers never reach the logs."""

import json

import pytest
import structlog
from django.test import Client

from campusiq.core.logging import build_logging_config, redact_secrets, redact_value

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


@pytest.mark.parametrize(
    "text",
    [
        "{'email': 'a@b.c', 'password': 'hunter2'}",  # a dict's repr (a frame's local, an exception's args)
        '{"password": "hunter2"}',
        "password='hunter2'",
        "client_secret: hunter2",
        "postgres://campusiq:hunter2@db:5432/campusiq",
        "key ciq_0a1b2c3d_hunter2hunter2hunter2 in use",
        "'tokens': ['hunter2', 'hunter2']",
        "password: '" + "hunter2" * 400 + "'",  # longer than a quoted value is looked into
    ],
)
def test_redaction_of_secrets_written_into_text(text):
    assert "hunter2" not in redact_value(text)


def test_exceptions_are_logged_with_their_frames_but_never_their_locals(log_output):
    def sign_in(email: str, password: str) -> None:
        login = (email, password)  # a form no redaction recognises
        raise RuntimeError(f"refused ({len(login)})")

    try:
        sign_in("a@b.c", "Pa55-in-a-local")
    except RuntimeError:
        structlog.get_logger("test").exception("sign_in_failed")
    (line,) = [json.loads(line) for line in log_output.getvalue().splitlines() if "sign_in_failed" in line]
    frames = line["exception"][0]["frames"]
    assert [frame["name"] for frame in frames][-1] == "sign_in" and line["exception"][0]["exc_value"] == "refused (2)"
    assert all("locals" not in frame for frame in frames)
    assert "Pa55-in-a-local" not in log_output.getvalue()


def test_the_console_format_prints_no_locals_either():
    formatter_config = dict(build_logging_config(log_format="console", level="INFO")["formatters"]["console"])
    renderer = formatter_config["processors"][-1]
    password = "Pa55-in-a-local"  # nosec B105
    try:
        raise RuntimeError(f"refused ({len(password)})")
    except RuntimeError as error:
        rendered = renderer(None, "error", {"event": "x", "exc_info": (type(error), error, error.__traceback__)})
    assert "refused (15)" in rendered and password not in rendered


@pytest.mark.parametrize(
    "unit", ["token-", "password_", "a.", "x-token:[", "cookie: (", 'secret: "a', "password='\\", "a://b:c"]
)
def test_redaction_is_linear_in_the_text(unit):
    # Every path and query string is redacted for the access line: a pattern that backtracks over a
    # long crafted path would cost a worker seconds per request. Eight times the text: about eight times
    # the work (a quadratic pattern is ~64 times); the best of three runs, so a busy machine reads alike.
    import time

    def cost(repeats: int) -> float:
        text = unit * repeats
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            redact_value(text)
            runs.append(time.perf_counter() - started)
        return min(runs)

    assert cost(8_000) < 24 * cost(1_000)
