"""The registry's Django admin: lists that cost the same at 5 rows as at 100, writes through the
services (rules and audit log hold), the close-term action, role assignment, permissions per role
and formula-safe exports."""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from campusiq.core.admin import formula_neutralise
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write
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
from tests.factories import (
    TERM_START,
    AssessmentFactory,
    DepartmentFactory,
    EnrollmentFactory,
    GradeFactory,
    ProgramFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)
from tests.support.admin import assert_changelist_queries_do_not_grow, changelist_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def superadmin():
    return UserFactory(roles=[Role.ADMIN])


@pytest.fixture
def admin_client_(client, superadmin):
    client.force_login(superadmin)
    return client


def add_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def form_post_data(response) -> dict:
    """What a browser would post back unchanged from an admin change page: the form, every inline
    formset's management form and rows."""
    forms_ = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms_ += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms_:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return data


def form_errors(response) -> dict:
    form = response.context["adminform"].form
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}


def audit(verb: str) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(verb=verb).order_by("id"))


def enrolled_student(section=None, **kwargs) -> Enrollment:
    return EnrollmentFactory(section=section or SectionFactory(), **kwargs)


# --- Registration ---------------------------------------------------------------------------

CAMPUS_MODELS = list(apps.get_app_config("students").get_models())


def test_every_campus_model_is_registered_and_searchable(superadmin):
    assert {model.__name__ for model in CAMPUS_MODELS} == {
        "Department",
        "Program",
        "Course",
        "Term",
        "Section",
        "Student",
        "Enrollment",
        "Assessment",
        "Grade",
        "TermOutcome",
    }
    for model in CAMPUS_MODELS:
        model_admin = admin.site._registry[model]
        assert model_admin.search_fields, model
        assert "export_admin_action" in model_admin.get_actions(_request(superadmin))


def test_editable_foreign_keys_use_autocomplete(superadmin):
    request = _request(superadmin)
    for model in CAMPUS_MODELS:
        model_admin = admin.site._registry[model]
        form_fields = model_admin.get_form(request)().fields
        relations = [f.name for f in [*model._meta.fields, *model._meta.many_to_many] if f.is_relation]
        for name in relations:
            if name in form_fields:
                assert name in model_admin.autocomplete_fields, f"{model.__name__}.{name}"
                related_admin = admin.site._registry[model._meta.get_field(name).related_model]
                assert related_admin.search_fields


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


# --- Lists cost the same at 5 rows as at 100 -------------------------------------------------


def _department():
    department = DepartmentFactory()
    ProgramFactory(department=department)
    return department


def _section():
    section = SectionFactory(lecturers=[UserFactory(roles=[Role.LECTURER])])
    EnrollmentFactory(section=section)
    AssessmentFactory(section=section, weight=Decimal("40"))
    return section


def _audit_entry():
    return audit_log_write(actor=UserFactory(), verb="department.created", target=DepartmentFactory())


# Each builder adds one row of the model, with related rows of its own, so a per-row query would show.
ROW_BUILDERS = [
    (Department, _department),
    (Program, lambda: StudentFactory().program),
    (Course, lambda: SectionFactory().course),
    (Term, lambda: SectionFactory().term),
    (Section, _section),
    (Student, lambda: StudentFactory(advisor=UserFactory(roles=[Role.ADVISOR]))),
    (Enrollment, lambda: EnrollmentFactory(final_grade=Decimal("61.5"))),
    (Assessment, lambda: GradeFactory().assessment),
    (Grade, lambda: GradeFactory(graded_by=UserFactory())),
    (TermOutcome, TermOutcomeFactory),
    (User, lambda: UserFactory(roles=[Role.LECTURER, Role.ADVISOR])),
    (AuditLogEntry, _audit_entry),
]


@pytest.mark.parametrize(("model", "build_one"), ROW_BUILDERS, ids=[model.__name__ for model, _ in ROW_BUILDERS])
def test_changelist_query_count_does_not_grow_with_rows(registrar_client, model, build_one):
    assert_changelist_queries_do_not_grow(registrar_client, model, build_one)


