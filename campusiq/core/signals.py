"""Carry the request id from the web request into every Celery task it enqueues, and into its logs."""

import structlog
from celery.signals import before_task_publish, task_postrun, task_prerun

from campusiq.core.request_id import current_request_id

REQUEST_ID_HEADER = "campusiq_request_id"
_bound_tokens: dict[str, dict] = {}


@before_task_publish.connect
def add_request_id_header(headers: dict | None = None, **_kwargs) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@task_prerun.connect
def bind_task_context(task_id: str | None = None, task=None, **_kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        REQUEST_ID_HEADER
    )
    context = {"task_id": task_id, "task_name": getattr(task, "name", None)}
    if request_id:
        context["request_id"] = request_id
    _bound_tokens[task_id] = structlog.contextvars.bind_contextvars(**context)


@task_postrun.connect
def unbind_task_context(task_id: str | None = None, **_kwargs) -> None:
    tokens = _bound_tokens.pop(task_id, None)
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)
