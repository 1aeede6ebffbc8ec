import threading
import time

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.functional import SimpleLazyObject, empty

from campusiq.core import activity
from campusiq.core.errors import is_api_request, problem_response, service_unavailable_response
from campusiq.core.request_id import request_id_from_header

access_log = structlog.get_logger("campusiq.access")
log = structlog.get_logger(__name__)

# What Django raises when PostgreSQL is down, restarting, unreachable, or drops the connection.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)
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
        access_log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            user_id=resolved_user_id(request),
        )


def resolved_user_id(request: HttpRequest) -> int | None:
    """The user's id if serving the request found out who it was. Never resolves it here: that reads
    the session from the database, which may be the very thing that is down (a 503 would become a 500)."""
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    try:
        return user.pk if user.is_authenticated else None
    except DATABASE_UNAVAILABLE_ERRORS:
        return None


class ActiveUsersMiddleware:
    """Notes who made each request, for campusiq_active_users (campusiq.core.activity). Probes and
    scrapes are left out: they are not users' requests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(QUIET_PATH_PREFIXES):
            user_id = resolved_user_id(request)
            if user_id is not None:
                activity.user_seen(user_id)
        return response


API_OPERATIONS_PREFIX = "/api/v1/"


class ApiBlankQueryMiddleware:
    """An API query parameter given with no value (`?updated_since=`, `?page=`) is refused with 400 naming
    it: the schema says every one needs a value (minLength 1), and a blank filter silently ignored
    would answer something other than what was asked."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The operations only: the docs page loads its script from `/api/docs/?script=`.
        if request.path.startswith(API_OPERATIONS_PREFIX):
            blank = sorted({name for name, values in request.GET.lists() if any(value == "" for value in values)})
            if blank:
                message = "Give a value, or leave the parameter out."
                errors = [{"field": name, "message": message, "code": "blank"} for name in blank]
                detail = "The request has invalid fields; see errors."
                return problem_response(request, status=400, code="validation_error", detail=detail, errors=errors)
        return self.get_response(request)


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


DATABASE_RETRY_AFTER_SECONDS = 5


class _DatabaseOutage:
    """This process's view of a database outage: logged when it starts and when it ends, not once
    per request (the access line still records every 503)."""

    def __init__(self):
        self.since: float | None = None
        self.failed_requests = 0
        self.lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        with self.lock:
            self.failed_requests += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning("database.unavailable", error=f"{type(error).__name__}: {error}".strip()[:300])

    def answered(self) -> None:
        with self.lock:
            if self.since is None:
                return
            outage, failed = time.monotonic() - self.since, self.failed_requests
            self.since, self.failed_requests = None, 0
        log.info("database.available", outage_seconds=round(outage, 1), failed_requests=failed)


database_outage = _DatabaseOutage()


class DatabaseUnavailableMiddleware:
    """PostgreSQL down: 503 at once, in the API's problem shape under /api/ and as a page elsewhere,
    with Retry-After, instead of a 500 and a traceback per request. The database settings make it
    fast (connect_timeout) and the same workers recover by themselves once it is back
    (CONN_HEALTH_CHECKS replaces a dead persistent connection). Nothing was written: the request's
    transaction, if any, did not commit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            database_outage.since is not None
            and not getattr(request, "database_unavailable", False)
            and connection.connection is not None
            and not connection.errors_occurred
        ):
            database_outage.answered()  # this request reached the database
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE_ERRORS):
            return None
        database_outage.failed(exception)
        request.database_unavailable = True
        if is_api_request(request):
            response = service_unavailable_response(request, retry_after=DATABASE_RETRY_AFTER_SECONDS)
        else:
            # No context processors: they read the user, which needs the database.
            page = loader.get_template("503.html").render({"request_id": getattr(request, "request_id", "")})
            response = HttpResponse(page, status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
        response._has_been_logged = True  # django.request would log each one as an error; logged above
        return response