# --- Permissions per role -------------------------------------------------------------------


def test_registrar_opens_every_list_and_adds_a_course(registrar_client):
    for model in [*CAMPUS_MODELS, User, AuditLogEntry]:
        assert registrar_client.get(changelist_url(model)).status_code == 200, model
        assert registrar_client.get(f"{changelist_url(model)}export/").status_code == 200, model
    for model in (Student, Enrollment, Grade):
        assert registrar_client.get(f"{changelist_url(model)}import/").status_code == 200, model

    department = DepartmentFactory()
    response = registrar_client.post(
        add_url(Course), {"department": department.pk, "code": "CS101", "title": "Programming", "credits": 6}
    )
    assert response.status_code == 302
    assert Course.objects.get(code="CS101").department == department


def test_registrar_opens_every_add_and_change_page(registrar_client):
    enrollment = enrolled_student()
    grade = GradeFactory(student=enrollment.student, assessment=AssessmentFactory(section=enrollment.section))
    rows = [
        enrollment.section.course.department,
        enrollment.student.program,
        enrollment.section.course,
        enrollment.section.term,
        enrollment.section,
        enrollment.student,
        enrollment,
        grade.assessment,
        grade,
        TermOutcomeFactory(student=enrollment.student, term=enrollment.section.term),
        UserFactory(),
        _audit_entry(),
    ]
    for row in rows:
        assert registrar_client.get(change_url(row)).status_code == 200, row
        if type(row) is not AuditLogEntry:
            assert registrar_client.get(add_url(type(row))).status_code == 200, row


