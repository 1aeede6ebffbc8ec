"""Onboarding imports (issue 19): the catalogue, terms, sections with their lecturers, assessments,
past term outcomes and students' prior achievement, matched by natural keys so that a second import of
the same file changes nothing; and students/history.py, the path of past rows that the live rules
(an active student, an enrollment still running) would refuse."""

import datetime
from decimal import Decimal

import pytest
import tablib
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from students.errors import CampusErrorCode as Code
from students.history import history_enrollment_save, history_grade_save, history_term_outcome_save
from students.models import (
    Assessment,
    Course,
    Department,
    Enrollment,
    Grade,
    Program,
    Section,
    Student,
    Term,
    TermOutcome,
)
from students.resources import (
    AssessmentResource,
    CourseResource,
    DepartmentResource,
    ProgramResource,
    SectionResource,
    StudentResource,
    TermOutcomeResource,
    TermResource,
)
from students.services import enrollment_create, grade_record, term_close
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    DepartmentFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)
from tests.students.test_imports import confirm, messages_of, preview, row_errors, xlsx_upload
from tests.support.uploads import csv_upload

pytestmark = pytest.mark.django_db

# Terms long over and one far ahead, so the tests do not depend on today's date.
PAST_START = datetime.date(2023, 9, 11)
FUTURE_START = datetime.date(2098, 9, 8)


@pytest.fixture
def past_term():
    return TermFactory(name="2023 Autumn", start_date=PAST_START)


@pytest.fixture
def past_section(past_term):
    return SectionFactory(course=CourseFactory(code="MAT101"), term=past_term, code="A")


def dataset_of(rows: list[dict]) -> tablib.Dataset:
    dataset = tablib.Dataset(headers=list(rows[0]))
    for row in rows:
        dataset.append(list(row.values()))
    return dataset


def run(resource_class, rows: list[dict], user, *, dry_run: bool = False):
    return resource_class().import_data(dataset_of(rows), dry_run=dry_run, user=user, file_name="sis.csv")


def assert_clean(result) -> None:
    assert not result.has_errors(), [e.error for row in result.error_rows for e in row.errors]
    assert not result.has_validation_errors(), row_errors(result)


