"""The portal pages: each role sees its own data and nobody else's, grade entry writes all or nothing,
and every list page runs the same number of queries for 5 rows as for 100."""

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from campusiq.core.models import AuditLogEntry
from students.models import Enrollment, Grade
from students.services import grades_computed_set
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    ProgramFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def lecturer():
    return UserFactory(roles=[Role.LECTURER], first_name="Lena", last_name="Lecturer")


@pytest.fixture
def advisor():
    return UserFactory(roles=[Role.ADVISOR], first_name="Adele", last_name="Advisor")


@pytest.fixture
def section(term, lecturer):
    return SectionFactory(term=term, lecturers=[lecturer], course=CourseFactory(code="CS101", title="Programming One"))


@pytest.fixture
def quiz(section):
    return AssessmentFactory(section=section, name="Quiz 1", weight=Decimal("20"), max_score=Decimal("20"))


@pytest.fixture
def exam(section):
    return AssessmentFactory(section=section, name="Midterm", weight=Decimal("30"), max_score=Decimal("100"))


@pytest.fixture
def ana(section, advisor):
    student = StudentFactory(
        user__first_name="Ana", user__last_name="Almeida", student_number="S1000001", advisor=advisor
    )
    EnrollmentFactory(student=student, section=section)
    return student


@pytest.fixture
def ben(section):
    """Ana's classmate: her pages must never show him."""
    student = StudentFactory(user__first_name="Benedikt", user__last_name="Brandauer", student_number="S1000002")
    EnrollmentFactory(student=student, section=section)
    return student


@pytest.fixture
def outsider(term):
    """A student of another lecturer's section, advised by someone else."""
    other_section = SectionFactory(term=term, lecturers=[UserFactory(roles=[Role.LECTURER])])
    student = StudentFactory(
        user__first_name="Otto",
        user__last_name="Outsider",
        student_number="S1000009",
        advisor=UserFactory(roles=[Role.ADVISOR]),
    )
    EnrollmentFactory(student=student, section=other_section)
    return student


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def grade_url(section, assessment) -> str:
    return reverse("portal:grade-entry", kwargs={"section_id": section.pk, "assessment_id": assessment.pk})


def section_url(section) -> str:
    return reverse("portal:section-detail", kwargs={"section_id": section.pk})


def text(response) -> str:
    return response.content.decode()


# --- Access -----------------------------------------------------------------------------------


PORTAL_PAGES = [
    ("portal:index", {}),
    ("portal:student-dashboard", {}),
    ("portal:student-profile", {}),
    ("portal:lecturer-sections", {}),
    ("portal:section-detail", {"section_id": 1}),
    ("portal:grade-entry", {"section_id": 1, "assessment_id": 1}),
    ("portal:advisor-dashboard", {}),
    ("portal:advisee-detail", {"student_id": 1}),
]


@pytest.mark.parametrize(("name", "kwargs"), PORTAL_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, name, kwargs):
    url = reverse(name, kwargs=kwargs)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(
    ("role", "name", "kwargs"),
    [
        (Role.LECTURER, "portal:student-dashboard", {}),
        (Role.ADVISOR, "portal:student-profile", {}),
        (Role.STUDENT, "portal:lecturer-sections", {}),
        (Role.STUDENT, "portal:section-detail", {"section_id": 1}),
        (Role.ADVISOR, "portal:grade-entry", {"section_id": 1, "assessment_id": 1}),
        (Role.STUDENT, "portal:advisor-dashboard", {}),
        (Role.LECTURER, "portal:advisee-detail", {"student_id": 1}),
        (Role.REGISTRAR, "portal:student-dashboard", {}),
        (Role.REGISTRAR, "portal:advisor-dashboard", {}),
    ],
)
def test_a_page_of_a_role_the_user_does_not_hold_is_forbidden(role, name, kwargs):
    response = signed_in(UserFactory(roles=[role])).get(reverse(name, kwargs=kwargs))
    assert response.status_code == 403
    assert "Not allowed" in text(response)


def test_student_role_without_a_student_profile_is_not_found():
    response = signed_in(UserFactory(roles=[Role.STUDENT])).get(reverse("portal:student-dashboard"))
    assert response.status_code == 404