def test_lecturer_cannot_reach_the_admin_or_add_a_course(client):
    client.force_login(UserFactory(roles=[Role.LECTURER]))
    response = client.get(changelist_url(Course))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    response = client.post(
        add_url(Course), {"department": DepartmentFactory().pk, "code": "CS101", "title": "X", "credits": 6}
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert not Course.objects.exists()


def test_staff_without_permissions_sees_no_campus_list(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(changelist_url(Grade)).status_code == 403
    assert client.get(f"{changelist_url(Grade)}export/").status_code == 403


def test_nobody_edits_or_deletes_the_audit_log_in_the_admin(admin_client_, superadmin):
    entry = _audit_entry()
    assert admin_client_.post(change_url(entry), {"verb": "forged"}).status_code == 403
    assert admin_client_.post(reverse("admin:core_auditlogentry_delete", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert entry.verb == "department.created"


# --- Grades ---------------------------------------------------------------------------------


def test_grade_added_in_the_admin_is_recorded_and_audited(registrar_client, registrar):
    enrollment = enrolled_student()
    assessment = AssessmentFactory(section=enrollment.section, max_score=Decimal("20"))
    response = registrar_client.post(
        add_url(Grade),
        {"student": enrollment.student.pk, "assessment": assessment.pk, "score": "17.5", "reason": "paper marked"},
    )
    assert response.status_code == 302
    grade = Grade.objects.get()
    assert grade.score == Decimal("17.50") and grade.graded_by == registrar
    [entry] = audit("grade.recorded")
    assert entry.actor == registrar and entry.changes == {"score": [None, "17.50"]} and entry.reason == "paper marked"


def test_grade_changed_in_the_admin_is_audited_with_before_and_after(registrar_client, registrar):
    enrollment = enrolled_student()
    grade = GradeFactory(
        student=enrollment.student, assessment=AssessmentFactory(section=enrollment.section), score=Decimal("12")
    )
    page = registrar_client.get(change_url(grade))
    data = form_post_data(page) | {"score": "15", "reason": "re-marked"}
    assert registrar_client.post(change_url(grade), data).status_code == 302
    grade.refresh_from_db()
    assert grade.score == Decimal("15") and grade.graded_by == registrar
    [entry] = audit("grade.changed")
    assert entry.changes == {"score": ["12.00", "15.00"]} and entry.reason == "re-marked"
    assert entry.actor == registrar


def test_grade_over_max_score_is_a_form_error_and_writes_nothing(registrar_client):
    enrollment = enrolled_student()
    grade = GradeFactory(
        student=enrollment.student,
        assessment=AssessmentFactory(section=enrollment.section, max_score=Decimal("20")),
        score=Decimal("12"),
    )
    data = form_post_data(registrar_client.get(change_url(grade))) | {"score": "21"}
    response = registrar_client.post(change_url(grade), data)
    assert response.status_code == 200
    assert form_errors(response) == {"score": ["Score must be between 0 and 20.00."]}
    grade.refresh_from_db()
    assert grade.score == Decimal("12") and not AuditLogEntry.objects.exists()


def test_grade_for_a_student_not_enrolled_is_refused(registrar_client):
    assessment = AssessmentFactory()
    student = StudentFactory()
    response = registrar_client.post(
        add_url(Grade), {"student": student.pk, "assessment": assessment.pk, "score": "10"}
    )
    assert response.status_code == 200
    assert "is not enrolled in" in form_errors(response)["student"][0]
    assert not Grade.objects.exists()


def test_a_computed_grade_is_not_entered_in_the_admin(registrar_client):
    enrollment = enrolled_student()
    assessment = AssessmentFactory(section=enrollment.section, name="Attendance", max_score=Decimal(100), computed=True)
    response = registrar_client.post(
        add_url(Grade), {"student": enrollment.student.pk, "assessment": assessment.pk, "score": "90"}
    )
    assert response.status_code == 200
    assert "computed by CampusIQ and cannot be entered by hand" in form_errors(response)["score"][0]
    assert not Grade.objects.exists() and not AuditLogEntry.objects.exists()


def test_grades_cannot_be_deleted_in_the_admin(registrar_client):
    grade = GradeFactory()
    response = registrar_client.post(reverse("admin:students_grade_delete", args=[grade.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Grade.objects.filter(pk=grade.pk).exists()


# --- Students -------------------------------------------------------------------------------


def _student_add_data(**overrides) -> dict:
    return {
        "student_number": "S2026001",
        "email": "nova@campus.example",
        "first_name": "Nova",
        "last_name": "Reis",
        "program": ProgramFactory().pk,
        "semester": "1",
        "status": "active",
    } | overrides


def test_student_added_in_the_admin_goes_through_student_create(registrar_client, registrar):
    advisor = UserFactory(roles=[Role.ADVISOR])
    response = registrar_client.post(add_url(Student), _student_add_data(advisor=advisor.pk, semester="2"))
    assert response.status_code == 302
    student = Student.objects.select_related("user").get()
    assert student.user.email == "nova@campus.example" and student.user.get_full_name() == "Nova Reis"
    assert student.semester == 2 and student.advisor == advisor
    assert student.user.groups.filter(name="Student").exists() and not student.user.has_usable_password()
    assert [(e.verb, e.actor) for e in AuditLogEntry.objects.order_by("id")] == [
        ("role.granted", registrar),
        ("student.created", registrar),
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (lambda: {"semester": "9"}, "semester", "Semester must be between 1 and 8."),
        (lambda: {"email": "TAKEN@campus.example"}, "email", "TAKEN@campus.example already has an account."),
        (lambda: {"student_number": StudentFactory().student_number}, "student_number", "is taken."),
        (lambda: {"advisor": UserFactory().pk}, "advisor", "does not hold the advisor role."),
    ],
    ids=["semester", "email", "student_number", "advisor"],
)
def test_student_rules_hold_in_the_admin(registrar_client, overrides, field, message):
    UserFactory(email="taken@campus.example")
    data = _student_add_data(**overrides())
    users_before, students_before = User.objects.count(), Student.objects.count()
    response = registrar_client.post(add_url(Student), data)
    assert response.status_code == 200
    assert message in " ".join(form_errors(response)[field])
    assert Student.objects.count() == students_before and User.objects.count() == users_before
    assert not AuditLogEntry.objects.exists()


def test_student_changed_in_the_admin_is_audited(registrar_client, registrar):
    student = StudentFactory(semester=1)
    data = form_post_data(registrar_client.get(change_url(student))) | {"semester": "3"}
    assert registrar_client.post(change_url(student), data).status_code == 302
    student.refresh_from_db()
    assert student.semester == 3
    [entry] = audit("student.updated")
    assert entry.changes == {"semester": [1, 3]} and entry.actor == registrar


def test_student_change_keeps_the_semester_rule(registrar_client):
    student = StudentFactory(semester=1)
    data = form_post_data(registrar_client.get(change_url(student))) | {"semester": "12"}
    response = registrar_client.post(change_url(student), data)
    assert form_errors(response) == {"semester": ["Semester must be between 1 and 8."]}
    student.refresh_from_db()
    assert student.semester == 1


def test_prior_achievement_is_entered_and_changed_in_the_admin_on_its_scale(registrar_client, registrar):
    response = registrar_client.post(add_url(Student), _student_add_data(admission_grade="140.5"))
    assert response.status_code == 302
    student = Student.objects.get()
    assert (student.admission_grade, student.prior_qualification_grade) == (Decimal("140.50"), None)

    page = registrar_client.get(change_url(student))
    assert "on a 0 to 200 scale" in page.content.decode()
    refused = registrar_client.post(change_url(student), form_post_data(page) | {"prior_qualification_grade": "250"})
    assert form_errors(refused) == {"prior_qualification_grade": ["A grade on the 0 to 200 scale, not 250."]}
    data = form_post_data(page) | {"prior_qualification_grade": "131"}
    assert registrar_client.post(change_url(student), data).status_code == 302
    student.refresh_from_db()
    assert student.prior_qualification_grade == Decimal("131")
    [entry] = audit("student.updated")
    assert entry.changes == {"prior_qualification_grade": [None, "131"]} and entry.actor == registrar


def test_grade_changed_in_the_student_inline_is_audited(registrar_client, registrar):
    enrollment = enrolled_student()
    grade = GradeFactory(
        student=enrollment.student, assessment=AssessmentFactory(section=enrollment.section), score=Decimal("10")
    )
    page = registrar_client.get(change_url(enrollment.student))
    data = form_post_data(page)
    score_key = next(key for key, value in data.items() if key.endswith("-score") and value == Decimal("10.00"))
    data[score_key] = "18"
    assert registrar_client.post(change_url(enrollment.student), data).status_code == 302
    grade.refresh_from_db()
    assert grade.score == Decimal("18")
    [entry] = audit("grade.changed")
    assert entry.changes == {"score": ["10.00", "18.00"]} and entry.actor == registrar


# --- Enrollments and sections ---------------------------------------------------------------


def test_enrollment_added_in_the_admin_goes_through_enrollment_create(registrar_client, registrar):
    section, student = SectionFactory(), StudentFactory()
    response = registrar_client.post(
        add_url(Enrollment), {"student": student.pk, "section": section.pk, "enrolled_on": TERM_START.isoformat()}
    )
    assert response.status_code == 302
    enrollment = Enrollment.objects.get()
    assert (enrollment.student, enrollment.section, enrollment.status) == (student, section, "enrolled")
    assert [entry.actor for entry in audit("enrollment.created")] == [registrar]


def test_full_section_refuses_an_enrollment_in_the_admin(registrar_client):
    section = SectionFactory(capacity=1)
    EnrollmentFactory(section=section)
    student = StudentFactory()
    response = registrar_client.post(
        add_url(Enrollment), {"student": student.pk, "section": section.pk, "enrolled_on": TERM_START.isoformat()}
    )
    assert response.status_code == 200
    assert "is full (1 places)" in form_errors(response)["__all__"][0]
    assert not Enrollment.objects.filter(student=student).exists() and not AuditLogEntry.objects.exists()


def test_a_refusal_at_save_time_rolls_back_and_is_reported(registrar_client, monkeypatch):
    # The form's check passes, then another registrar takes the last seat before the save.
    monkeypatch.setattr("students.admin.service_dry_run", lambda service, /, **kwargs: None)
    section = SectionFactory(capacity=1, code="B")
    EnrollmentFactory(section=section)
    student = StudentFactory()
    data = form_post_data(registrar_client.get(change_url(section))) | {"code": "C"}
    data |= {"enrollments-2-0-student": student.pk, "enrollments-2-0-enrolled_on": TERM_START.isoformat()}
    response = registrar_client.post(change_url(section), data, follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Nothing was saved: ") and message.endswith(" is full (1 places).")
    section.refresh_from_db()
    assert section.code == "B" and section.enrollments.count() == 1 and not AuditLogEntry.objects.exists()


def test_enrollment_status_cannot_be_edited_directly(registrar_client):
    enrollment = enrolled_student()
    response = registrar_client.post(
        change_url(enrollment), {"status": "withdrawn", "ended_on": TERM_START.isoformat(), "final_grade": "99"}
    )
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.ended_on, enrollment.final_grade) == ("enrolled", None, None)


def test_end_enrollments_action_drops_through_the_service(registrar_client, registrar):
    term = TermFactory(start_date=timezone.localdate() - datetime.timedelta(days=3))
    enrollment = enrolled_student(section=SectionFactory(term=term), enrolled_on=term.start_date)
    response = registrar_client.post(
        changelist_url(Enrollment), {"action": "end_enrollments", "_selected_action": [enrollment.pk]}, follow=True
    )
    enrollment.refresh_from_db()
    assert enrollment.status == "dropped" and enrollment.ended_on is not None
    assert [entry.actor for entry in audit("enrollment.ended")] == [registrar]
    assert "1 enrollments ended." in [str(message) for message in response.context["messages"]]


def test_section_inline_enrols_students_through_the_service(registrar_client, registrar):
    section = SectionFactory(capacity=2)
    EnrollmentFactory(section=section)
    student = StudentFactory()
    data = form_post_data(registrar_client.get(change_url(section)))
    data |= {"enrollments-2-0-student": student.pk, "enrollments-2-0-enrolled_on": TERM_START.isoformat()}
    assert registrar_client.post(change_url(section), data).status_code == 302
    assert section.enrollments.count() == 2
    [entry] = audit("enrollment.created")
    assert entry.actor == registrar and entry.object_id == str(Enrollment.objects.get(student=student).pk)


def test_section_inline_keeps_the_capacity_rule(registrar_client):
    section = SectionFactory(capacity=1)
    EnrollmentFactory(section=section)
    student = StudentFactory()
    data = form_post_data(registrar_client.get(change_url(section)))
    data |= {"enrollments-2-0-student": student.pk, "enrollments-2-0-enrolled_on": TERM_START.isoformat()}
    response = registrar_client.post(change_url(section), data)
    assert response.status_code == 200
    assert "is full" in str(response.context["inline_admin_formsets"][1].formset.errors)
    assert section.enrollments.count() == 1 and not AuditLogEntry.objects.exists()


def test_assessment_weights_may_not_exceed_100_in_the_admin(registrar_client):
    section = SectionFactory()
    AssessmentFactory(section=section, weight=Decimal("70"))
    response = registrar_client.post(
        add_url(Assessment), {"section": section.pk, "name": "Exam", "weight": "40", "max_score": "20"}
    )
    assert response.status_code == 200
    assert "more than 100" in form_errors(response)["weight"][0]
    assert section.assessments.count() == 1


def test_assessment_added_in_the_admin_is_audited(registrar_client, registrar):
    section = SectionFactory()
    response = registrar_client.post(
        add_url(Assessment), {"section": section.pk, "name": "Exam", "weight": "60", "max_score": "20"}
    )
    assert response.status_code == 302
    assert [entry.actor for entry in audit("assessment.created")] == [registrar]


# --- Terms ----------------------------------------------------------------------------------


def test_close_term_action_derives_outcomes_and_reports_counts(registrar_client, registrar):
    section = SectionFactory()
    assessment = AssessmentFactory(section=section, weight=Decimal("100"), max_score=Decimal("20"))
    enrollment = EnrollmentFactory(section=section)
    GradeFactory(student=enrollment.student, assessment=assessment, score=Decimal("15"))
    response = registrar_client.post(
        changelist_url(Term), {"action": "close_term", "_selected_action": [section.term.pk]}, follow=True
    )
    enrollment.refresh_from_db()
    assert enrollment.final_grade == Decimal("75.00")
    assert TermOutcome.objects.get(student=enrollment.student).outcome == "passed"
    assert [str(m) for m in response.context["messages"]] == [
        f"{section.term} closed: final grades of 1 sections computed, 1 outcomes derived, "
        "0 entered by staff or imported kept."
    ]
    assert [entry.actor for entry in audit("term.closed")] == [registrar]


def test_close_term_action_reports_the_refusal_and_writes_nothing(registrar_client):
    section = SectionFactory()
    AssessmentFactory(section=section, weight=Decimal("60"))
    EnrollmentFactory(section=section)
    response = registrar_client.post(
        changelist_url(Term), {"action": "close_term", "_selected_action": [section.term.pk]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        f"{section.term} was not closed: Weights of {section} add up to 60.00, not 100."
    ]
    assert not TermOutcome.objects.exists() and not AuditLogEntry.objects.exists()


def test_term_outcome_entered_in_the_admin_is_the_staffs(registrar_client, registrar):
    student, term = StudentFactory(), TermFactory()
    response = registrar_client.post(
        add_url(TermOutcome), {"student": student.pk, "term": term.pk, "outcome": "failed", "note": "appeal lost"}
    )
    assert response.status_code == 302
    outcome = TermOutcome.objects.get()
    assert (outcome.outcome, outcome.source) == ("failed", "staff")
    assert [entry.actor for entry in audit("term_outcome.set")] == [registrar]


# --- Exports --------------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]


def _csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_export_action_neutralises_formulae(registrar_client):
    departments = [DepartmentFactory(code=f"F{i}", name=name) for i, name in enumerate(FORMULAS)]
    response = registrar_client.post(
        changelist_url(Department),
        {"action": "export_admin_action", "_selected_action": [d.pk for d in departments]},
    )
    assert response.status_code == 200
    names = sorted(row["name"] for row in _csv_rows(response))
    assert names == sorted("'" + formula for formula in FORMULAS)


def test_xlsx_export_writes_formulae_as_text(registrar_client):
    DepartmentFactory(code="F1", name='=HYPERLINK("http://evil")')
    response = registrar_client.post(
        f"{changelist_url(Department)}export/",
        {"format": "1", "resource": "0", "departmentresource_code": "on", "departmentresource_name": "on"},
    )
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    cell = sheet["B2"]
    assert cell.data_type == "s" and cell.value == '\'=HYPERLINK("http://evil")'


def test_plain_numbers_are_not_mistaken_for_formulae():
    assert formula_neutralise("-5") == "-5"
    assert formula_neutralise("-5.25") == "-5.25"
    assert formula_neutralise("-5+cmd") == "'-5+cmd"
    assert formula_neutralise("\t=1") == "'\t=1"
    assert formula_neutralise(12) == 12


def test_user_export_has_roles_and_never_the_password(registrar_client):
    person = UserFactory(email="lee@campus.example", roles=[Role.LECTURER, Role.ADVISOR])
    response = registrar_client.post(
        changelist_url(User), {"action": "export_admin_action", "_selected_action": [person.pk]}
    )
    [row] = _csv_rows(response)
    assert row["email"] == "lee@campus.example" and row["roles"] == "lecturer advisor"
    assert "password" not in row and person.password not in response.content.decode()


# --- Users and roles ------------------------------------------------------------------------


def test_admin_grants_roles_through_the_audited_service(admin_client_, superadmin):
    person = UserFactory()
    data = form_post_data(admin_client_.get(change_url(person))) | {"roles": ["lecturer", "registrar"]}
    assert admin_client_.post(change_url(person), data).status_code == 302
    person.refresh_from_db()
    assert set(person.groups.values_list("name", flat=True)) == {"Lecturer", "Registrar"}
    assert person.is_staff and not person.is_superuser
    entries = audit("role.granted")
    assert [(e.changes["role"][1], e.actor) for e in entries] == [("lecturer", superadmin), ("registrar", superadmin)]

    data = form_post_data(admin_client_.get(change_url(person))) | {"roles": ["lecturer"]}
    assert admin_client_.post(change_url(person), data).status_code == 302
    person.refresh_from_db()
    assert not person.is_staff
    assert [e.changes for e in audit("role.revoked")] == [{"role": ["registrar", None]}]


def test_staff_flags_follow_roles_only(admin_client_):
    person = UserFactory()
    data = form_post_data(admin_client_.get(change_url(person))) | {"is_staff": "on", "is_superuser": "on"}
    data["user_permissions"] = [Permission.objects.get(codename="delete_grade").pk]
    assert admin_client_.post(change_url(person), data).status_code == 302
    person.refresh_from_db()
    assert not person.is_staff and not person.is_superuser and not person.user_permissions.exists()


def test_admin_cannot_revoke_their_own_admin_role(admin_client_, superadmin):
    data = form_post_data(admin_client_.get(change_url(superadmin))) | {"roles": ["lecturer"]}
    response = admin_client_.post(change_url(superadmin), data)
    assert form_errors(response) == {"roles": ["You cannot revoke your own Admin role; another admin can."]}
    superadmin.refresh_from_db()
    assert superadmin.is_superuser and not AuditLogEntry.objects.exists()


def test_registrar_cannot_change_roles(registrar_client):
    person = UserFactory(first_name="Old")
    page = registrar_client.get(change_url(person))
    assert "roles" not in page.context["adminform"].form.fields
    data = form_post_data(page) | {"roles": ["admin"], "first_name": "New"}
    assert registrar_client.post(change_url(person), data).status_code == 302
    person.refresh_from_db()
    assert person.first_name == "New"
    assert not person.groups.exists() and not person.is_superuser and not AuditLogEntry.objects.exists()


def test_registrar_adds_an_account_without_any_role(registrar_client):
    password = "Xq7!long-enough-pass"
    response = registrar_client.post(
        add_url(User), {"email": "new@campus.example", "password1": password, "password2": password}
    )
    assert response.status_code == 302
    person = User.objects.get(email="new@campus.example")
    assert not person.is_staff and not person.groups.exists()


def test_registrar_cannot_make_themselves_admin(registrar_client, registrar):
    page = registrar_client.get(change_url(registrar))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    response = registrar_client.post(
        change_url(registrar), {"email": registrar.email, "roles": ["admin", "registrar"], "is_superuser": "on"}
    )
    assert response.status_code == 403
    registrar.refresh_from_db()
    assert not registrar.is_superuser and not registrar.groups.filter(name="Admin").exists()


def test_registrar_cannot_edit_other_staff_accounts(registrar_client, superadmin):
    response = registrar_client.post(change_url(superadmin), {"email": "mine@campus.example"})
    assert response.status_code == 403
    password_url = reverse("admin:auth_user_password_change", args=[superadmin.pk])
    assert registrar_client.post(password_url, {"password1": "x" * 12, "password2": "x" * 12}).status_code == 403
    superadmin.refresh_from_db()
    assert superadmin.email != "mine@campus.example"


def test_autocomplete_offers_only_holders_of_the_role(registrar_client):
    lecturer = UserFactory(first_name="Ada", roles=[Role.LECTURER])
    UserFactory(first_name="Ada")
    advisor = UserFactory(first_name="Ada", roles=[Role.ADVISOR])
    url = reverse("admin:autocomplete")
    common = {"app_label": "students", "term": "Ada"}
    lecturers = registrar_client.get(url, common | {"model_name": "section", "field_name": "lecturers"}).json()
    advisors = registrar_client.get(url, common | {"model_name": "student", "field_name": "advisor"}).json()
    assert [int(result["id"]) for result in lecturers["results"]] == [lecturer.pk]
    assert [int(result["id"]) for result in advisors["results"]] == [advisor.pk]
