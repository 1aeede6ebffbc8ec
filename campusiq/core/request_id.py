"""The request id: accepted from the client when well formed, else generated; bound to every log line."""

import re
import uuid

import structlog

# Long enough to be unique, short and plain enough to be safe in headers and logs.
WELL_FORMED_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")


def request_id_from_header(value: str | None) -> str:
    if value and WELL_FORMED_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")