def test_home_links_each_dashboard_of_a_lecturer_who_advises():
    both = UserFactory(roles=[Role.LECTURER, Role.ADVISOR])
    page = text(signed_in(both).get("/"))
    assert reverse("portal:lecturer-sections") in page
    assert reverse("portal:advisor-dashboard") in page
    assert reverse("portal:student-dashboard") not in page
    assert reverse("password_change") in page


def test_home_links_a_students_dashboard_and_profile(ana):
    page = text(signed_in(ana.user).get("/"))
    assert reverse("portal:student-dashboard") in page and reverse("portal:student-profile") in page
    assert reverse("portal:lecturer-sections") not in page


def test_portal_index_leads_to_the_home_page(ana):
    response = signed_in(ana.user).get(reverse("portal:index"))
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_every_page_has_one_h1_and_nothing_inline_the_csp_would_block(lecturer, advisor, section, ana, quiz):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("30"))  # above the maximum: an error to render too
    pages = [
        (ana.user, reverse("portal:student-dashboard")),
        (ana.user, reverse("portal:student-profile")),
        (lecturer, reverse("portal:lecturer-sections")),
        (lecturer, section_url(section)),
        (lecturer, grade_url(section, quiz)),
        (advisor, reverse("portal:advisor-dashboard")),
        (advisor, reverse("portal:advisee-detail", kwargs={"student_id": ana.pk})),
        (lecturer, "/"),
    ]
    for user, url in pages:
        page = text(signed_in(user).get(url))
        assert page.count("<h1") == 1, url
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page), url
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page)), url
    invalid = text(signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": "x"}))
    assert invalid.count("<h1") == 1 and not re.search(r"\sstyle=|\son[a-z]+=", invalid)


# --- Student ----------------------------------------------------------------------------------


def test_student_dashboard_shows_this_terms_grades_and_running_average(ana, ben, outsider, quiz, exam):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("15"))  # 75 % of a 20 % weight
    GradeFactory(student=ben, assessment=quiz, score=Decimal("3"))
    response = signed_in(ana.user).get(reverse("portal:student-dashboard"))
    assert response.status_code == 200
    page = text(response)
    assert "This term: Autumn 2026" in page
    assert "CS101 Programming One" in page
    assert "Quiz 1" in page and "Midterm" in page
    assert "15 / 20" in page
    assert "75.0&nbsp;%" in page  # running average over the graded 20 %
    assert "not graded" in page  # the midterm
    for other in (ben, outsider):
        assert other.student_number not in page
        assert other.user.last_name not in page
    assert "3 / 20" not in page


def test_student_dashboard_lists_past_terms_with_final_grades_and_outcome(ana, past_term):
    old_section = SectionFactory(term=past_term, course=CourseFactory(code="MA100", title="Calculus"))
    EnrollmentFactory(student=ana, section=old_section, final_grade=Decimal("68.50"))
    TermOutcomeFactory(student=ana, term=past_term, outcome="passed")
    other = StudentFactory(student_number="S1000077", user__last_name="Zanetti")
    EnrollmentFactory(student=other, section=old_section, final_grade=Decimal("12.25"))
    TermOutcomeFactory(student=other, term=past_term, outcome="failed")
    page = text(signed_in(ana.user).get(reverse("portal:student-dashboard")))
    assert "Spring 2026" in page
    assert "MA100 Calculus" in page and "68.5" in page
    assert "Passed" in page
    assert "12.25" not in page and "Failed" not in page and "Zanetti" not in page


def test_student_dashboard_shows_a_dropped_course_as_dropped(ana, section, term):
    other_section = SectionFactory(term=term, course=CourseFactory(code="PH200", title="Physics"))
    EnrollmentFactory(
        student=ana, section=other_section, status=Enrollment.Status.DROPPED, ended_on=term.add_drop_deadline
    )
    page = text(signed_in(ana.user).get(reverse("portal:student-dashboard")))
    assert "PH200 Physics" in page and "Dropped" in page


