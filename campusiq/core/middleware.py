import time

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from campusiq.core.errors import is_api_request, problem_response
from campusiq.core.request_id import request_id_from_header

access_log = structlog.get_logger("campusiq.access")

# Probes hit these every few seconds; a success there is not worth a log line.
QUIET_PATH_PREFIXES = ("/health/", "/metrics")


class RequestIdMiddleware:
    """Gives every request an id, binds it to the log context, returns it, and writes the access line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from_header(request.META.get(settings.REQUEST_ID_HEADER))
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            self._log_access(request, response.status_code, started)
            return response
        finally:
            structlog.contextvars.clear_contextvars()

    @staticmethod
    def _log_access(request: HttpRequest, status: int, started: float) -> None:
        if status < 400 and request.path.startswith(QUIET_PATH_PREFIXES):
            return
        user = getattr(request, "user", None)
        access_log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            user_id=user.pk if user is not None and user.is_authenticated else None,
        )


class ApiBodySizeMiddleware:
    """Refuses oversized API bodies up front with 413.

    DRF parses JSON from the stream, which skips Django's DATA_UPLOAD_MAX_MEMORY_SIZE check, so
    the limit is enforced here from Content-Length (WSGI servers never read past it).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return problem_response(request, status=400, code="malformed_request", detail="Invalid Content-Length.")
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None and length > limit:
                return problem_response(
                    request,
                    status=413,
                    code="request_too_large",
                    detail=f"The request body is larger than the limit of {limit} bytes.",
                )
        return self.get_response(request)


class MetricsMiddleware:
    """Answers /metrics before anything reads the Host header.

    Prometheus scrapes each pod by its IP (Host: 10.1.2.3:8000), which ALLOWED_HOSTS rightly refuses
    for everything else, and it cannot send another Host. /metrics guards itself (networks or token).
    The health probes can send a Host header, so they go through the whole stack like any page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != "/metrics":
            return self.get_response(request)
        from campusiq.core.metrics import metrics_view

        response = metrics_view(request)
        response["X-Content-Type-Options"] = "nosniff"
        return response