def snapshot(model) -> list[tuple]:
    """Every row of `model` with every field but the timestamps: what an idempotent re-run must keep."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname not in ("created_at", "updated_at")]
    return list(model.objects.order_by("pk").values_list(*names))


# --- The catalogue and terms: created, then the same file again changes nothing, then an update ---


def catalogue_files():
    """(resource, model, first file, changed file, what the change reads as, the fields it changes) for each
    catalogue import."""
    return [
        (
            DepartmentResource,
            Department,
            [{"code": "CHEM", "name": "Chemistry"}, {"code": "BIO", "name": "Biology"}],
            [{"code": "BIO", "name": "Life Sciences"}],
            lambda: Department.objects.get(code="BIO").name == "Life Sciences",
            {"name"},
        ),
        (
            ProgramResource,
            Program,
            [{"code": "BMATH", "name": "BSc Mathematics", "department": "MATH"}],
            [{"code": "BMATH", "name": "BSc Mathematics", "department": "PHYS"}],
            lambda: Program.objects.get(code="BMATH").department.code == "PHYS",
            {"department_id"},
        ),
        (
            CourseResource,
            Course,
            [
                {"code": "MAT101", "title": "Calculus I", "credits": "6", "department": "MATH"},
                {"code": "PHY101", "title": "Mechanics", "credits": "5", "department": "PHYS"},
            ],
            [{"code": "MAT101", "title": "Calculus I", "credits": "7.0", "department": ""}],
            lambda: Course.objects.get(code="MAT101").credits == 7,
            {"credits"},
        ),
        (
            TermResource,
            Term,
            [
                {
                    "name": "2023 Autumn",
                    "start_date": "2023-09-11",
                    "end_date": "2024-01-26",
                    "add_drop_deadline": "2023-09-25",
                }
            ],
            [{"name": "2023 Autumn", "start_date": "", "end_date": "2024-01-19", "add_drop_deadline": ""}],
            lambda: Term.objects.get(name="2023 Autumn").end_date == datetime.date(2024, 1, 19),
            {"end_date"},
        ),
    ]


@pytest.mark.parametrize(
    ("resource", "model", "rows", "changed", "updated", "fields"),
    catalogue_files(),
    ids=["department", "program", "course", "term"],
)
def test_catalogue_imports_create_then_rerun_changes_nothing_then_update(
    registrar, resource, model, rows, changed, updated, fields
):
    DepartmentFactory(code="MATH", name="Mathematics")
    DepartmentFactory(code="PHYS", name="Physics")
    before = model.objects.count()
    result = run(resource, rows, registrar)
    assert_clean(result)
    assert model.objects.count() - before == result.totals["new"] == len(rows)
    created = AuditLogEntry.objects.filter(verb=f"{model._meta.model_name}.created", actor=registrar)
    assert created.count() == len(rows)

    rows_then, audit_then = snapshot(model), AuditLogEntry.objects.count()
    again = run(resource, rows, registrar)
    assert_clean(again)
    assert again.totals["skip"] == len(rows) and again.totals["new"] == again.totals["update"] == 0
    assert snapshot(model) == rows_then and AuditLogEntry.objects.count() == audit_then

    result = run(resource, changed, registrar)
    assert_clean(result)
    assert result.totals["update"] == 1 and model.objects.count() == len(rows_then) and updated()
    [entry] = AuditLogEntry.objects.filter(verb=f"{model._meta.model_name}.updated")
    assert set(entry.changes) == fields and entry.actor == registrar


GOOD_ROWS = {
    ProgramResource: {"code": "GOOD", "name": "Good", "department": "MATH"},
    CourseResource: {"code": "GOOD", "title": "Good", "credits": "6", "department": "MATH"},
    TermResource: {
        "name": "Good",
        "start_date": "2024-02-01",
        "end_date": "2024-06-01",
        "add_drop_deadline": "2024-02-10",
    },
}


@pytest.mark.parametrize(
    ("resource", "bad", "column", "message"),
    [
        (ProgramResource, {"department": "NOPE"}, "department", "No department has the code NOPE."),
        (CourseResource, {"credits": "0"}, "__all__", "Credits must be between 1 and 60."),
        (CourseResource, {"credits": "six"}, "credits", "'six' is not a number."),
        (CourseResource, {"title": ""}, "title", "A value is required."),
        (TermResource, {"end_date": "2024-01-01"}, "__all__", "A term must end after it starts."),
        (TermResource, {"start_date": "2024-13-01"}, "start_date", "is not a date: write it as YYYY-MM-DD."),
    ],
    ids=["unknown-department", "credits-constraint", "credits-text", "title-missing", "term-order", "date-format"],
)
def test_one_bad_catalogue_row_writes_nothing(registrar, resource, bad, column, message):
    DepartmentFactory(code="MATH")
    good = GOOD_ROWS[resource]
    bad = good | bad | ({"name": "Bad"} if resource is TermResource else {"code": "BAD"})
    model = resource._meta.model
    before, audit = snapshot(model), AuditLogEntry.objects.count()
    result = run(resource, [good, bad], registrar)
    errors = row_errors(result)
    assert list(errors) == [2] and message in " ".join(errors[2][column])
    assert snapshot(model) == before and AuditLogEntry.objects.count() == audit


# --- Sections with their lecturers ------------------------------------------------------------


@pytest.fixture
def lecturers():
    return [UserFactory(email=f"lecturer{n}@campus.example", roles=[Role.LECTURER]) for n in (1, 2)]


def section_row(**overrides) -> dict:
    row = {"course": "MAT101", "term": "2023 Autumn", "section": "B", "capacity": "40", "min_attendance_rate": "0.8"}
    return row | {"lecturers": "LECTURER1@campus.example, lecturer2@campus.example"} | overrides


def test_sections_import_with_lecturers_by_email_in_any_case(registrar, past_section, lecturers):
    result = run(
        SectionResource, [section_row(), section_row(section="", lecturers="lecturer2@campus.example")], registrar
    )
    assert_clean(result)
    assert (result.totals["new"], result.totals["update"]) == (1, 1)  # section A exists already
    new = Section.objects.get(code="B")
    assert (new.course.code, new.term.name, new.capacity, new.min_attendance_rate) == (
        "MAT101",
        "2023 Autumn",
        40,
        Decimal("0.8"),
    )
    assert set(new.lecturers.all()) == set(lecturers)
    past_section.refresh_from_db()
    assert list(past_section.lecturers.all()) == [lecturers[1]] and past_section.capacity == 40


def test_a_section_import_again_changes_nothing_and_an_update_replaces_the_lecturers(
    registrar, past_section, lecturers
):
    rows = [section_row()]
    assert_clean(run(SectionResource, rows, registrar))
    rows_then, audit_then = snapshot(Section), AuditLogEntry.objects.count()
    again = run(SectionResource, rows, registrar)
    assert again.totals["skip"] == 1 and snapshot(Section) == rows_then and AuditLogEntry.objects.count() == audit_then

    result = run(SectionResource, [section_row(lecturers="lecturer1@campus.example", capacity="")], registrar)
    assert result.totals["update"] == 1
    section = Section.objects.get(code="B")
    assert list(section.lecturers.all()) == [lecturers[0]] and section.capacity == 40  # an empty cell keeps the value
    [entry] = AuditLogEntry.objects.filter(verb="section.updated", object_id=str(section.pk))
    assert entry.changes == {
        "lecturers": [["lecturer1@campus.example", "lecturer2@campus.example"], ["lecturer1@campus.example"]]
    }


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        (
            {"lecturers": "nobody@campus.example"},
            "lecturers",
            "No lecturer has the email address nobody@campus.example.",
        ),
        (
            {"lecturers": "advisor@campus.example"},
            "lecturers",
            "No lecturer has the email address advisor@campus.example.",
        ),
        ({"course": "NOPE"}, "course", "No course has the code NOPE."),
        ({"term": "1999 Spring"}, "term", "No term has the name 1999 Spring."),
        ({"min_attendance_rate": "1.5"}, "__all__", "The minimum attendance rate must be between 0 and 1."),
        ({"capacity": "0"}, "__all__", "Capacity must be at least 1."),
    ],
    ids=["unknown-lecturer", "not-a-lecturer", "course", "term", "rate", "capacity"],
)
def test_one_bad_section_row_writes_nothing(registrar, past_section, lecturers, bad, column, message):
    UserFactory(email="advisor@campus.example", roles=[Role.ADVISOR])
    before = snapshot(Section)
    result = run(SectionResource, [section_row(section="C"), section_row() | bad], registrar)
    errors = row_errors(result)
    assert list(errors) == [2] and message in " ".join(errors[2][column])
    assert snapshot(Section) == before and not past_section.lecturers.exists() and not AuditLogEntry.objects.exists()


# --- Assessments ------------------------------------------------------------------------------


def assessment_row(**overrides) -> dict:
    row = {"course": "MAT101", "term": "2023 Autumn", "section": "A", "name": "Midterm", "weight": "40"}
    return row | {"max_score": "50", "due_date": "2023-11-03"} | overrides


def test_assessments_import_by_section_and_name_and_a_rerun_changes_nothing(registrar, past_section):
    rows = [assessment_row(), assessment_row(name="Final", weight="60", max_score="", due_date="")]
    result = run(AssessmentResource, rows, registrar)
    assert_clean(result)
    midterm, final = Assessment.objects.filter(section=past_section).order_by("weight")
    assert (midterm.name, midterm.weight, midterm.max_score, midterm.due_date) == (
        "Midterm",
        Decimal("40"),
        Decimal("50"),
        datetime.date(2023, 11, 3),
    )
    assert (final.weight, final.max_score, final.due_date) == (Decimal("60"), Decimal("100"), None)

    rows_then, audit_then = snapshot(Assessment), AuditLogEntry.objects.count()
    again = run(AssessmentResource, rows, registrar)
    assert (
        again.totals["skip"] == 2 and snapshot(Assessment) == rows_then and AuditLogEntry.objects.count() == audit_then
    )

    result = run(AssessmentResource, [assessment_row(weight="30", max_score="")], registrar)
    assert result.totals["update"] == 1
    midterm.refresh_from_db()
    assert (midterm.weight, midterm.max_score) == (Decimal("30"), Decimal("50"))


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        ({"name": "Final", "weight": "70"}, "weight", "would add up to 110"),
        ({"name": "Final", "due_date": "2024-03-01"}, "due_date", "2024-03-01 is outside term 2023 Autumn"),
        ({"name": "Final", "section": "Z"}, "section", "No section MAT101-Z in term 2023 Autumn."),
        ({"name": "Final", "weight": ""}, "weight", "A value is required."),
        ({"name": "Final", "max_score": "0"}, "__all__", "The maximum score must be above 0."),
    ],
    ids=["weights-over-100", "due-outside-term", "section", "weight-missing", "max-score"],
)
def test_one_bad_assessment_row_writes_nothing(registrar, past_section, bad, column, message):
    result = run(AssessmentResource, [assessment_row(), assessment_row() | bad], registrar)
    errors = row_errors(result)
    assert list(errors) == [2] and message in " ".join(errors[2][column])
    assert not Assessment.objects.exists() and not AuditLogEntry.objects.exists()


# --- Term outcomes: a past term's record, source "imported" -----------------------------------


@pytest.fixture
def students():
    return [StudentFactory(student_number=f"S{n}") for n in (1, 2, 3)]


def outcome_row(number: str, outcome: str, term: str = "2023 Autumn", note: str = "") -> dict:
    return {"student_number": number, "term": term, "outcome": outcome, "note": note}


def test_term_outcomes_import_as_imported_in_any_case_and_a_rerun_changes_nothing(registrar, past_term, students):
    rows = [outcome_row("S1", "PASSED"), outcome_row("S2", "failed", note="Resit"), outcome_row("S3", "Withdrew")]
    result = run(TermOutcomeResource, rows, registrar)
    assert_clean(result)
    outcomes = {o.student.student_number: o for o in TermOutcome.objects.select_related("student")}
    assert {n: (o.outcome, o.source) for n, o in outcomes.items()} == {
        "S1": ("passed", "imported"),
        "S2": ("failed", "imported"),
        "S3": ("withdrew", "imported"),
    }
    assert outcomes["S2"].note == "Resit"
    entries = AuditLogEntry.objects.filter(verb="termoutcome.imported")
    assert entries.count() == 3 and set(entries.values_list("reason", flat=True)) == {"Imported from sis.csv"}

    rows_then, audit_then = snapshot(TermOutcome), AuditLogEntry.objects.count()
    again = run(TermOutcomeResource, rows, registrar)
    assert (
        again.totals["skip"] == 3 and snapshot(TermOutcome) == rows_then and AuditLogEntry.objects.count() == audit_then
    )

    result = run(TermOutcomeResource, [outcome_row("S2", "passed", note="")], registrar)
    assert result.totals["update"] == 1
    updated = TermOutcome.objects.get(student=students[1])
    assert (updated.outcome, updated.note) == ("passed", "Resit")  # an empty note cell keeps the note


def test_a_staff_outcome_of_the_term_is_replaced_by_the_imported_record(registrar, past_term, students):
    TermOutcomeFactory(student=students[0], term=past_term, outcome="failed", source="staff")
    result = run(TermOutcomeResource, [outcome_row("S1", "failed")], registrar)
    assert result.totals["update"] == 1
    assert TermOutcome.objects.values_list("outcome", "source").get() == ("failed", "imported")


def test_closing_the_term_keeps_imported_outcomes(registrar, past_section, students):
    EnrollmentFactory(student=students[0], section=past_section)
    AssessmentFactory(section=past_section, weight=Decimal("100"))
    assert_clean(run(TermOutcomeResource, [outcome_row("S1", "passed")], registrar))
    term_close(term=past_section.term, actor=registrar)  # derived: failed (no score)
    assert TermOutcome.objects.values_list("outcome", "source").get() == ("passed", "imported")


def test_an_outcome_for_a_term_not_yet_ended_is_refused_and_nothing_is_written(registrar, past_term, students):
    TermFactory(name="2098 Autumn", start_date=FUTURE_START)
    rows = [outcome_row("S1", "passed"), outcome_row("S2", "passed", term="2098 Autumn")]
    result = run(TermOutcomeResource, rows, registrar)
    errors = row_errors(result)
    assert list(errors) == [2] and "its outcomes come once it has ended" in " ".join(errors[2]["term"])
    assert not TermOutcome.objects.exists() and not AuditLogEntry.objects.exists()


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        (outcome_row("S9", "passed"), "student_number", "No student has the number S9."),
        (outcome_row("S2", "excellent"), "outcome", "'excellent' is not one of: passed, failed, withdrew."),
        (outcome_row("S2", ""), "outcome", "A value is required."),
        (outcome_row("S2", "passed", term="Nope"), "term", "No term has the name Nope."),
    ],
    ids=["student", "outcome", "outcome-missing", "term"],
)
def test_one_bad_outcome_row_writes_nothing(registrar, past_term, students, bad, column, message):
    result = run(TermOutcomeResource, [outcome_row("S1", "passed"), bad], registrar)
    errors = row_errors(result)
    assert list(errors) == [2] and message in " ".join(errors[2][column])
    assert not TermOutcome.objects.exists() and not AuditLogEntry.objects.exists()


def test_the_outcome_import_in_the_admin_lists_the_allowed_outcomes_and_imports_xlsx(
    registrar_client, past_term, students
):
    page = registrar_client.get("/admin/students/termoutcome/import/").content.decode()
    assert "<code>outcome</code>: <code>passed</code>, <code>failed</code>, <code>withdrew</code>" in page
    upload = xlsx_upload([outcome_row("S1", "Passed"), outcome_row("S2", "FAILED")])
    response = confirm(
        registrar_client, "termoutcome", preview(registrar_client, "termoutcome", upload, file_format="1")
    )
    assert messages_of(response) == ["Import finished: 2 new, 0 updated, 0 deleted and 0 skipped term outcomes."]
    assert sorted(TermOutcome.objects.values_list("outcome", "source")) == [
        ("failed", "imported"),
        ("passed", "imported"),
    ]


def test_reading_a_file_of_outcomes_takes_a_fixed_number_of_queries_per_row(registrar, past_term):
    for number in range(40):
        StudentFactory(student_number=f"N{number:03d}")

    def queries(count: int) -> int:
        """Statements an import of `count` rows runs, savepoints aside."""
        rows = [outcome_row(f"N{n:03d}", "passed") for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert_clean(run(TermOutcomeResource, rows, registrar, dry_run=True))
        return sum(1 for query in captured if "SAVEPOINT" not in query["sql"])

    ten, twenty, forty = queries(10), queries(20), queries(40)
    per_row = (forty - twenty) / 20
    assert forty - twenty == 2 * (twenty - ten)  # the same cost for every row, whatever the file's size
    # A row: its student, its outcome (read, then locked), two choice checks, the insert and its audit
    # entry; the term is read once a file.
    assert per_row == 7


# --- Prior achievement ------------------------------------------------------------------------


def test_prior_achievement_is_imported_by_student_number_alone(registrar, students):
    rows = [
        {"student_number": "S1", "admission_grade": "142.5", "prior_qualification_grade": "138"},
        {"student_number": "S2", "admission_grade": "", "prior_qualification_grade": "120.25"},
    ]
    result = run(StudentResource, rows, registrar)
    assert_clean(result)
    first, second = Student.objects.filter(student_number__in=["S1", "S2"]).order_by("student_number")
    assert (first.admission_grade, first.prior_qualification_grade) == (Decimal("142.50"), Decimal("138.00"))
    assert (second.admission_grade, second.prior_qualification_grade) == (None, Decimal("120.25"))
    [entry] = AuditLogEntry.objects.filter(verb="student.updated", object_id=str(first.pk))
    assert entry.changes["admission_grade"] == [None, "142.50"]

    audit_then = AuditLogEntry.objects.count()
    assert run(StudentResource, rows, registrar).totals["skip"] == 2
    assert AuditLogEntry.objects.count() == audit_then


def test_a_prior_grade_off_the_scale_is_a_row_error(registrar, students):
    rows = [
        {"student_number": "S1", "admission_grade": "150", "prior_qualification_grade": ""},
        {"student_number": "S2", "admission_grade": "201", "prior_qualification_grade": ""},
    ]
    errors = row_errors(run(StudentResource, rows, registrar))
    assert errors == {2: {"admission_grade": ["A grade on the 0 to 200 scale, not 201.00."]}}
    assert not Student.objects.filter(admission_grade__isnull=False).exists()


def test_the_database_refuses_a_prior_grade_off_the_scale(students):
    with pytest.raises(IntegrityError), transaction.atomic():
        Student.objects.filter(pk=students[0].pk).update(prior_qualification_grade=Decimal("-1"))


# --- History: past rows the live rules would refuse -------------------------------------------


def test_a_past_enrollment_of_a_since_withdrawn_student_is_recorded_with_its_grades(registrar, past_section):
    student = StudentFactory(status=Student.Status.WITHDRAWN)
    assessment = AssessmentFactory(section=past_section, max_score=Decimal("20"))
    with pytest.raises(ServiceError) as live:
        enrollment_create(student=student, section=past_section, enrolled_on=PAST_START, actor=registrar)
    assert live.value.code == Code.STUDENT_NOT_ACTIVE

    ended_on = PAST_START + datetime.timedelta(weeks=6)
    past = {"student": student, "section": past_section, "enrolled_on": PAST_START, "ended_on": ended_on}
    enrollment = history_enrollment_save(**past, status="withdrawn", actor=registrar)
    assert (enrollment.status, enrollment.ended_on) == ("withdrawn", ended_on)
    with pytest.raises(ServiceError) as live:
        grade_record(student=student, assessment=assessment, score=Decimal("12"), actor=registrar)
    assert live.value.code == Code.NOT_ENROLLED
    grade = history_grade_save(student=student, assessment=assessment, score=Decimal("12"), actor=registrar)
    assert grade.score == Decimal("12.00") and grade.graded_by == registrar

    audit_then = AuditLogEntry.objects.count()
    history_enrollment_save(**past, status="withdrawn", actor=registrar)
    history_grade_save(student=student, assessment=assessment, score=Decimal("12"), actor=UserFactory())
    assert AuditLogEntry.objects.count() == audit_then  # the same past again changes nothing
    assert Enrollment.objects.count() == Grade.objects.count() == 1 and Grade.objects.get().graded_by == registrar


@pytest.mark.parametrize(
    ("arguments", "code", "field"),
    [
        ({"enrolled_on": PAST_START + datetime.timedelta(weeks=30)}, Code.DATE_OUTSIDE_TERM, "enrolled_on"),
        (
            {"status": "withdrawn", "ended_on": PAST_START - datetime.timedelta(days=1)},
            Code.DATE_OUTSIDE_TERM,
            "ended_on",
        ),
        ({"status": "withdrawn"}, Code.DATE_OUTSIDE_TERM, "ended_on"),
        ({"final_grade": Decimal("101")}, Code.SCORE_OUT_OF_RANGE, "final_grade"),
    ],
    ids=["enrolled-after-term", "ended-before-enrolled", "withdrawn-without-end", "final-grade"],
)
def test_history_enrollments_keep_the_rules_of_the_past(registrar, past_section, arguments, code, field):
    with pytest.raises(ServiceError) as refused:
        history_enrollment_save(
            student=StudentFactory(), section=past_section, actor=registrar, **{"enrolled_on": PAST_START} | arguments
        )
    assert (refused.value.code, refused.value.field) == (code, field)
    assert not Enrollment.objects.exists() and not AuditLogEntry.objects.exists()


def test_history_grades_keep_the_bounds_and_need_an_enrollment_then(registrar, past_section):
    assessment = AssessmentFactory(section=past_section, max_score=Decimal("20"))
    enrolled = EnrollmentFactory(section=past_section).student
    with pytest.raises(ServiceError) as refused:
        history_grade_save(student=enrolled, assessment=assessment, score=Decimal("21"), actor=registrar)
    assert refused.value.code == Code.SCORE_OUT_OF_RANGE
    with pytest.raises(ServiceError) as refused:
        history_grade_save(student=StudentFactory(), assessment=assessment, score=Decimal("5"), actor=registrar)
    assert refused.value.code == Code.NOT_ENROLLED
    assert not Grade.objects.exists()


def test_history_outcomes_need_the_term_to_have_ended(registrar):
    running = TermFactory(start_date=FUTURE_START)
    with pytest.raises(ServiceError) as refused:
        history_term_outcome_save(student=StudentFactory(), term=running, outcome="passed", actor=registrar)
    assert (refused.value.code, refused.value.field) == (Code.TERM_NOT_ENDED, "term")
    assert not TermOutcome.objects.exists()


# --- Through the admin alone ------------------------------------------------------------------


def test_a_registrar_loads_a_campus_catalogue_and_its_past_outcomes_through_the_admin(registrar_client, lecturers):
    files = [
        ("department", [{"code": "MATH", "name": "Mathematics"}]),
        ("program", [{"code": "BMATH", "name": "BSc Mathematics", "department": "MATH"}]),
        ("course", [{"code": "MAT101", "title": "Calculus I", "credits": "6", "department": "MATH"}]),
        (
            "term",
            [
                {
                    "name": "2023 Autumn",
                    "start_date": "2023-09-11",
                    "end_date": "2024-01-26",
                    "add_drop_deadline": "2023-09-25",
                }
            ],
        ),
        ("section", [section_row(section="A", lecturers="lecturer1@campus.example")]),
        (
            "student",
            [
                {
                    "student_number": "S1",
                    "email": "s1@campus.example",
                    "first_name": "Ana",
                    "last_name": "Lima",
                    "program": "BMATH",
                    "status": "Withdrawn",
                    "admission_grade": "150",
                }
            ],
        ),
        ("assessment", [assessment_row(weight="100")]),
        ("termoutcome", [outcome_row("S1", "Withdrew")]),
    ]
    for model_name, rows in files:
        response = confirm(registrar_client, model_name, preview(registrar_client, model_name, csv_upload(rows)))
        assert messages_of(response)[0].startswith("Import finished: 1 new, 0 updated"), (
            model_name,
            messages_of(response),
        )
    section = Section.objects.get()
    assert (str(section), list(section.lecturers.all())) == ("MAT101-A (2023 Autumn)", [lecturers[0]])
    student = Student.objects.get()
    assert (student.status, student.admission_grade, student.program.department.code) == (
        "withdrawn",
        Decimal("150.00"),
        "MATH",
    )
    assert TermOutcome.objects.values_list("outcome", "source").get() == ("withdrew", "imported")

    for model_name, rows in files:  # the same files again: every row is skipped
        response = confirm(registrar_client, model_name, preview(registrar_client, model_name, csv_upload(rows)))
        assert "0 new, 0 updated, 0 deleted and 1 skipped" in messages_of(response)[0], model_name