def test_student_profile_shows_number_program_semester_status_and_advisor(ana, ben):
    response = signed_in(ana.user).get(reverse("portal:student-profile"))
    assert response.status_code == 200
    page = text(response)
    assert ana.student_number in page
    assert ana.program.name in page
    assert "Active" in page
    assert "Adele Advisor" in page and ana.advisor.email in page
    assert ben.student_number not in page and "Brandauer" not in page


# --- Lecturer: sections and roster ------------------------------------------------------------


def test_lecturer_sees_their_sections_this_term_first(lecturer, section, past_term, outsider):
    old = SectionFactory(term=past_term, lecturers=[lecturer], course=CourseFactory(code="CS001", title="Old One"))
    page = text(signed_in(lecturer).get(reverse("portal:lecturer-sections")))
    assert page.index("CS101 Programming One") < page.index("Other terms") < page.index("CS001 Old One")
    assert section_url(section) in page and section_url(old) in page
    other_section = outsider.enrollments.get().section
    assert section_url(other_section) not in page


def test_roster_lists_enrolled_students_with_scores_and_running_average(lecturer, section, ana, ben, quiz, exam):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("10"))  # 50 % over 20
    GradeFactory(student=ana, assessment=exam, score=Decimal("90"))  # 90 % over 30 -> 74.0
    dropped = StudentFactory(user__last_name="Dropouter", student_number="S1000003")
    EnrollmentFactory(
        student=dropped, section=section, status=Enrollment.Status.DROPPED, ended_on=section.term.add_drop_deadline
    )
    response = signed_in(lecturer).get(section_url(section))
    assert response.status_code == 200
    page = text(response)
    assert "Ana Almeida" in page and ana.student_number in page
    assert "Benedikt Brandauer" in page
    assert "74.0&nbsp;%" in page
    assert "Dropouter" not in page
    assert grade_url(section, quiz) in page and grade_url(section, exam) in page
    assert "Roster (2 students)" in page


def test_another_lecturers_section_is_not_found(section, quiz):
    stranger = UserFactory(roles=[Role.LECTURER])
    client = signed_in(stranger)
    assert client.get(section_url(section)).status_code == 404
    assert client.get(grade_url(section, quiz)).status_code == 404


def test_registrar_may_open_any_section(section, ana):
    response = signed_in(UserFactory(roles=[Role.REGISTRAR])).get(section_url(section))
    assert response.status_code == 200 and ana.student_number in text(response)


# --- Lecturer: grade entry --------------------------------------------------------------------


def test_grade_entry_form_has_a_labelled_input_per_enrolled_student(lecturer, section, ana, ben, quiz):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("12.5"))
    response = signed_in(lecturer).get(grade_url(section, quiz))
    assert response.status_code == 200
    page = text(response)
    for student in (ana, ben):
        field = f"id_score-{student.pk}"
        assert f'<label for="{field}">' in page
        assert f'id="{field}"' in page
    assert re.search(rf'name="score-{ana.pk}" value="12.50"', page)
    assert 'inputmode="decimal"' in page


def test_grade_entry_records_changed_scores_audits_them_and_redirects(lecturer, section, ana, ben, quiz):
    response = signed_in(lecturer).post(
        grade_url(section, quiz),
        {f"score-{ana.pk}": "17.5", f"score-{ben.pk}": "", "reason": "first marking"},
        follow=True,
    )
    assert response.redirect_chain == [(section_url(section), 302)]
    assert "Saved 1 grade for Quiz 1." in text(response)
    grade = Grade.objects.get()
    assert (grade.student, grade.score, grade.graded_by) == (ana, Decimal("17.50"), lecturer)
    entry = AuditLogEntry.objects.get(verb="grade.recorded")
    assert entry.actor == lecturer and entry.changes == {"score": [None, "17.50"]} and entry.reason == "first marking"
    assert "87.5&nbsp;%" in text(response)  # the roster shows the new running average


def test_grade_entry_only_records_scores_that_changed(lecturer, section, ana, ben, quiz):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("12"))
    response = signed_in(lecturer).post(
        grade_url(section, quiz),
        {
            f"score-{ana.pk}": "12",
            f"initial-score-{ana.pk}": "12.00",
            f"score-{ben.pk}": "8",
            f"initial-score-{ben.pk}": "",
        },
    )
    assert response.status_code == 302
    assert list(AuditLogEntry.objects.values_list("verb", flat=True)) == ["grade.recorded"]
    assert Grade.objects.get(student=ben).score == Decimal("8")


