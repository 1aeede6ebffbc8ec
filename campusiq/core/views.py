"""The error handlers: JSON problems under /api/, friendly pages elsewhere."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _
from django_ratelimit.exceptions import Ratelimited

from campusiq.core.errors import (
    is_api_request,
    problem_response,
    rate_limited_response,
    retry_after_seconds,
    too_large_response,
)


def _error_page(request: HttpRequest, *, status: int, title: str, message: str) -> HttpResponse:
    context = {"title": title, "message": message, "status": status, "request_id": getattr(request, "request_id", "")}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        if is_api_request(request):
            return too_large_response(request)
        return _error_page(
            request, status=413, title=_("Too much data"), message=_("What you sent is larger than we accept.")
        )
    if is_api_request(request):
        return problem_response(request, status=400, code="bad_request", detail="The request could not be understood.")
    return _error_page(
        request, status=400, title=_("Bad request"), message=_("Something in that request was not right. Try again.")
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, Ratelimited):
        retry_after = retry_after_seconds(exception)
        if is_api_request(request):
            return rate_limited_response(request, retry_after)
        page = _error_page(
            request,
            status=429,
            title=_("Too many attempts"),
            message=_("You have tried that too often. Please wait %(seconds)s seconds and try again.")
            % {"seconds": retry_after},
        )
        page["Retry-After"] = str(retry_after)
        return page
    if is_api_request(request):
        return problem_response(
            request, status=403, code="permission_denied", detail="You do not have permission to do this."
        )
    return _error_page(
        request, status=403, title=_("Not allowed"), message=_("You do not have permission to see this page.")
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return problem_response(request, status=404, code="not_found", detail="No resource at this URL.")
    return _error_page(
        request, status=404, title=_("Page not found"), message=_("We could not find the page you asked for.")
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return problem_response(
            request, status=500, code="server_error", detail="Something went wrong on our side. It has been logged."
        )
    # No context processors: the failure may be in one of them.
    template = loader.get_template("500.html")
    return HttpResponse(template.render({"request_id": getattr(request, "request_id", "")}), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_request(request):
        return problem_response(request, status=403, code="csrf_failed", detail=f"CSRF verification failed: {reason}")
    return _error_page(
        request,
        status=403,
        title=_("Form expired"),
        message=_("This form expired or came from another site. Go back, reload the page and try again."),
    )
