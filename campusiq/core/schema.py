"""OpenAPI: the problem+json error responses on every operation (accounts describes its schemes)."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from campusiq.core.errors import PROBLEM_CONTENT_TYPE

ProblemSerializer = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(help_text="urn:campusiq:problem:<code>"),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="Machine-readable; see docs/API.md for the list."),
        "request_id": serializers.CharField(),
        "instance": serializers.CharField(),
        "errors": serializers.ListField(
            child=inline_serializer(
                "ProblemFieldError",
                {
                    "field": serializers.CharField(allow_null=True),
                    "message": serializers.CharField(),
                    "code": serializers.CharField(),
                },
            ),
            required=False,
        ),
    },
)

_EXAMPLE = {
    "type": "urn:campusiq:problem:validation_error",
    "title": "Bad Request",
    "status": 400,
    "detail": "The request has invalid fields; see errors.",
    "code": "validation_error",
    "request_id": "5f0c1a7e9b2d4c3f8a6e1d0b2c4f6a8e",
    "instance": "/api/v1/grades/",
    "errors": [{"field": "score", "message": "Score must be between 0 and 20.", "code": "score_out_of_range"}],
}

_COMMON = {
    405: "The method is not allowed on this URL.",
    406: "The Accept header asks for something other than JSON.",
    500: "Something went wrong on our side; it has been logged with the request id.",
    # Any request: a filter, page or ordering value that is not valid, or a malformed Content-Length.
    400: "Invalid input (query parameters, body or headers): see `errors`.",
    401: "Not authenticated, or the token is invalid, expired or revoked.",
    403: "Not allowed (role, or a read-only token writing).",
    404: "No such object, or one you may not see.",
    429: "Rate limited.",
    503: "The database is unavailable; nothing was done. Retry after `Retry-After` seconds.",
}
_WRITE = {
    409: "Conflicts with the current state (e.g. already_enrolled).",
    413: "Body too large.",
    415: "Body is not application/json.",
}


def _problem(description: str, status: int) -> OpenApiResponse:
    example = {**_EXAMPLE, "status": status} if status == 400 else None
    examples = [OpenApiExample(f"problem {status}", value=example, response_only=True)] if example else None
    return OpenApiResponse(response=ProblemSerializer, description=description, examples=examples)


class ProblemAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        extra = dict(_COMMON)
        if self.method in {"POST", "PUT", "PATCH"}:
            extra |= _WRITE
        if self.method == "DELETE":
            extra[409] = "Still in use (in_use): other records refer to it."
        for status, description in extra.items():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    _problem(description, status), str(status), media_types=[PROBLEM_CONTENT_TYPE], direction=direction
                )
        return responses


def query_parameters_need_a_value(result, generator, request, public):
    """A postprocessing hook: every string query parameter needs a value (campusiq.core.middleware's
    ApiBlankQueryMiddleware refuses `?name=`), said in the schema as minLength 1."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.get("type") == "string" and "enum" not in schema:
                    schema.setdefault("minLength", 1)
    return result