def assert_nothing_written():
    assert not Grade.objects.exists()
    assert not AuditLogEntry.objects.filter(verb__startswith="grade.").exists()


def test_score_above_maximum_writes_nothing_and_shows_the_error_by_the_field(lecturer, section, ana, ben, quiz):
    response = signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": "15", f"score-{ben.pk}": "21"})
    assert response.status_code == 200
    assert_nothing_written()  # Ana's valid score was rolled back too
    page = text(response)
    assert "Nothing was saved" in page
    assert (
        f'<ul class="errorlist" id="id_score-{ben.pk}_error"><li>Enter a score between 0 and 20.00.</li></ul>' in page
    )
    assert f'aria-describedby="id_score-{ben.pk}_error"' in page and 'aria-invalid="true"' in page
    assert f'href="#id_score-{ben.pk}"' in page  # the summary links to the field
    assert 'value="21"' in page and 'value="15"' in page  # what was typed is kept


def test_negative_score_is_refused(lecturer, section, ana, quiz):
    response = signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": "-1"})
    assert response.status_code == 200 and "Enter a score between 0 and 20.00." in text(response)
    assert_nothing_written()


@pytest.mark.parametrize("typed", ["twelve", "1e400", "NaN", "12.555"])
def test_a_score_that_is_not_a_number_writes_nothing(lecturer, section, ana, ben, quiz, typed):
    response = signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": "10", f"score-{ben.pk}": typed})
    assert response.status_code == 200
    assert_nothing_written()
    assert f'id="id_score-{ben.pk}_error"' in text(response)


def test_a_student_not_in_the_section_writes_nothing(lecturer, section, ana, quiz, outsider):
    response = signed_in(lecturer).post(
        grade_url(section, quiz), {f"score-{ana.pk}": "10", f"score-{outsider.pk}": "19"}
    )
    assert response.status_code == 200
    assert "The roster changed since you opened this page" in text(response)
    assert_nothing_written()


def test_a_student_who_dropped_cannot_be_graded(lecturer, section, ana, ben, quiz):
    Enrollment.objects.filter(student=ben).update(status=Enrollment.Status.DROPPED, ended_on=datetime.date(2026, 9, 20))
    response = signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": "10", f"score-{ben.pk}": "11"})
    assert response.status_code == 200
    assert_nothing_written()


def test_grading_another_lecturers_section_is_not_found_and_writes_nothing(section, ana, quiz):
    stranger = UserFactory(roles=[Role.LECTURER])
    response = signed_in(stranger).post(grade_url(section, quiz), {f"score-{ana.pk}": "10"})
    assert response.status_code == 404
    assert_nothing_written()


def test_an_assessment_of_another_section_is_not_found(lecturer, section, ana, term):
    elsewhere = AssessmentFactory(section=SectionFactory(term=term))
    response = signed_in(lecturer).post(grade_url(section, elsewhere), {f"score-{ana.pk}": "10"})
    assert response.status_code == 404
    assert_nothing_written()


def test_a_former_lecturer_without_the_role_is_forbidden(lecturer, section, ana, quiz):
    lecturer.groups.clear()
    response = signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": "10"})
    assert response.status_code == 403
    assert_nothing_written()


def test_registrar_may_enter_grades(section, ana, quiz):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    response = signed_in(registrar).post(grade_url(section, quiz), {f"score-{ana.pk}": "9"})
    assert response.status_code == 302
    assert Grade.objects.get().graded_by == registrar


