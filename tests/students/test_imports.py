"""Registrars' CSV/XLSX imports of students, enrollments and grades: through the admin's preview and
confirmation, rows written by the services (rules hold, changes audited), and a file with one bad
row writes nothing."""

import csv
import io
import re
from decimal import Decimal

import openpyxl
import pytest
import tablib
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from campusiq.core.models import AuditLogEntry
from students.models import Enrollment, Grade, Student
from students.resources import EnrollmentResource, GradeResource, StudentResource
from tests.factories import (
    TERM_START,
    AssessmentFactory,
    EnrollmentFactory,
    GradeFactory,
    ProgramFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)
from tests.support.uploads import csv_upload

pytestmark = pytest.mark.django_db

CALC = "=cmd|' /C calc'!A0"


@pytest.fixture
def program():
    return ProgramFactory(code="CS")


def xlsx_upload(rows: list[dict], name: str = "upload.xlsx") -> SimpleUploadedFile:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    buffer = io.BytesIO()
    book.save(buffer)
    return SimpleUploadedFile(name, buffer.getvalue())


def preview(client, model_name: str, upload, file_format: str = "0"):
    """The admin's first step: upload, dry run, preview (format 0 is CSV, 1 is XLSX)."""
    url = reverse(f"admin:students_{model_name}_import")
    response = client.post(url, {"resource": "0", "format": file_format, "import_file": upload})
    assert response.status_code == 200
    return response


def confirm(client, model_name: str, preview_response, follow: bool = True):
    confirm_form = preview_response.context["confirm_form"]
    url = reverse(f"admin:students_{model_name}_process_import")
    return client.post(url, confirm_form.initial, follow=follow)


def row_errors(result) -> dict[int, dict[str, list[str]]]:
    return {row.number: {k: [str(m) for m in v] for k, v in row.error_dict.items()} for row in result.invalid_rows}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def student_row(number: str, **overrides) -> dict:
    return {
        "student_number": number,
        "email": f"{number.lower()}@campus.example",
        "first_name": "Nova",
        "last_name": "Reis",
        "program": "CS",
        "semester": "1",
        "advisor": "",
    } | overrides


# --- Students -------------------------------------------------------------------------------


def test_students_import_previews_then_writes_through_student_create(registrar_client, registrar, program):
    advisor = UserFactory(email="advisor@campus.example", roles=[Role.ADVISOR])
    upload = csv_upload(
        [student_row("S1001", semester="2", advisor="ADVISOR@campus.example"), student_row("S1002", first_name="Ana")]
    )
    response = preview(registrar_client, "student", upload)
    result = response.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert result.totals["new"] == 2 and "confirm_form" in response.context
    assert not Student.objects.exists() and not AuditLogEntry.objects.exists()  # the preview was a dry run

    response = confirm(registrar_client, "student", response)
    assert messages_of(response) == ["Import finished: 2 new, 0 updated, 0 deleted and 0 skipped students."]
    first, second = Student.objects.select_related("user", "advisor").order_by("student_number")
    assert (first.user.email, first.semester, first.advisor, first.program) == (
        "s1001@campus.example",
        2,
        advisor,
        program,
    )
    assert second.user.first_name == "Ana" and second.user.groups.filter(name="Student").exists()
    created = AuditLogEntry.objects.filter(verb="student.created")
    assert sorted(created.values_list("object_id", flat=True)) == sorted(str(s.pk) for s in (first, second))
    assert set(created.values_list("actor", flat=True)) == {registrar.pk}


@pytest.mark.parametrize(
    ("bad_row", "column", "message"),
    [
        (student_row("S1002", semester="9"), "semester", "Semester must be between 1 and 8."),
        (student_row("S1001", email="other@campus.example"), "email", "Student S1001 has another email address."),
        (student_row("S1002", email="s1001@CAMPUS.example"), "email", "s1001@CAMPUS.example already has an account."),
        (student_row("S1002", program="NOPE"), "program", "No program has the code NOPE."),
        (student_row("S1002", email="not-an-email"), "email", "not-an-email is not an email address."),
        (student_row("S1002", advisor="plain@campus.example"), "advisor", "does not hold the advisor role."),
        (student_row("S1002", semester="two"), "semester", "'two' is not a number."),
        (student_row("S1002", semester="2.5"), "semester", "'2.5' is not a whole number."),
        (student_row("S1002", last_name=""), "last_name", "A value is required."),
    ],
    ids=[
        "semester",
        "number-taken-in-file",
        "email-taken",
        "program",
        "email",
        "advisor",
        "not-a-number",
        "not-whole",
        "blank",
    ],
)
def test_one_bad_student_row_writes_nothing_and_names_its_error(registrar_client, program, bad_row, column, message):
    UserFactory(email="plain@campus.example")
    users_before = User.objects.count()
    upload = csv_upload([student_row("S1001"), bad_row, student_row("S1003")])
    response = preview(registrar_client, "student", upload)
    errors = row_errors(response.context["result"])
    assert list(errors) == [2]
    assert message in " ".join(errors[2][column])
    assert "confirm_form" not in response.context
    assert not Student.objects.exists() and User.objects.count() == users_before
    assert not AuditLogEntry.objects.exists()


