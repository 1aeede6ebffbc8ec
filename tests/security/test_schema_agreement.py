"""The schema and the behaviour agree on what schemathesis found them disagreeing about: a blank query
parameter (`?page=`, `?updated_since=`) is invalid in both (400 / minLength 1), `page` and `page_size`
start at 1 in both (400 below), and every error status an operation can answer is documented with
the problem content type it has."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.roles import Role
from campusiq.core.errors import PROBLEM_CONTENT_TYPE
from tests.factories import UserFactory
from tests.security.fuzzing import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def registrar_headers():
    return {"HTTP_AUTHORIZATION": bearer(UserFactory(roles=[Role.REGISTRAR]))["Authorization"]}


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/students/", "updated_since=", "updated_since"),
        ("/api/v1/attendance-records/", "cursor=", "cursor"),
        ("/api/v1/courses/", "page=", "page"),
        ("/api/v1/courses/", "search=", "search"),
        ("/api/v1/courses/", "page=0", "page"),
        ("/api/v1/courses/", "page=-1", "page"),
        ("/api/v1/courses/", "page_size=0", "page_size"),
        ("/api/v1/students/", "page_size=0", "page_size"),
        ("/api/v1/courses/", "page_size=ten", "page_size"),
    ],
)
def test_blank_and_non_positive_query_values_are_refused_naming_the_parameter(
    client, registrar_headers, path, query, field
):
    response = client.get(f"{path}?{query}", **registrar_headers)
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["code"] == "validation_error" and [e["field"] for e in body["errors"]] == [field]


def test_the_first_page_and_the_last_still_answer(client, registrar_headers):
    assert client.get("/api/v1/courses/?page=1&page_size=1", **registrar_headers).status_code == 200
    assert client.get("/api/v1/courses/?page=last", **registrar_headers).status_code == 200


def test_the_schema_says_the_same(schema):
    strings, paging = 0, 0
    for item in schema["paths"].values():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                kind = parameter["schema"]
                if kind.get("type") == "string" and "enum" not in kind:
                    assert kind.get("minLength") == 1, parameter
                    strings += 1
                if parameter["name"] in ("page", "page_size"):
                    assert kind.get("minimum") == 1, parameter
                    paging += 1
            for status in ("400", "404", "405", "406", "500"):
                content = operation["responses"][status]["content"]
                assert list(content) == [PROBLEM_CONTENT_TYPE], (method, status)
    assert strings > 20 and paging > 20