def test_a_grade_changed_by_someone_else_meanwhile_is_not_overwritten(lecturer, section, ana, quiz):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("12"))
    client = signed_in(lecturer)
    # The page was opened when Ana had 10; a colleague has since entered 12.
    response = client.post(grade_url(section, quiz), {f"score-{ana.pk}": "14", f"initial-score-{ana.pk}": "10"})
    assert response.status_code == 200
    assert "Someone else changed this grade to 12.00" in text(response)
    assert Grade.objects.get().score == Decimal("12")
    # The re-rendered form now carries 12 as the score seen: saving again replaces it on purpose.
    assert f'name="initial-score-{ana.pk}" value="12.00"' in text(response)
    response = client.post(grade_url(section, quiz), {f"score-{ana.pk}": "14", f"initial-score-{ana.pk}": "12.00"})
    assert response.status_code == 302
    assert Grade.objects.get().score == Decimal("14")


def test_clearing_a_recorded_grade_is_refused(lecturer, section, ana, quiz):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("12"))
    response = signed_in(lecturer).post(
        grade_url(section, quiz), {f"score-{ana.pk}": "", f"initial-score-{ana.pk}": "12"}
    )
    assert response.status_code == 200
    assert "cannot be removed here" in text(response)
    assert Grade.objects.get().score == Decimal("12")


def test_submitting_without_changes_saves_nothing(lecturer, section, ana, quiz):
    response = signed_in(lecturer).post(grade_url(section, quiz), {f"score-{ana.pk}": ""}, follow=True)
    assert "No score was changed" in text(response)
    assert_nothing_written()


def test_grade_entry_enforces_csrf(lecturer, section, ana, quiz):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lecturer)
    url = grade_url(section, quiz)
    response = client.post(url, {f"score-{ana.pk}": "10"})
    assert response.status_code == 403
    assert "Form expired" in text(response)
    assert_nothing_written()
    # The same request with the form's token goes through.
    page = text(client.get(url))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {f"score-{ana.pk}": "10", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Grade.objects.get().score == Decimal("10")


# --- Advisor ----------------------------------------------------------------------------------


def test_advisor_sees_advisees_with_current_averages_and_last_outcome(advisor, ana, ben, outsider, quiz, past_term):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("8"))  # 40 %: below the pass mark
    TermOutcomeFactory(student=ana, term=past_term, outcome="failed")
    response = signed_in(advisor).get(reverse("portal:advisor-dashboard"))
    assert response.status_code == 200
    page = text(response)
    assert "Ana Almeida" in page and ana.student_number in page
    assert "CS101" in page and "40.0&nbsp;%" in page and "below pass mark" in page
    assert "Failed" in page and "Spring 2026" in page
    assert reverse("portal:advisee-detail", kwargs={"student_id": ana.pk}) in page
    for other in (ben, outsider):  # Ben has no advisor; Otto has another
        assert other.student_number not in page and other.user.last_name not in page


def test_advisor_who_also_lectures_sees_only_advisees_on_the_advisor_page(term, ana, ben):
    both = UserFactory(roles=[Role.LECTURER, Role.ADVISOR])
    ana.enrollments.get().section.lecturers.add(both)  # teaches Ana and Ben, advises nobody
    page = text(signed_in(both).get(reverse("portal:advisor-dashboard")))
    assert "You have no advisees." in page
    assert ana.student_number not in page and ben.student_number not in page


# --- Query counts: the same for 5 rows as for 100 ---------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


def fill_section(section, assessments, students: int, program, advisor=None) -> None:
    for _ in range(students):
        student = StudentFactory(program=program, advisor=advisor)
        EnrollmentFactory(student=student, section=section)
        Grade.objects.bulk_create(
            Grade(student=student, assessment=assessment, score=Decimal("10")) for assessment in assessments
        )


@pytest.mark.parametrize("page", ["roster", "grade entry"])
def test_roster_and_grade_entry_queries_do_not_grow_with_the_roster(lecturer, term, page):
    program = ProgramFactory()
    counts = []
    for size in (5, 100):
        section = SectionFactory(term=term, lecturers=[lecturer])
        assessments = [AssessmentFactory(section=section, weight=Decimal("20")) for _ in range(3)]
        fill_section(section, assessments, size, program)
        url = section_url(section) if page == "roster" else grade_url(section, assessments[0])
        client = signed_in(lecturer)
        response = client.get(url)
        assert response.content.decode().count('scope="row"') >= size
        counts.append(count_queries(client, url))
    assert counts[0] == counts[1], counts


