"""structlog for every log line: JSON in production, console in development, secrets redacted.

Django's own loggers and ours share one pipeline (structlog's ProcessorFormatter), so every line
carries the request id bound by RequestIdMiddleware or the Celery task signals.
"""

import re
from typing import Any

import structlog

SENSITIVE_KEY = re.compile(r"pass(word|wd)?|secret|token|authorization|cookie|csrf|session|api[-_]?key", re.I)
SENSITIVE_TEXT = [
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(password|passwd|secret|token|sessionid|csrftoken)=([^&\s;]+)"), r"\1=[redacted]"),
]
REDACTED = "[redacted]"
NEVER_SENSITIVE_KEYS = {"level", "logger", "timestamp", "request_id", "task_id"}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, replacement in SENSITIVE_TEXT:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if SENSITIVE_KEY.search(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict) -> dict:
    """Never let a password, token, cookie or Authorization header reach a log line."""
    for key, value in list(event_dict.items()):
        if key in NEVER_SENSITIVE_KEYS:
            continue
        event_dict[key] = REDACTED if SENSITIVE_KEY.search(key) else _redact_value(value)
    return event_dict


def _drop_stdlib_extras(_logger: Any, _method: str, event_dict: dict) -> dict:
    # Django attaches the request object to its log records; it is not serialisable, and may hold secrets.
    event_dict.pop("request", None)
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    return event_dict


SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.PositionalArgumentsFormatter(),
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
            "json": formatter(structlog.processors.JSONRenderer(), structlog.processors.dict_tracebacks),
            "console": formatter(structlog.dev.ConsoleRenderer(colors=False)),
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
