"""Bodies nested deeper than any endpoint reads, over real HTTP (pytest-django's live server): every
write operation of the API schema answers 400 `malformed_request` in the problem shape, for any depth,
signed in or not, and writes nothing; a form or multipart body, which the API does not accept, answers
415 whatever it holds. Before the parser limit, 1,000 levels were a RecursionError: a 500."""

import json
import re
import urllib.error
import urllib.request

import pytest
from django.apps import apps
from drf_spectacular.generators import SchemaGenerator

from campusiq.core.parsers import MAX_JSON_DEPTH, json_depth_exceeds
from tests.security.fuzzing import bearer, campus_build

pytestmark = pytest.mark.django_db(transaction=True)

DEPTHS = [MAX_JSON_DEPTH + 1, 1_000, 100_000]


def nested(depth: int, opener: str = "[") -> bytes:
    if opener == "{":
        return ('{"a":' * depth + "1" + "}" * depth).encode()
    return ("[" * depth + '"x"' + "]" * depth).encode()


def post(url: str, body: bytes, *, content_type: str = "application/json", headers: dict | None = None,
         method: str = "POST"):  # fmt: skip
    request = urllib.request.Request(url, body, {"Content-Type": content_type, **(headers or {})}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def write_operations(ids: dict[str, int]) -> list[tuple[str, str]]:
    """(method, path) of every operation in the schema that takes a body, path ids filled in."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        collection = next((part for part in path.split("/") if part in ids), None)
        concrete = re.sub(r"\{[^}]+\}", str(ids.get(collection, 1)), path)
        for method, operation in item.items():
            if method in ("post", "put", "patch") and "requestBody" in operation:
                operations.append((method.upper(), concrete))
    return operations


def row_counts() -> dict[str, int]:
    """Every table's rows but the rate-limit counters', which count refused attempts too (their point)."""
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.managed and model._meta.label != "core.RateCounter"
    }


def assert_malformed(status: int, headers: dict, body: bytes) -> None:
    assert status == 400, body[:300]
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "malformed_request" and problem["request_id"] == headers["X-Request-ID"]
    assert str(MAX_JSON_DEPTH) in problem["detail"]


@pytest.mark.parametrize("depth", DEPTHS)
def test_the_token_endpoint_refuses_any_depth_without_signing_in(live_server, depth):
    for opener in "[{":
        assert_malformed(*post(f"{live_server.url}/api/v1/auth/token/", nested(depth, opener)))


def test_every_write_operation_refuses_deep_bodies_and_writes_nothing(live_server, log_output):
    users, ids = campus_build()
    superuser = users["registrar"]
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    headers = bearer(superuser)
    operations = write_operations(ids)
    assert len(operations) >= 15 and ("POST", "/api/v1/check-ins/") in operations
    before = row_counts()
    for method, path in operations:
        status, response_headers, body = post(live_server.url + path, nested(1_000), headers=headers, method=method)
        assert status == 400, (method, path, status, body[:200])
        assert_malformed(status, response_headers, body)
    assert row_counts() == before
    output = log_output.getvalue()
    assert "RecursionError" not in output and "Traceback" not in output
    assert max(len(line) for line in output.splitlines()) < 2_000  # one short access line per request


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"a" + b"[" * 10_000 + b"=1"),
        ("multipart/form-data; boundary=xyz",
         b'--xyz\r\nContent-Disposition: form-data; name="a' + b"[" * 10_000 + b'"\r\n\r\n1\r\n--xyz--\r\n'),
        ("application/json; charset=utf-16", nested(1_000)),
    ],
)  # fmt: skip
def test_other_media_types_are_refused_whatever_they_hold(live_server, content_type, body):
    status, headers, answer = post(f"{live_server.url}/api/v1/auth/token/", body, content_type=content_type)
    assert status in (400, 415), answer[:300]
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(answer)["code"] in ("unsupported_media_type", "malformed_request")


def test_depth_is_measured_outside_strings_only():
    assert not json_depth_exceeds(b'{"note": "' + b"[" * 1_000 + b'"}')
    assert not json_depth_exceeds(b'["\\"' + b"[" * 100 + b'"]')  # an escaped quote does not end the string
    assert json_depth_exceeds(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert not json_depth_exceeds(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert not json_depth_exceeds(b"[" + b"[]," * 1_000 + b"[]]")  # wide, not deep
