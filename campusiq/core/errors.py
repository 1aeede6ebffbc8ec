"""One error format for the whole API: RFC 9457 problem details (application/problem+json).

    {"type": "urn:campusiq:problem:validation_error", "title": "Invalid input", "status": 400,
     "detail": "...", "code": "validation_error", "request_id": "...", "instance": "/api/v1/...",
     "errors": [{"field": "score", "message": "...", "code": "max_value"}]}

Services raise ServiceError with a code; DRF exceptions and the cases Django answers on its own
(404, 413, CSRF, 500) are mapped here, once. docs/API.md documents the shape and every code.
"""

from http import HTTPStatus
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import Http404, HttpRequest, JsonResponse
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions

PROBLEM_CONTENT_TYPE = "application/problem+json"
WHOLE_BODY_KEYS = {NON_FIELD_ERRORS, "non_field_errors"}
API_PATH_PREFIX = "/api/"

# DRF exception class -> our machine-readable code.
API_EXCEPTION_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "malformed_request"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.Throttled, "rate_limited"),
]


class ServiceError(DjangoValidationError):
    """A business rule refused the action. Raised by services; the API answers with its status and
    code, and Django forms (the admin, the portal) show it as an ordinary validation error."""

    status = 400

    def __init__(self, code: str, detail: str, *, status: int | None = None, field: str | None = None):
        super().__init__(detail, code=code)
        self.code = code
        self.detail = detail
        self.field = field
        if status is not None:
            self.status = status


class ConflictError(ServiceError):
    status = 409


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


def problem_response(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {
        "type": f"urn:campusiq:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": getattr(request, "request_id", None),
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def _flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Turns DRF's nested {field: [ErrorDetail]} into a flat list of {field, message, code};
    errors about the body as a whole get field None."""
    if isinstance(detail, dict):
        flat = []
        for key, value in detail.items():
            if key in WHOLE_BODY_KEYS:
                flat += _flatten_validation_errors(value, prefix)
                continue
            flat += _flatten_validation_errors(value, f"{prefix}.{key}" if prefix else str(key))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [
                {"field": prefix or None, "message": str(item), "code": getattr(item, "code", "invalid")}
                for item in detail
            ]
        flat = []
        for index, item in enumerate(detail):
            flat += _flatten_validation_errors(item, f"{prefix}.{index}" if prefix else str(index))
        return flat
    return [{"field": prefix or None, "message": str(detail), "code": getattr(detail, "code", "invalid")}]


def _code_for(exc: exceptions.APIException) -> str:
    specific = getattr(exc.detail, "code", None)
    if specific and specific != exc.default_code:  # raised with its own code, e.g. token_read_only
        return str(specific)
    for exception_class, code in API_EXCEPTION_CODES:
        if isinstance(exc, exception_class):
            if code == "permission_denied" and str(exc.detail).startswith("CSRF Failed"):
                return "csrf_failed"
            return code
    if exc.status_code == HTTPStatus.CONFLICT:
        return "conflict"
    return str(exc.default_code)


def api_exception_handler(exc: Exception, context: dict) -> JsonResponse | None:
    """DRF's EXCEPTION_HANDLER. Unexpected exceptions return None: Django logs them and handler500 answers."""
    request = context["request"]
    if isinstance(exc, ServiceError):
        errors = [{"field": exc.field, "message": exc.detail, "code": exc.code}] if exc.field else None
        return problem_response(request, status=exc.status, code=exc.code, detail=exc.detail, errors=errors)
    if isinstance(exc, DjangoValidationError):
        # A model's full_clean() or a form-level rule: report it per field like a serializer would.
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, ProtectedError):
        return problem_response(
            request, status=409, code="in_use", detail="Other records still refer to this one; it cannot be deleted."
        )
    elif isinstance(exc, IntegrityError):
        return problem_response(
            request, status=409, code="conflict", detail="The change conflicts with existing data; nothing was written."
        )
    if isinstance(exc, RequestDataTooBig):
        return too_large_response(request)
    if isinstance(exc, Ratelimited):
        return rate_limited_response(request, retry_after_seconds(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    code = _code_for(exc)
    headers = {}
    status = exc.status_code
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # DRF turns these into 403 when no authenticator names a scheme; clients deserve a 401.
        status = HTTPStatus.UNAUTHORIZED
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait))

    if code == "validation_error":
        errors = _flatten_validation_errors(exc.detail)
        detail = "The request has invalid fields; see errors."
    else:
        errors = None
        detail = str(exc.detail)
    return problem_response(request, status=status, code=code, detail=detail, errors=errors, headers=headers)


def too_large_response(request: HttpRequest) -> JsonResponse:
    return problem_response(
        request, status=413, code="request_too_large", detail="The request body is larger than the server accepts."
    )


def service_unavailable_response(request: HttpRequest, *, retry_after: int) -> JsonResponse:
    """503 while a dependency the request needs (the database) is down: nothing was done, retry later."""
    return problem_response(
        request,
        status=503,
        code="service_unavailable",
        detail="The service is temporarily unavailable; nothing was changed. Try again shortly.",
        headers={"Retry-After": str(retry_after)},
    )


# A limit counted by django-ratelimit's decorator says nothing of its window: a minute, the shortest.
DEFAULT_RETRY_AFTER_SECONDS = 60


def retry_after_seconds(exc: Exception) -> int:
    """How long a refused caller should wait (campusiq.core.ratelimit.RateLimitExceeded knows)."""
    return max(1, int(getattr(exc, "retry_after", DEFAULT_RETRY_AFTER_SECONDS)))


def rate_limited_response(request: HttpRequest, retry_after: int = DEFAULT_RETRY_AFTER_SECONDS) -> JsonResponse:
    return problem_response(
        request,
        status=429,
        code="rate_limited",
        detail=f"Too many requests; try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )
