"""structlog for every log line: JSON in production, console in development, secrets redacted.

Django's own loggers and ours share one pipeline (structlog's ProcessorFormatter), so every line
carries the request id bound by RequestIdMiddleware or the Celery task signals.
"""

import re
from typing import Any

import structlog
import structlog.tracebacks

SENSITIVE_KEY = re.compile(r"pass(word|wd)?|secret|token|authorization|cookie|csrf|session|api[-_]?key", re.I)
# A secret's name anywhere in text: password, new_password1, access_token, client_secret, api-key... The
# match starts at the secret word itself (what precedes it stays as it is) and the name's tail is
# bounded, so redaction is linear in the text: "token-" repeated over an 8 KB path took a second per
# line when the pattern also reached back to the start of the name.
SECRET_NAME_PATTERN = (
    r"(?:pass(?:word|wd)|pwd|secret|token|authori[sz]ation|cookie|csrf|sessionid|session_key|api[-_]?key)"  # noqa: S105  # nosec B105  (names, not a password)
    r"[\w-]{0,40}"
)
SENSITIVE_TEXT = [
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # repr'd dicts, JSON and kwargs: 'password': 'x', "token": "x", password='x' (quotes kept, escapes honoured).
    (
        re.compile(rf"""(?i)({SECRET_NAME_PATTERN}['"]?\s*[:=]\s*b?(['"]))(?:\\.|(?!\2).){{0,2048}}\2"""),
        r"\1[redacted]\2",
    ),
    # ... and one too long for that (a quoted value is bounded so that an unclosed quote costs little).
    (re.compile(rf"""(?i)({SECRET_NAME_PATTERN}['"]?\s*[:=]\s*b?['"])[^'"\s]{{2048,}}"""), r"\1[redacted]"),
    # A list or tuple of them: 'tokens': ['x', 'y'].
    (
        re.compile(rf"""(?i)({SECRET_NAME_PATTERN}['"]?\s*[:=]\s*)(?:\[[^\]]{{0,2048}}\]|\([^)]{{0,2048}}\))"""),
        r"\1[redacted]",
    ),
    # Unquoted: password=x, token: x, Cookie: sessionid=x (form bodies, query strings, headers, YAML-ish text).
    (
        re.compile(rf"""(?i)({SECRET_NAME_PATTERN}['"]?\s*[:=]\s*)(?!\[redacted\]|b?['"])[^\s&;,'"}}\])]+"""),
        r"\1[redacted]",
    ),
    # The password in a URL: postgres://user:password@host/.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^:/@\s]+):[^@\s/]+@"), r"\1:[redacted]@"),
    # API keys by their shape (accounts/tokens.py: ciq_<prefix>_<secret>), whatever surrounds them.
    (re.compile(r"\bciq_[0-9a-f]{8}_[A-Za-z0-9_-]{16,}"), "ciq_[redacted]"),
]
REDACTED = "[redacted]"
NEVER_SENSITIVE_KEYS = {"level", "logger", "timestamp", "request_id", "task_id"}


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, replacement in SENSITIVE_TEXT:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if SENSITIVE_KEY.search(str(k)) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict) -> dict:
    """Never let a password, token, cookie or Authorization header reach a log line."""
    for key, value in list(event_dict.items()):
        if key in NEVER_SENSITIVE_KEYS:
            continue
        event_dict[key] = REDACTED if SENSITIVE_KEY.search(key) else redact_value(value)
    return event_dict


def _drop_stdlib_extras(_logger: Any, _method: str, event_dict: dict) -> dict:
    # Django attaches the request object to its log records; it is not serialisable, and may hold secrets.
    event_dict.pop("request", None)
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    return event_dict


_current_span_context = None  # set by campusiq.core.telemetry while tracing is on


def trace_ids_enable(current_span_context) -> None:
    """`current_span_context()` gives OpenTelemetry's current SpanContext (campusiq.core.telemetry)."""
    global _current_span_context
    _current_span_context = current_span_context


def add_trace_ids(_logger: Any, _method: str, event_dict: dict) -> dict:
    """The current span's trace and span ids on the line while tracing is on; off, a None check."""
    if _current_span_context is not None:
        context = _current_span_context()
        if context.is_valid:
            event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
            event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


# An exception as a dict of frames (file, line, function), never their local variables: a local may
# hold a password in a form no redaction can recognise.
TRACEBACK_WITHOUT_LOCALS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)

SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.PositionalArgumentsFormatter(),
    add_trace_ids,
]


def build_logging_config(*, log_format: str, level: str) -> dict:
    def formatter(renderer: Any, *extra: Any) -> dict:
        return {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": SHARED_PROCESSORS,
            "processors": [
                _drop_stdlib_extras,
                *extra,
                redact_secrets,
                renderer,
            ],
        }

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": formatter(structlog.processors.JSONRenderer(), TRACEBACK_WITHOUT_LOCALS),
            # Plain tracebacks: rich's (the default when it is installed) print every frame's locals.
            "console": formatter(
                structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
            ),
        },
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": log_format},
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Our access line replaces these two; they would log every request twice.
            "django.server": {"level": "WARNING"},
            "gunicorn.access": {"level": "WARNING"},
            "django.request": {"level": "ERROR"},
            "celery": {"level": "INFO"},
            # pysaml2 logs whole SAML messages (names, attributes) at INFO and below: personal data.
            "saml2": {"level": "WARNING"},
            # pysaml2's schema library announces each schema it loads, at every start.
            "xmlschema": {"level": "WARNING"},
        },
    }


def configure_structlog() -> None:
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
