"""Idempotency-Key for the API's POSTs: a client that retries (a timeout, a flaky phone network) gets
the first answer again instead of a second action.

    @extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER], ...)
    @idempotent
    def post(self, request): ...

The first response to (user, key) is stored with a hash of method, path and body. A retry of the same
request replays it (same status and body, header `Idempotent-Replayed: true`) without running the view
again; the same key with another request answers 409 `idempotency_key_reused`. Keys live 24 hours.

The stored row is written in one transaction with the view's own writes: it exists exactly when the
action happened. A concurrent duplicate blocks on the unique (user, key) index until the first
commits, then fails with IntegrityError and replays what the first stored. 5xx and 429 answers are not
stored (the action did not happen; a retry may run it), so they roll the view's writes back too.
"""

import datetime
import functools
import hashlib
import json
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpResponseBase, JsonResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from campusiq.core.errors import PROBLEM_CONTENT_TYPE, ConflictError, ServiceError
from campusiq.core.models import IdempotencyKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_TTL = datetime.timedelta(hours=24)
WELL_FORMED_KEY = re.compile(r"[\x20-\x7e]{1,255}")

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=IDEMPOTENCY_HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "1 to 255 printable ASCII characters, unique per action (a UUID is ideal). A retry with the same key and "
        "body replays the first response with `Idempotent-Replayed: true`; the same key with another body "
        "answers 409 `idempotency_key_reused`. Keys expire after 24 hours."
    ),
)


class _Unstored(Exception):
    """Leaves the transaction, rolling back the key and the view's writes, with the response to send."""

    def __init__(self, response: HttpResponseBase):
        super().__init__()
        self.response = response


def idempotency_key_validate(key: str) -> None:
    if not WELL_FORMED_KEY.fullmatch(key):
        raise ServiceError(
            "idempotency_key_invalid",
            f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters.",
            field=IDEMPOTENCY_HEADER,
        )


def request_fingerprint(request: Request) -> str:
    """SHA-256 of method, path and the parsed body (so key order and whitespace do not matter)."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method}\n{request.get_full_path()}\n{body}".encode()).hexdigest()


def _stored(*, user, key: str) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(
        user=user, key=key, created_at__gte=timezone.now() - IDEMPOTENCY_KEY_TTL
    ).first()


def _replay(entry: IdempotencyKey, request_hash: str) -> HttpResponseBase:
    if entry.request_hash != request_hash:
        raise ConflictError(
            "idempotency_key_reused",
            f"This {IDEMPOTENCY_HEADER} was already used for a different request; send a new key for a new action.",
        )
    if entry.status_code >= 400:
        response: HttpResponseBase = JsonResponse(
            entry.response_body, status=entry.status_code, content_type=PROBLEM_CONTENT_TYPE
        )
    else:
        response = Response(entry.response_body, status=entry.status_code)
    response[REPLAYED_HEADER] = "true"
    return response


def _storable_body(response: HttpResponseBase) -> tuple[bool, Any]:
    """(store it?, the JSON body as the client receives it)."""
    if response.status_code >= 500 or response.status_code == 429:
        return False, None
    if isinstance(response, Response):
        return True, None if response.data is None else json.loads(JSONRenderer().render(response.data))
    if "json" in response.get("Content-Type", ""):
        return True, json.loads(response.content)
    return False, None


def _respond(view, handler, request: Request, args, kwargs) -> HttpResponseBase:
    """The view's response, its exceptions turned into their error responses as DRF would. The savepoint
    keeps our transaction usable whatever the view's queries did."""
    try:
        with transaction.atomic():
            return handler(view, request, *args, **kwargs)
    except Exception as exc:  # handle_exception re-raises what it does not answer
        return view.handle_exception(exc)


def idempotent(handler):
    """Makes an APIView (or viewset action) method honour the Idempotency-Key header. Requests without
    the header, and unauthenticated ones, run as usual."""

    @functools.wraps(handler)
    def wrapper(view, request: Request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None or not request.user.is_authenticated:
            return handler(view, request, *args, **kwargs)
        idempotency_key_validate(key)
        request_hash = request_fingerprint(request)
        entry = _stored(user=request.user, key=key)
        if entry is not None:
            return _replay(entry, request_hash)
        try:
            with transaction.atomic():
                IdempotencyKey.objects.filter(
                    user=request.user, created_at__lt=timezone.now() - IDEMPOTENCY_KEY_TTL
                ).delete()
                try:
                    with transaction.atomic():
                        entry = IdempotencyKey.objects.create(
                            user=request.user, key=key, request_hash=request_hash, status_code=0
                        )
                except IntegrityError:
                    entry = None  # a concurrent request with this key committed first
                if entry is not None:
                    response = _respond(view, handler, request, args, kwargs)
                    store, body = _storable_body(response)
                    if not store:
                        raise _Unstored(response)
                    entry.status_code, entry.response_body = response.status_code, body
                    entry.save(update_fields=["status_code", "response_body"])
                    return response
        except _Unstored as unstored:
            return unstored.response
        entry = _stored(user=request.user, key=key)
        if entry is None:
            raise ConflictError(
                "idempotency_key_in_progress", "A request with this key is still being processed; retry shortly."
            )
        return _replay(entry, request_hash)

    return wrapper


def idempotency_keys_purge() -> int:
    """Deletes expired keys (each new key also clears its user's expired ones). Safe to run any time."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_KEY_TTL).delete()
    return deleted
