"""Error tracking and tracing are off unless configured, and then cost nothing; Sentry's events are
scrubbed before they leave (end to end on real processes: test_telemetry_live.py)."""

import json
import subprocess
import sys

from campusiq.core.logging import add_trace_ids
from campusiq.core.telemetry import sentry_event_scrubbed
from tests.support.processes import ROOT

PROBE = """
import os, sys, django
django.setup()
import campusiq.wsgi
from django.conf import settings
loaded = sorted({m.split(".")[0] + ("." + m.split(".")[1] if "." in m else "") for m in sys.modules
                 if m.startswith(("sentry_sdk", "opentelemetry.instrumentation", "opentelemetry.sdk.trace",
                                  "opentelemetry.exporter"))})
added = [m for m in settings.MIDDLEWARE if "telemetry" in m or "opentelemetry" in m]
print(json.dumps({"loaded": loaded, "middleware": added}))
"""


def probe(**env: str) -> dict:
    environment = {"DJANGO_SETTINGS_MODULE": "campusiq.settings.dev", "PATH": "/usr/bin:/bin", **env}
    result = subprocess.run([sys.executable, "-c", "import json\n" + PROBE], env=environment, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_off_by_default_neither_library_is_imported_nor_any_middleware_added():
    assert probe() == {"loaded": [], "middleware": []}


def test_each_turns_on_by_its_own_setting():
    sentry = probe(SENTRY_DSN="http://public@127.0.0.1:9/1")
    assert "sentry_sdk" in {name.split(".")[0] for name in sentry["loaded"]}
    assert not [name for name in sentry["loaded"] if name.startswith("opentelemetry")]
    assert sentry["middleware"] == ["campusiq.core.telemetry.SentryUserMiddleware"]
    tracing = probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert "opentelemetry.instrumentation" in tracing["loaded"] and "sentry_sdk" not in str(tracing["loaded"])
    assert tracing["middleware"] == [
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    ]


def test_sentry_events_keep_the_request_id_and_user_id_and_lose_everything_personal(monkeypatch):
    monkeypatch.setattr("campusiq.core.telemetry.current_request_id", lambda: "req-1234567890")
    event = {
        "user": {"id": "42", "email": "ana@campus.example", "ip_address": "10.0.0.9"},
        "request": {"url": "https://campus.example/api/v1/auth/token/", "method": "POST",
                    "data": {"password": "hunter2"}, "cookies": {"sessionid": "hunter2"},
                    "headers": {"Authorization": "Bearer hunter2hunter2"}, "query_string": "token=hunter2"},
        "extra": {"held": "('ana', 'hunter2')"},
        "exception": {"values": [{"value": "could not reach postgres://u:hunter2@db/x"}]},
        "logentry": {"message": "sign-in failed password=hunter2"},
    }  # fmt: skip
    scrubbed = sentry_event_scrubbed(event)
    assert scrubbed["tags"] == {"request_id": "req-1234567890"}
    assert scrubbed["user"] == {"id": "42"}
    assert scrubbed["request"] == {"url": "https://campus.example/api/v1/auth/token/", "method": "POST"}
    assert "extra" not in scrubbed and "hunter2" not in json.dumps(scrubbed)


def test_log_lines_carry_no_trace_ids_while_tracing_is_off():
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