def test_status_is_read_in_any_case_by_value_or_label(registrar_client, program):
    rows = [
        student_row("S1001", status="Active"),
        student_row("S1002", status="SUSPENDED"),
        student_row("S1003", status=" graduated "),
        student_row("S1004", status=""),
    ]
    response = preview(registrar_client, "student", csv_upload(rows))
    assert not response.context["result"].has_validation_errors()
    confirm(registrar_client, "student", response)
    statuses = dict(Student.objects.values_list("student_number", "status"))
    assert statuses == {"S1001": "active", "S1002": "suspended", "S1003": "graduated", "S1004": "active"}


def test_an_unknown_status_names_the_allowed_values_and_writes_nothing(registrar_client, program):
    rows = [student_row("S1001", status="active"), student_row("S1002", status="asleep")]
    response = preview(registrar_client, "student", csv_upload(rows))
    assert row_errors(response.context["result"]) == {
        2: {"status": ["'asleep' is not one of: active, suspended, graduated, withdrawn."]}
    }
    assert not Student.objects.exists()


def test_a_row_that_fails_only_at_confirmation_writes_nothing(registrar_client, program):
    response = preview(registrar_client, "student", csv_upload([student_row("S1001"), student_row("S1002")]))
    assert "confirm_form" in response.context
    # Meanwhile someone else gets an account with the second row's email address.
    UserFactory(email="s1002@campus.example")

    response = confirm(registrar_client, "student", response)
    assert messages_of(response) == ["Nothing was imported: row 2, email: s1002@campus.example already has an account."]
    assert not Student.objects.exists()
    assert not User.objects.filter(email="s1001@campus.example").exists()
    assert not AuditLogEntry.objects.exists()


def test_resource_dry_run_writes_nothing_and_the_real_run_writes(registrar, program):
    dataset = tablib.Dataset(headers=list(student_row("S1")))
    dataset.append(list(student_row("S1001").values()))
    dataset.append(list(student_row("S1002").values()))

    result = StudentResource().import_data(dataset, dry_run=True, user=registrar)
    assert not result.has_errors() and not result.has_validation_errors() and result.totals["new"] == 2
    assert not Student.objects.exists() and not AuditLogEntry.objects.exists()

    result = StudentResource().import_data(dataset, dry_run=False, user=registrar)
    assert result.totals["new"] == 2
    assert Student.objects.count() == 2


def test_the_resource_rolls_back_even_when_asked_not_to(registrar, program):
    dataset = tablib.Dataset(headers=list(student_row("S1")))
    dataset.append(list(student_row("S1001").values()))
    dataset.append(list(student_row("S1002", semester="0").values()))
    result = StudentResource().import_data(
        dataset, dry_run=False, use_transactions=False, rollback_on_validation_errors=False, user=registrar
    )
    assert result.has_validation_errors()
    assert not Student.objects.exists()


def test_known_student_numbers_update_through_student_update(registrar_client, registrar, program):
    student = StudentFactory(student_number="S1001", program=program, semester=1)
    unchanged = StudentFactory(student_number="S1002", program=program, semester=4)
    rows = [
        student_row("S1001", email=student.user.email.upper(), semester="3", status="suspended"),
        student_row("S1002", email=unchanged.user.email, semester="4"),
    ]
    response = confirm(registrar_client, "student", preview(registrar_client, "student", csv_upload(rows)))
    assert messages_of(response) == ["Import finished: 0 new, 1 updated, 0 deleted and 1 skipped students."]
    student.refresh_from_db()
    assert (student.semester, student.status) == (3, "suspended")
    [entry] = AuditLogEntry.objects.filter(verb="student.updated")
    assert entry.actor == registrar and entry.changes == {"semester": [1, 3], "status": ["active", "suspended"]}