def test_advisor_dashboard_queries_do_not_grow_with_the_advisees(term):
    program = ProgramFactory()
    counts = []
    for size in (5, 100):
        advisor = UserFactory(roles=[Role.ADVISOR])
        last_term = TermFactory(start_date=datetime.date(2025, 9, 1))
        sections = [SectionFactory(term=term) for _ in range(2)]
        assessments = [AssessmentFactory(section=section) for section in sections for _ in range(2)]
        for _ in range(size):
            student = StudentFactory(program=program, advisor=advisor)
            for section in sections:
                EnrollmentFactory(student=student, section=section)
            Grade.objects.bulk_create(Grade(student=student, assessment=a, score=Decimal("12")) for a in assessments)
            TermOutcomeFactory(student=student, term=last_term)
        client = signed_in(advisor)
        page = text(client.get(reverse("portal:advisor-dashboard")))
        assert page.count('href="/portal/advisor/advisees/') == size
        assert page.count("60.0&nbsp;%") == 2 * size  # each advisee's two running averages
        counts.append(count_queries(client, reverse("portal:advisor-dashboard")))
    assert counts[0] == counts[1], counts


def test_student_dashboard_queries_do_not_grow_with_courses_and_assessments(term, past_term):
    counts = []
    for courses in (1, 6):
        student = StudentFactory()
        for _ in range(courses):
            section = SectionFactory(term=term)
            EnrollmentFactory(student=student, section=section)
            for _ in range(4):
                GradeFactory(student=student, assessment=AssessmentFactory(section=section))
            EnrollmentFactory(student=student, section=SectionFactory(term=past_term), final_grade=Decimal("60"))
        TermOutcomeFactory(student=student, term=past_term)
        counts.append(count_queries(signed_in(student.user), reverse("portal:student-dashboard")))
    assert counts[0] == counts[1], counts


def test_lecturer_sections_queries_do_not_grow_with_the_sections(term, past_term):
    counts = []
    for size in (5, 100):
        lecturer = UserFactory(roles=[Role.LECTURER])
        for index in range(size):
            section = SectionFactory(term=term if index % 2 else past_term, lecturers=[lecturer])
            EnrollmentFactory(section=section)
        counts.append(count_queries(signed_in(lecturer), reverse("portal:lecturer-sections")))
    assert counts[0] == counts[1], counts


# --- A computed assessment (attendance as a grade) -----------------------------------------------


@pytest.fixture
def attendance_grade(section):
    return AssessmentFactory(
        section=section, name="Attendance", weight=Decimal("10"), max_score=Decimal("100"), computed=True
    )


def test_a_computed_assessment_offers_no_grade_entry(lecturer, section, ana, attendance_grade, quiz):
    page = text(signed_in(lecturer).get(section_url(section)))
    assert grade_url(section, quiz) in page
    assert grade_url(section, attendance_grade) not in page
    assert "Computed, not entered" in page
    page = text(signed_in(lecturer).get(grade_url(section, attendance_grade)))
    assert "cannot be entered by hand" in page
    assert f'name="score-{ana.pk}"' not in page


def test_a_score_posted_for_a_computed_assessment_is_refused_with_a_message(lecturer, section, ana, attendance_grade):
    response = signed_in(lecturer).post(grade_url(section, attendance_grade), {f"score-{ana.pk}": "100", "reason": ""})
    assert response.status_code == 200
    assert "Nothing was saved" in text(response)
    assert "computed by CampusIQ and cannot be entered by hand" in text(response)
    assert not Grade.objects.exists()


def test_the_student_dashboard_shows_the_attendance_grade_in_the_average(ana, quiz, attendance_grade):
    GradeFactory(student=ana, assessment=quiz, score=Decimal("10"))  # 50 % of a 20 % weight
    grades_computed_set(assessment=attendance_grade, scores={ana.pk: Decimal("80")})  # 80 % of 10 %
    page = text(signed_in(ana.user).get(reverse("portal:student-dashboard")))
    assert "Attendance" in page and "80 / 100" in page
    assert "60.0&nbsp;%" in page  # (10 + 8) / 30