def test_a_known_student_number_with_another_email_is_an_error(registrar_client, program):
    StudentFactory(student_number="S1001", program=program, semester=1)
    response = preview(registrar_client, "student", csv_upload([student_row("S1001", semester="3")]))
    assert row_errors(response.context["result"]) == {1: {"email": ["Student S1001 has another email address."]}}


def test_students_import_from_xlsx(registrar_client, program):
    rows = [student_row("S1001"), student_row("S1002", semester=3)]
    response = confirm(registrar_client, "student", preview(registrar_client, "student", xlsx_upload(rows), "1"))
    assert messages_of(response) == ["Import finished: 2 new, 0 updated, 0 deleted and 0 skipped students."]
    assert list(Student.objects.order_by("student_number").values_list("semester", flat=True)) == [1, 3]


def test_formula_payloads_are_stored_as_text_and_neutralised_on_export(registrar_client, program):
    rows = [student_row("S1001", first_name=CALC, last_name="@SUM(1+1)*cmd|' /C calc'!A0")]
    confirm(registrar_client, "student", preview(registrar_client, "student", csv_upload(rows)))
    student = Student.objects.select_related("user").get()
    assert student.user.first_name == CALC  # stored as the registrar typed it

    response = registrar_client.post(
        reverse("admin:students_student_changelist"),
        {"action": "export_admin_action", "_selected_action": [student.pk]},
    )
    [exported] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert exported["first_name"] == "'" + CALC
    assert exported["last_name"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert exported["student_number"] == "S1001" and exported["program"] == "CS"


def test_import_needs_add_and_change_permission(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_student"))
    client.force_login(viewer)
    url = reverse("admin:students_student_import")
    assert client.get(reverse("admin:students_student_changelist")).status_code == 200
    assert client.get(url).status_code == 403
    upload = csv_upload([student_row("S1001")])
    assert client.post(url, {"resource": "0", "format": "0", "import_file": upload}).status_code == 403
    assert not Student.objects.exists()


# --- Enrollments ----------------------------------------------------------------------------


@pytest.fixture
def section():
    return SectionFactory(course__code="CS101", term__name="Fall 2026", code="A", capacity=2)


def enrollment_row(student, section, /, **overrides) -> dict:
    return {
        "student_number": student.student_number,
        "course": section.course.code,
        "term": section.term.name,
        "section": section.code,
        "enrolled_on": TERM_START.isoformat(),
    } | overrides


def test_enrollments_import_through_enrollment_create(registrar_client, registrar, section):
    students = StudentFactory.create_batch(2)
    rows = [enrollment_row(students[0], section), enrollment_row(students[1], section, section="")]
    response = confirm(registrar_client, "enrollment", preview(registrar_client, "enrollment", csv_upload(rows)))
    assert messages_of(response) == ["Import finished: 2 new, 0 updated, 0 deleted and 0 skipped enrollments."]
    assert set(section.enrollments.values_list("student", flat=True)) == {s.pk for s in students}
    assert set(AuditLogEntry.objects.filter(verb="enrollment.created").values_list("actor", flat=True)) == {
        registrar.pk
    }


@pytest.mark.parametrize(
    ("make_row", "column", "message"),
    [
        (lambda s, sec: enrollment_row(StudentFactory(), sec), "__all__", "is full (2 places)."),
        (lambda s, sec: enrollment_row(s[0], sec), "__all__", "is already enrolled in"),
        (lambda s, sec: enrollment_row(s[0], sec, section="B"), "section", "No section CS101-B in term Fall 2026."),
        (lambda s, sec: enrollment_row(s[0], sec, student_number="S404"), "student_number", "No student has the"),
        (lambda s, sec: enrollment_row(s[0], sec, enrolled_on="2027-06-01"), "enrolled_on", "is outside term"),
        (
            lambda s, sec: enrollment_row(s[0], sec, enrolled_on="06/31/2026"),
            "enrolled_on",
            "'06/31/2026' is not a date: write it as YYYY-MM-DD.",
        ),
    ],
    ids=["full", "twice", "section", "student", "date-outside-term", "not-a-date"],
)
def test_one_bad_enrollment_row_writes_nothing(registrar_client, section, make_row, column, message):
    students = StudentFactory.create_batch(2)
    rows = [enrollment_row(students[0], section), enrollment_row(students[1], section), make_row(students, section)]
    response = preview(registrar_client, "enrollment", csv_upload(rows))
    errors = row_errors(response.context["result"])
    assert list(errors) == [3] and message in " ".join(errors[3][column])
    assert "confirm_form" not in response.context
    assert not Enrollment.objects.exists() and not AuditLogEntry.objects.exists()


# --- Grades ---------------------------------------------------------------------------------


@pytest.fixture
def assessment(section):
    return AssessmentFactory(section=section, name="Midterm", max_score=Decimal("20"))


def grade_row(student, assessment, score, /, **overrides) -> dict:
    section = assessment.section
    return {
        "student_number": student.student_number,
        "course": section.course.code,
        "term": section.term.name,
        "section": section.code,
        "assessment": assessment.name,
        "score": score,
    } | overrides


def test_grades_import_through_grade_record_with_the_importer_as_actor(registrar_client, registrar, assessment):
    first, second = (EnrollmentFactory(section=assessment.section).student for _ in range(2))
    GradeFactory(student=second, assessment=assessment, score=Decimal("9"))
    rows = [grade_row(first, assessment, "14.5"), grade_row(second, assessment, "11")]
    upload = csv_upload(rows, name="midterm.csv")
    response = confirm(registrar_client, "grade", preview(registrar_client, "grade", upload))
    assert messages_of(response) == ["Import finished: 1 new, 1 updated, 0 deleted and 0 skipped grades."]
    assert Grade.objects.get(student=first).score == Decimal("14.5")
    assert Grade.objects.get(student=second).graded_by == registrar
    recorded, changed = AuditLogEntry.objects.filter(verb__startswith="grade.").order_by("id")
    assert (recorded.verb, recorded.actor, recorded.changes) == (
        "grade.recorded",
        registrar,
        {"score": [None, "14.50"]},
    )
    assert (changed.verb, changed.actor, changed.changes) == ("grade.changed", registrar, {"score": ["9.00", "11.00"]})
    assert changed.reason == "Imported from midterm.csv"


def test_an_unchanged_score_is_skipped(registrar_client, assessment):
    student = EnrollmentFactory(section=assessment.section).student
    GradeFactory(student=student, assessment=assessment, score=Decimal("9"))
    response = confirm(
        registrar_client, "grade", preview(registrar_client, "grade", csv_upload([grade_row(student, assessment, "9")]))
    )
    assert messages_of(response) == ["Import finished: 0 new, 0 updated, 0 deleted and 1 skipped grades."]
    assert not AuditLogEntry.objects.exists()


@pytest.mark.parametrize(
    ("make_row", "column", "message"),
    [
        (lambda s, a: grade_row(s, a, "21"), "score", "Score must be between 0 and 20.00."),
        (lambda s, a: grade_row(StudentFactory(), a, "10"), "student_number", "is not enrolled in"),
        (lambda s, a: grade_row(s, a, "10", assessment="Final"), "assessment", "has no assessment Final."),
        (lambda s, a: grade_row(s, a, "ten"), "score", "'ten' is not a number."),
        (
            lambda s, a: grade_row(s, a, "4,5x"),
            "score",
            "'4,5x' is not a number: write decimals with a point, as in 4.5.",
        ),
        (lambda s, a: grade_row(s, a, "4,5"), "score", "'4,5' is not a number: write decimals with a point"),
        (lambda s, a: grade_row(s, a, "NaN"), "score", "'NaN' is not a number."),
        (lambda s, a: grade_row(s, a, "-Infinity"), "score", "'-Infinity' is not a number."),
        (lambda s, a: grade_row(s, a, "1e999999"), "score", "'1e999999' is too large a number."),
    ],
    ids=["score", "not-enrolled", "assessment", "not-a-number", "comma-and-text", "comma", "nan", "infinity", "huge"],
)
def test_one_bad_grade_row_writes_nothing(registrar_client, assessment, make_row, column, message):
    first, second = (EnrollmentFactory(section=assessment.section).student for _ in range(2))
    existing = GradeFactory(student=second, assessment=assessment, score=Decimal("9"))
    rows = [grade_row(first, assessment, "14"), grade_row(second, assessment, "12"), make_row(first, assessment)]
    response = preview(registrar_client, "grade", csv_upload(rows))
    errors = row_errors(response.context["result"])
    assert list(errors) == [3] and message in " ".join(errors[3][column])
    assert list(Grade.objects.all()) == [existing]
    existing.refresh_from_db()
    assert existing.score == Decimal("9") and not AuditLogEntry.objects.exists()


def test_grade_and_enrollment_resources_export_what_they_import(registrar, assessment):
    student = EnrollmentFactory(section=assessment.section).student
    GradeFactory(student=student, assessment=assessment, score=Decimal("9"), graded_by=registrar)
    grades = GradeResource().export()
    assert grades.dict == [grade_row(student, assessment, "9.00") | {"graded_by": registrar.email}]
    enrollments = EnrollmentResource().export()
    assert enrollments.dict[0] | {} == enrollment_row(student, assessment.section) | {
        "status": "enrolled",
        "ended_on": "",
        "final_grade": "",
    }


# --- The import form: templates, allowed values, errors listed ------------------------------------------

IMPORT_COLUMNS = {
    "student": [
        "student_number",
        "email",
        "first_name",
        "last_name",
        "program",
        "semester",
        "status",
        "advisor",
        "admission_grade",
        "prior_qualification_grade",
    ],
    "enrollment": ["student_number", "course", "term", "section", "enrolled_on"],
    "grade": ["student_number", "course", "term", "section", "assessment", "score"],
    "department": ["code", "name"],
    "program": ["code", "name", "department"],
    "course": ["code", "title", "credits", "department"],
    "term": ["name", "start_date", "end_date", "add_drop_deadline"],
    "section": ["course", "term", "section", "capacity", "min_attendance_rate", "lecturers"],
    "assessment": ["course", "term", "section", "name", "weight", "max_score", "due_date"],
    "termoutcome": ["student_number", "term", "outcome", "note"],
}


@pytest.mark.parametrize("model_name", list(IMPORT_COLUMNS))
def test_each_import_offers_a_csv_and_an_xlsx_template_of_its_columns(registrar_client, model_name):
    page = registrar_client.get(reverse(f"admin:students_{model_name}_import")).content.decode()
    csv_url = reverse(f"admin:students_{model_name}_import_template", args=["csv"])
    xlsx_url = reverse(f"admin:students_{model_name}_import_template", args=["xlsx"])
    assert f'href="{csv_url}"' in page and f'href="{xlsx_url}"' in page

    response = registrar_client.get(csv_url)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [IMPORT_COLUMNS[model_name]]

    response = registrar_client.get(xlsx_url)
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [cell.value for cell in next(sheet.iter_rows())] == IMPORT_COLUMNS[model_name]
    assert sheet.max_row == 1


def test_a_filled_in_template_imports(registrar_client, program):
    template = registrar_client.get(reverse("admin:students_student_import_template", args=["csv"]))
    header = next(csv.reader(io.StringIO(template.content.decode())))
    row = dict.fromkeys(header, "") | student_row("S1001") | {"status": "Active"}
    confirm(registrar_client, "student", preview(registrar_client, "student", csv_upload([row])))
    assert Student.objects.get().status == "active"


def test_templates_need_the_import_permission_and_a_known_format(registrar_client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_student"))
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse("admin:students_student_import_template", args=["csv"])).status_code == 403
    assert registrar_client.get(reverse("admin:students_student_import_template", args=["ods"])).status_code == 404


def test_the_students_import_lists_the_allowed_statuses(registrar_client):
    page = registrar_client.get(reverse("admin:students_student_import")).content.decode()
    allowed = page[page.index('class="import-allowed-values"') :]
    allowed = allowed[: allowed.index("</ul>")]
    assert "<code>status</code>: " in allowed
    for value in Student.Status.values:
        assert f"<code>{value}</code>" in allowed


def test_row_errors_are_listed_by_row_and_column_above_the_preview(registrar_client, assessment):
    student = EnrollmentFactory(section=assessment.section).student
    rows = [
        grade_row(student, assessment, "14"),
        grade_row(student, assessment, "4,5x"),
        grade_row(student, assessment, "3", assessment="Final"),
    ]
    page = preview(registrar_client, "grade", csv_upload(rows)).content.decode()
    start = page.index('<table class="import-row-errors">')
    listed = page[start : page.index("</table>", start)]
    cells = [
        re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", listed.partition("<tbody>")[2])
    ]
    assert cells == [
        ["2", "score", "&#x27;4,5x&#x27; is not a number: write decimals with a point, as in 4.5."],
        ["3", "assessment", f"{assessment.section} has no assessment Final."],
    ]
    assert "Nothing was imported: 2 errors to correct in the file." in page
    assert "ConversionSyntax" not in page and "decimal." not in page
    assert not Grade.objects.exists()
